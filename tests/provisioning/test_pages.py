"""The request pages as a person reads them: the list's filters and pages, the approver's inbox, a request's
steps with their times, why approval is needed, the ready VM's facts, live updates (htmx polls), error pages, and the
day-2 forms' way back and error summaries."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from inventory import cache
from provisioning import timeline
from provisioning.delivery import approval
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.inventory_data import sample_snapshot
from tests.support.rows import request_fields, walked_request

pytestmark = pytest.mark.django_db
S = RequestStatus
PLANNED_PATH = ("submitted", "pushing", "planning", "planned")
PLAN = "Terraform will perform the following actions:\n\nPlan: 1 to add, 0 to change, 0 to destroy.\n"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw-alice-1")


@pytest.fixture
def bob(django_user_model):
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-1")
    bob.groups.add(Group.objects.get_or_create(name="approvers")[0])
    return bob


def planned(requester, **changes) -> VMRequest:
    fields = {"plan_output": PLAN, "plan_digest": "d" * 64, "vm_name": "big1", "num_cpus": 16, **changes}
    return walked_request(requester, PLANNED_PATH, **fields)


def test_the_list_filters_searches_and_pages_newest_first(alice, bob):
    for n in range(30):
        VMRequest.objects.create(
            **request_fields(alice, vm_name=f"web{n:02}", created_at=timezone.now() - timedelta(minutes=n))
        )
    VMRequest.objects.create(**request_fields(bob, vm_name="db01", datacenter_name="Zürich / prod", status=S.READY))
    client = client_for(bob)  # an approver sees every request

    first = client.get("/requests/")
    names = re.findall(r'href="/requests/\d+/">([^<]+)</a>', first.content.decode())
    assert names[:3] == ["db01", "web00", "web01"] and len(names) == 25
    assert "page 1 of 2" in first.content.decode()
    assert len(re.findall(r'href="/requests/\d+/">', client.get("/requests/?page=2").content.decode())) == 6

    def shown(**query) -> list[str]:
        return re.findall(r'href="/requests/\d+/">([^<]+)</a>', client.get("/requests/", query).content.decode())

    assert shown(q="WEB2") == [f"web{n}" for n in range(20, 30)]
    assert shown(status="ready") == ["db01"]
    assert shown(status="open", q="web29") == ["web29"]
    assert shown(status="settled") == ["db01"]
    assert shown(datacenter="Zürich / prod") == ["db01"]
    assert shown(mine="1") == ["db01"]
    assert shown(q="nothing-like-it") == []
    assert "No request matches these filters" in client.get("/requests/", {"q": "nope"}).content.decode()
    # A requester sees their own and cannot widen it.
    assert "No request matches these filters" in client_for(alice).get("/requests/", {"q": "db01"}).content.decode()


def test_lists_and_pages_poll_until_their_requests_settle_and_answer_204_while_nothing_changed(alice):
    moving = walked_request(alice, ("submitted", "pushing"))
    client = client_for(alice)
    page = client.get(f"/requests/{moving.pk}/").content.decode()
    poll = re.search(r'id="request-live" hx-get="([^"]+)" hx-trigger="every 2s"', page)
    assert poll, "a request that moves by itself is followed"
    url = poll.group(1).replace("&amp;", "&")
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 204

    moving.transition(S.PLANNING)
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert fragment.status_code == 200 and html.startswith('<div id="request-live"')
    assert 'hx-swap-oob="innerHTML">x1: Planning.</div>' in html, "the change is announced to screen readers"

    # Settled: the page stops following, and Cancel is gone once the request cannot be cancelled.
    moving.transition(S.PLAN_FAILED, message="no")
    settled = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in settled.split("</div>", 1)[0]
    assert "Cancel this request" in settled  # a failed plan may still be cancelled
    moving.transition(S.CANCELLED)
    assert "Cancel this request" not in client.get(f"/requests/{moving.pk}/").content.decode()
    # The first page of a list follows new requests; a later page only while one of its requests moves.
    for n in range(30):
        VMRequest.objects.create(**request_fields(alice, vm_name=f"old{n}", status=S.CANCELLED))
    assert "hx-trigger" in client.get("/requests/").content.decode()
    assert "hx-trigger" not in client.get("/requests/?page=2").content.decode()


def test_the_inbox_lists_what_waits_for_this_approver_and_the_nav_counts_it(alice, bob, settings):
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}
    waiting = planned(alice)
    planned(bob, vm_name="own1")  # nobody decides on their own request
    walked_request(alice, vm_name="done1")

    page = client_for(bob).get("/requests/inbox/").content.decode()
    assert re.search(r'<span class="count" id="inbox-count">1</span>', page)
    assert f'href="/requests/{waiting.pk}/#decision"' in page
    assert "16 CPUs is above the auto-approval limit of 4" in page
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in page
    assert "own1" not in page and "done1" not in page
    assert client_for(alice).get("/requests/inbox/").status_code == 403
    assert "Waiting for my approval" not in client_for(alice).get("/requests/").content.decode()

    # The decision empties it (the decision form carries the plan the approver saw).
    detail = client_for(bob).get(f"/requests/{waiting.pk}/").content.decode()
    assert re.search(r'name="plan" value="d{64}"', detail)
    assert detail.index('id="decision"') < detail.index('id="history"'), "the decision comes before the history"
    assert '<details><summary>Terraform plan</summary><pre id="plan-output">' in detail
    assert 'value="reject" class="danger" data-confirm=' in detail
    client_for(bob).post(
        f"/requests/{waiting.pk}/decide/", {"decision": "reject", "reason": "too big", "plan": "d" * 64}
    )
    assert "Nothing waits for your approval." in client_for(bob).get("/requests/inbox/").content.decode()


def test_why_approval_is_needed(alice, settings):
    vm_request = planned(alice, num_cpus=8, memory_mb=16384, disk_size_gb=40)
    settings.VMPROV_AUTO_APPROVE = None
    assert approval.why_approval_is_needed(vm_request) == [
        "auto-approval is off: every request is decided by an approver"
    ]
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}
    assert approval.why_approval_is_needed(vm_request) == [
        "8 CPUs is above the auto-approval limit of 4",
        "16384 MB memory is above the auto-approval limit of 8192 MB",
    ]
    vm_request.num_cpus, vm_request.memory_mb = 2, 1024
    vm_request.plan_output = "Plan: 1 to add, 1 to change, 0 to destroy."
    assert approval.why_approval_is_needed(vm_request) == [
        "the plan does more than add this one VM (Plan: 1 to add, 1 to change, 0 to destroy.)"
    ]


def test_steps_come_from_the_lifecycle_with_the_time_each_took(alice):
    vm_request = walked_request(alice, step_seconds=30)
    steps = timeline.timed_steps(vm_request.status, list(vm_request.events.all()))
    assert [(s.label, s.state, s.took_text) for s in steps] == [
        ("Submitted", "done", "30 s"),
        ("Pushed to Git", "done", "30 s"),
        ("Planned", "done", "1 min"),
        ("Approved", "done", "30 s"),
        ("Applied", "done", "30 s"),
        ("Ready", "done", "30 s"),
    ]
    moving = walked_request(alice, ("submitted", "pushing"), vm_name="x2", step_seconds=90)
    now = timezone.now() + timedelta(seconds=10)
    steps = timeline.timed_steps(moving.status, list(moving.events.all()), now=now)
    assert [(s.state, s.took_text) for s in steps[:3]] == [("done", "1 min 30 s"), ("current", "10 s"), ("todo", "")]
    assert timeline.duration_text(timedelta(hours=26, minutes=3)) == "1 d 2 h"


def test_a_ready_request_shows_its_vm_from_the_inventory(alice):
    cache.write_snapshot(sample_snapshot())
    vm_request = walked_request(alice, vm_name="db01", vm_moref="vm-000", vm_instance_uuid="5010")
    page = client_for(alice).get(f"/requests/{vm_request.pk}/").content.decode()
    assert "<dt>IP addresses</dt><dd>10.0.0.5</dd>" in page
    assert "<dt>Power</dt><dd>On</dd>" in page
    assert "<dt>Cluster</dt><dd>domain-c7</dd>" in page, "the id stands in while the inventory has no name"
    assert "<dt>Guest host name</dt><dd>not reported yet</dd>" in page


def test_a_ready_vm_shows_names_once_the_inventory_has_them():
    from provisioning import vm_facts

    facts = vm_facts.facts_of(
        {
            "id": "vm-1",
            "name": "web01",
            "host_id": "host-9",
            "host_name": "esx9.example.com",
            "cluster_id": "domain-c7",
            "cluster_name": "prod",
            "guest_hostname": "web01.example.com",
            "power_state": "poweredOff",
            "ip_addresses": ["10.0.0.7", "fe80::1"],
        }
    )
    assert dict(facts.as_lines()) == {
        "IP addresses": "10.0.0.7, fe80::1",
        "Guest host name": "web01.example.com",
        "Power": "Off",
        "Host": "esx9.example.com",
        "Cluster": "prod",
        "VM id": "vm-1",
    }


def test_error_pages_are_styled_with_a_way_back(alice, client):
    page = client_for(alice).get("/requests/999999/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "vmprov.css" in html and "Page not found" in html and 'href="/requests/"' in html
    forbidden = client_for(alice).get("/requests/inbox/").content.decode()
    assert "Not allowed" in forbidden and "Only approvers have an approval inbox." in forbidden
    favicon = client.get("/favicon.ico")  # no login needed
    assert favicon.status_code == 301 and favicon["Location"].endswith("vmprov/favicon.svg")


def test_the_approvers_group_exists_from_the_migrations_on():
    assert Group.objects.filter(name="approvers").exists()


def test_the_form_says_what_is_missing_in_a_summary_linked_to_each_field(alice):
    cache.write_snapshot(sample_snapshot())
    page = client_for(alice).post("/requests/new/", {"ip_mode": "dhcp"})
    html = page.content.decode()
    summary = html[html.index('id="error-summary"') : html.index("</div>", html.index('id="error-summary"'))]
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    assert '<a href="#id_datacenter">Datacenter: Choose a datacenter.</a>' in summary
    assert '<a href="#id_vm_name">VM name: Enter a name for the VM.</a>' in summary
    assert "This field is required." not in html
    # A name one character too long is refused, not cut short by the browser.
    assert 'maxlength="63"' not in html


def test_a_poll_after_the_session_ended_sends_the_tab_to_the_login_page(client):
    response = client.get("/requests/?since=x", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/login/"


def test_direction_controls_people_typed_are_shown_not_obeyed(alice, bob):
    """A right-to-left override in the notes would reorder the plan line an approver reads (Trojan Source)."""
    plan = 'Terraform will perform the following actions:\n  ~ annotation = "ok \u202eevil\u202c"\n' + PLAN
    planned = walked_request(alice, PLANNED_PATH, notes="ok \u202eevil\u202c", plan_output=plan, plan_digest="d" * 64)
    page = client_for(bob).get(f"/requests/{planned.pk}/").content.decode()
    assert "\u202e" not in page and "\u202c" not in page
    assert "~ annotation = &quot;ok &lt;U+202E&gt;evil&lt;U+202C&gt;&quot;" in page
    assert page.count("ok &lt;U+202E&gt;evil&lt;U+202C&gt;") == 2, "in the plan and in the notes"


def test_the_inbox_says_a_decommission_destroys_and_its_approve_button_asks_first(alice, bob):
    vm = walked_request(alice, vm_name="old-db-01")
    walked_request(
        alice, PLANNED_PATH, kind="decommission", vm_of=vm, vm_name="old-db-01", plan_output=PLAN, plan_digest="d" * 64
    )
    inbox = client_for(bob).get("/requests/inbox/").content.decode()
    assert "alice asks to <strong>destroy</strong> old-db-01 and its disks in" in inbox
    decommission = VMRequest.objects.get(kind="decommission")
    page = client_for(bob).get(f"/requests/{decommission.pk}/").content.decode()
    assert 'data-confirm="Approve destroying old-db-01 and its disks? This cannot be undone."' in page


def test_every_page_words_the_power_state_alike(alice):
    from provisioning.templatetags.vm_requests import power

    assert [power(state) for state in ("poweredOn", "poweredOff", "suspended", "", "odd")] == [
        "On",
        "Off",
        "Suspended",
        "—",
        "odd",
    ]


def _summary(html: str) -> str:
    start = html.index('id="error-summary"')
    return html[start : html.index("</div>", start)]


def test_the_day2_forms_lead_back_to_the_vm_and_style_their_buttons(alice):
    cache.write_snapshot(sample_snapshot())
    vm = walked_request(alice, vm_name="web01", vm_moref="vm-404")  # not in the inventory: the pages still work
    change = client_for(alice).get(f"/requests/vms/{vm.pk}/change/").content.decode()
    decommission = client_for(alice).get(f"/requests/vms/{vm.pk}/decommission/").content.decode()
    for html in (change, decommission):
        assert f'<li><a href="/requests/vms/{vm.pk}/">web01</a></li>' in html, "the breadcrumb leads to the VM"
        assert f'<a href="/requests/vms/{vm.pk}/">Cancel</a>' in html
        assert 'id="error-summary"' not in html
    assert '<button type="submit" class="primary">Ask for this change</button>' in change
    assert (
        '<button type="submit" class="danger" data-confirm="Ask to destroy web01 and its disks? '
        'An approver still decides on the plan.">Ask for the decommission</button>'
    ) in decommission
    for html in (change, decommission):
        assert 'aria-describedby="id_notes_helptext"' in html or 'aria-describedby="id_reason_helptext"' in html
        assert "at most 2,000 characters" in html
    assert "Disks only grow: 10 GB or more." in change
    assert "Type web01 to confirm that this is the VM to destroy." in decommission
    new = client_for(alice).get("/requests/new/").content.decode()
    assert '<div class="help" id="id_notes_helptext">Shown in vCenter as the VM&#x27;s notes; at most 2,000' in new


def test_the_decommission_form_says_what_is_missing_in_a_summary_and_saves_nothing(alice):
    vm = walked_request(alice, vm_name="web01", vm_moref="vm-404")
    response = client_for(alice).post(f"/requests/vms/{vm.pk}/decommission/", {"confirm_name": "", "reason": ""})
    assert response.status_code == 400
    html = response.content.decode()
    summary = _summary(html)
    assert "Nothing was saved: 2 things to fix" in summary and 'role="alert"' in summary
    assert '<a href="#id_confirm_name">VM name: Type the VM&#x27;s name, web01, to confirm.</a>' in summary
    assert '<a href="#id_reason">Reason: Say why the VM is decommissioned.</a>' in summary
    assert "This field is required." not in html
    assert 'aria-invalid="true" aria-describedby="id_reason_helptext id_reason_error"' in html

    wrong = client_for(alice).post(f"/requests/vms/{vm.pk}/decommission/", {"confirm_name": "WEB01", "reason": "x"})
    summary = _summary(wrong.content.decode())
    assert "Nothing was saved: 1 thing to fix" in summary
    assert "VM name: This is not the VM&#x27;s name. Type the VM&#x27;s name, web01, to confirm." in summary
    assert not VMRequest.objects.filter(vm_of=vm).exists()


def test_the_change_form_says_what_is_missing_or_unchanged_in_a_summary(alice):
    vm = walked_request(alice, vm_name="web01", vm_moref="vm-404", num_cpus=2, memory_mb=2048, disk_size_gb=20)
    url = f"/requests/vms/{vm.pk}/change/"
    empty = client_for(alice).post(url, {"num_cpus": "", "memory_mb": "", "disk_size_gb": "19", "notes": ""})
    assert empty.status_code == 400
    summary = _summary(empty.content.decode())
    assert "Nothing was saved: 3 things to fix" in summary
    assert '<a href="#id_num_cpus">CPUs: Enter the number of CPUs.</a>' in summary
    assert '<a href="#id_memory_mb">Memory (MB): Enter the memory in MB.</a>' in summary
    assert '<a href="#id_disk_size_gb">First disk (GB): Disks only grow:' in summary

    same = client_for(alice).post(url, {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 20, "notes": ""})
    assert "<li>Nothing changes: these are the values the VM has now.</li>" in _summary(same.content.decode())
    too_long = client_for(alice).post(url, {"num_cpus": 3, "memory_mb": 2048, "disk_size_gb": 20, "notes": "n" * 2001})
    assert "Notes: Ensure this value has at most 2000 characters (it has 2001)." in _summary(too_long.content.decode())
    assert not VMRequest.objects.filter(vm_of=vm).exists()
