"""vmprov's pages in a real browser (Debian's chromium through Playwright), at desktop and phone width: nothing
scrolls sideways at 390 px, axe-core finds no serious or critical problem, the Content-Security-Policy refuses
nothing; filters and search, the form's defaults and error summary, the day-2 forms' confirmation and error
summaries, and a confirmed Reject work as a person uses them. Screenshots land in test-artifacts/."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from inventory import cache
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.browser import (
    PHONE,
    chromium,
    log_in,
    screenshot,
    serious_accessibility_violations,
    sideways_overflow,
)
from tests.support.inventory_data import sample_snapshot
from tests.support.rows import walked_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = RequestStatus
PLAN = (
    "Terraform used the selected providers to generate the following execution plan.\n\n"
    "  # vsphere_virtual_machine.vm will be created\n"
    '  + resource "vsphere_virtual_machine" "vm" {\n'
    '      + name             = "big-analytics-01"\n'
    "      + num_cpus         = 16\n" + "      + a_long_attribute = (known after apply)\n" * 40 + "    }\n\n"
    "Plan: 1 to add, 0 to change, 0 to destroy.\n"
)


@pytest.fixture
def site(django_user_model, settings):
    """People, a warm cache (with a Windows template, a tiny one, a full datastore and one VM folder in DC0) and
    requests in every state."""
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}
    snapshot = sample_snapshot()
    base = snapshot.templates["datacenter-2"][0]
    snapshot.templates["datacenter-2"] += [
        {**base, "id": "vm-win", "name": "win2022", "guest_id": "windows2019srv_64Guest"},
        {**base, "id": "vm-tiny", "name": "tiny", "num_cpus": 1, "memory_mb": 32},
    ]
    datastores = snapshot.resources["domain-c7"]["datastores"]
    datastores.append({**datastores[0], "id": "datastore-full", "name": "ds-full", "free_space": -3 * 2**30})
    # The ready request's VM, resized in vCenter by hand: its pages show it with drift.
    snapshot.vms["datacenter-2"].append(
        {
            **snapshot.vms["datacenter-2"][0],
            "id": "vm-1042",
            "name": "web-frontend-01",
            "instance_uuid": "5010a5c4-8e3b-4f1d-9c2a-7b6e5d4c3b2a",
            "ip_addresses": ["10.0.0.42", "fe80::250:56ff:fe9a:1042"],
            "num_cpus": 2,
            "memory_mb": 4096,
            "cpu_hot_add_enabled": True,
            "cpu_hot_remove_enabled": False,
            "memory_hot_add_enabled": False,
            "guest_hostname": "web-frontend-01.example.com",
            "host_name": "esx-rack12-node07.example.com",
            "cluster_name": "cluster 0",
            "datastore_names": ["ds-fast"],
        }
    )
    snapshot.folders["datacenter-2"] = snapshot.folders["datacenter-2"][:1]  # "/" only
    cache.write_snapshot(snapshot)

    alice = django_user_model.objects.create_user("alice", "alice@example.com", "alice-password-1")
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "bob-password-1")
    bob.groups.add(Group.objects.get_or_create(name="approvers")[0])
    django_user_model.objects.create_user("ops", "ops@example.com", "ops-password-1", is_staff=True, is_superuser=True)
    common = {"cluster_id": "domain-c7", "cluster_name": "cluster 0", "network_name": "VLAN 10"}
    delivered = {  # as long as real ones: 40-character commits, a 36-character UUID
        "branch": "vmprov/1-web-frontend-01",
        "directory": "vms/datacenter-2/web-frontend-01",
        "pushed_commit": "3f1c9e0b7d2a4c6e8f0a1b2c3d4e5f6a7b8c9d0e",
        "planned_commit": "3f1c9e0b7d2a4c6e8f0a1b2c3d4e5f6a7b8c9d0e",
        "vm_moref": "vm-1042",
        "vm_instance_uuid": "5010a5c4-8e3b-4f1d-9c2a-7b6e5d4c3b2a",
    }
    ready = walked_request(alice, vm_name="web-frontend-01", **delivered, **common)
    planned = walked_request(
        alice,
        ("submitted", "pushing", "planning", "planned"),
        vm_name="big-analytics-01",
        num_cpus=16,
        memory_mb=65536,
        disk_size_gb=500,
        plan_output=PLAN,
        plan_digest="d" * 64,
        notes="For the quarterly analytics run; can be deleted in March.",
        **common,
    )
    walked_request(
        alice,
        ("submitted", "pushing", "planning", "plan_failed"),
        vm_name="db-replica-02",
        last_error="The plan failed: Error: datastore ds-fast has no room for a 400 GB disk " + "x" * 120,
        **common,
    )
    walked_request(alice, ("submitted", "pushing"), vm_name="cache-03", **common)
    walked_request(bob, ("submitted", "cancelled"), vm_name="old-test-vm", **common)
    return {"ready": ready, "planned": planned}


def check_page(page, name: str, *, phone: bool = False) -> None:
    """What every vmprov page owes a person: no sideways scrolling on a phone, no serious accessibility problem."""
    page.wait_for_load_state("networkidle")
    screenshot(page, f"{name}-{'phone' if phone else 'desktop'}")
    if phone:
        assert sideways_overflow(page) == 0, f"{name} scrolls sideways at 390 px"
    assert serious_accessibility_violations(page) == [], name


def test_every_page_fits_a_phone_and_passes_axe(live_server, site, monkeypatch):
    pages = [
        ("form", "alice", "/requests/new/"),
        ("list", "ops", "/requests/"),
        ("ready", "alice", f"/requests/{site['ready'].pk}/"),
        ("decision", "bob", f"/requests/{site['planned'].pk}/"),
        ("inbox", "bob", "/requests/inbox/"),
        ("vms", "ops", "/requests/vms/"),
        ("vm", "alice", f"/requests/vms/{site['ready'].pk}/"),
        ("change", "alice", f"/requests/vms/{site['ready'].pk}/change/"),
        ("decommission", "alice", f"/requests/vms/{site['ready'].pk}/decommission/"),
        ("not-found", "alice", "/requests/999999/"),
    ]
    with chromium(monkeypatch) as browser:
        # The checks can fail: a page that breaks them is caught.
        broken = browser.page(**PHONE)
        broken.set_content('<html lang="en"><body><img src="x.png"><pre>' + "x" * 400 + "</pre></body></html>")
        assert any(v.startswith("image-alt (critical)") for v in serious_accessibility_violations(broken))
        assert sideways_overflow(broken) > 0
        for options, phone in (({}, False), (PHONE, True)):
            anonymous = browser.page(**options)
            anonymous.goto(f"{live_server.url}/login/")
            check_page(anonymous, "login", phone=phone)
            people = {}
            for name, username, path in pages:
                if username not in people:
                    people[username] = browser.page(**options)
                    log_in(people[username], live_server.url, username, f"{username}-password-1")
                page = people[username]
                page.goto(f"{live_server.url}{path}")
                if name == "form":
                    expect(page.locator("#id_datacenter option", has_text="DC0")).to_have_count(1)
                check_page(page, name, phone=phone)


def test_filters_and_search_narrow_the_list(live_server, site, monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.page()
        log_in(page, live_server.url, "ops", "ops-password-1")
        page.goto(f"{live_server.url}/requests/")
        rows = page.locator("#requests tbody tr")
        expect(rows).to_have_count(5)
        page.fill("#filter-q", "web")
        page.click("text=Filter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("web-frontend-01")
        page.fill("#filter-q", "")
        page.select_option("#filter-status", "open")
        page.click("text=Filter")
        expect(rows).to_have_count(2)  # planned and pushing
        page.select_option("#filter-status", "")
        page.select_option("#filter-mine", "1")
        page.click("text=Filter")
        expect(page.locator("#request-table")).to_contain_text("No request matches these filters")
        page.click("text=Clear the filters")
        expect(rows).to_have_count(5)
        expect(rows.first.locator(".badge")).to_have_text("Cancelled")  # newest first, its status as a badge


def test_the_form_keeps_its_defaults_within_bounds_and_summarises_errors(live_server, site, monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.page(**PHONE)
        log_in(page, live_server.url, "alice", "alice-password-1")
        page.goto(f"{live_server.url}/requests/new/")
        expect(page.locator("#auto-approval")).to_have_text(
            "Approved automatically: up to 4 CPUs, 8192 MB memory and 100 GB disk. "
            "A request above any of these waits for an approver."
        )
        page.select_option("#id_datacenter", label="DC0")
        # DC0's only cluster and only folder are picked, and the cluster's lists load; so is the only usable
        # datastore. Lists with a choice to make stay unpicked.
        expect(page.locator("#id_cluster")).to_have_value("domain-c7")
        expect(page.locator("#id_folder")).to_have_value("group-v0")
        expect(page.locator("#id_datastore")).to_have_value("datastore-01")
        expect(page.locator("#id_network option")).to_have_count(3)
        expect(page.locator("#id_network")).to_have_value("")
        expect(page.locator("#id_resource_pool")).to_have_value("")
        # Datastores that cannot take the VM are listed, disabled, with the reason.
        full = page.locator("#id_datastore option", has_text="ds-full")
        expect(full).to_have_text("ds-full \u2014 full (\u22123 GB free)")
        expect(full).to_be_disabled()
        expect(page.locator("#id_datastore option", has_text="ds-down")).to_have_text("ds-down \u2014 not accessible")
        expect(page.locator("#id_datastore option", has_text="ds-fast")).to_have_text("ds-fast (200 GB free, VMFS)")
        windows = page.locator("#id_template option", has_text="win2022")
        expect(windows).to_contain_text("not supported (Windows guest)")
        expect(windows).to_be_disabled()
        # A 32 MB template: memory starts at the form's minimum, not below it.
        page.select_option("#id_template", label="tiny (ubuntu64Guest, 1 CPU, 32 MB)")
        expect(page.locator("#id_memory_mb")).to_have_value("512")
        expect(page.locator("#id_num_cpus")).to_have_value("1")
        page.fill("#id_vm_name", "a" * 64)
        page.click("text=Submit the request")
        summary = page.locator("#error-summary")
        expect(summary).to_be_focused()
        expect(summary).to_contain_text("VM name: Ensure this value has at most 63 characters (it has 64).")
        expect(summary).to_contain_text("Choose a resource pool.")
        expect(page.locator("#id_vm_name")).to_have_value("a" * 64)
        screenshot(page, "form-errors-phone")
        assert sideways_overflow(page) == 0


def test_the_day2_forms_ask_first_summarise_errors_and_lead_back_to_the_vm(live_server, site, monkeypatch):
    vm = site["ready"]
    with chromium(monkeypatch) as browser:
        page = browser.page(**PHONE)
        log_in(page, live_server.url, "alice", "alice-password-1")
        page.goto(f"{live_server.url}/requests/vms/{vm.pk}/decommission/")
        button = page.locator("button", has_text="Ask for the decommission")
        textarea = page.locator("#id_reason").bounding_box()
        assert button.bounding_box()["y"] >= textarea["y"] + textarea["height"], "the button sits below the reason"

        page.once("dialog", lambda dialog: dialog.dismiss())
        button.click()
        expect(page.locator("#error-summary")).to_have_count(0)  # a dismissed confirmation sends nothing

        page.once("dialog", lambda dialog: dialog.accept())
        button.click()
        summary = page.locator("#error-summary")
        expect(summary).to_be_focused()
        expect(summary).to_contain_text("Nothing was saved: 2 things to fix")
        expect(summary).to_contain_text("VM name: Type the VM's name, web-frontend-01, to confirm.")
        expect(summary).to_contain_text("Reason: Say why the VM is decommissioned.")
        summary.locator("a", has_text="Reason").click()
        expect(page.locator("#id_reason")).to_be_focused()
        check_page(page, "decommission-errors", phone=True)

        page.goto(f"{live_server.url}/requests/vms/{vm.pk}/change/")
        expect(page.locator("#drift")).to_contain_text("vCenter shows 2 CPUs; the last apply set 1 CPU")
        page.fill("#id_num_cpus", "")
        page.fill("#id_disk_size_gb", "1")
        page.click("text=Ask for this change")
        summary = page.locator("#error-summary")
        expect(summary).to_be_focused()
        expect(summary).to_contain_text("CPUs: Enter the number of CPUs.")
        expect(summary).to_contain_text("First disk (GB): Disks only grow")
        check_page(page, "change-errors", phone=True)
        page.click("text=Cancel")
        expect(page).to_have_url(f"{live_server.url}/requests/vms/{vm.pk}/")
        assert not VMRequest.objects.filter(vm_of=vm).exists()


def test_request_again_says_which_earlier_choices_are_no_longer_offered(live_server, site, monkeypatch):
    # Asked for what is full, gone or unsupported now, and for choices that still are (the second network).
    again = walked_request(
        VMRequest.objects.get(vm_name="web-frontend-01").requester,
        ("submitted", "cancelled"),
        vm_name="web-old-02",
        cluster_id="domain-c7",
        cluster_name="cluster 0",
        resource_pool_id="resgroup-02",
        resource_pool_name="Resources/web",
        datastore_id="datastore-full",
        datastore_name="ds-full",
        network_id="network-02",
        network_name="VM Network",
        folder_id="group-v09",
        folder_path="web",
        template_id="vm-win",
        template_name="win2022",
        num_cpus=2,
    ).pk
    with chromium(monkeypatch) as browser:
        for options, phone in (({}, False), (PHONE, True)):
            page = browser.page(**options)
            log_in(page, live_server.url, "alice", "alice-password-1")
            page.goto(f"{live_server.url}/requests/new/?again={again}")
            # What is still offered comes back as it was, the second network too (nothing picked over it).
            expect(page.locator("#id_datacenter")).to_have_value("datacenter-2")
            expect(page.locator("#id_cluster")).to_have_value("domain-c7")
            expect(page.locator("#id_resource_pool")).to_have_value("resgroup-02")
            expect(page.locator("#id_network")).to_have_value("network-02")
            # What is not says so beside its list; the only usable datastore and folder are picked instead.
            expect(page.locator("#again-datastore")).to_have_text(
                f"ds-full (chosen in request #{again}) is not offered: full (\u22123 GB free)."
            )
            expect(page.locator("#id_datastore")).to_have_value("datastore-01")
            expect(page.locator("#again-folder")).to_have_text(
                f"/web (chosen in request #{again}) is not in datacenter DC0."
            )
            expect(page.locator("#id_folder")).to_have_value("group-v0")
            expect(page.locator("#again-template")).to_have_text(
                f"win2022 (chosen in request #{again}) is not offered: not supported (Windows guest)."
            )
            expect(page.locator("#id_template")).to_have_value("")
            for name in ("datacenter", "cluster", "resource_pool", "network"):
                expect(page.locator(f"#again-{name}")).to_be_hidden()
            expect(page.locator("#id_num_cpus")).to_have_value("2")
            check_page(page, "form-again", phone=phone)


def test_the_live_step_counts_its_time_between_polls(live_server, site, monkeypatch):
    planned = site["planned"]  # waiting for approval since 0 s ago: its polls answer 204 while nothing changes
    with chromium(monkeypatch) as browser:
        page = browser.page()
        log_in(page, live_server.url, "alice", "alice-password-1")
        page.goto(f"{live_server.url}/requests/{planned.pk}/")
        current = page.locator(".step-current .step-time")
        expect(current).to_have_text(re.compile(r"^for \d+ s$"))
        first = int(re.search(r"\d+", current.inner_text())[0])
        expect(current).to_have_text(re.compile(rf"^for (?!{first} s$)\d+ s$"), timeout=4000)
        assert page.locator(".step-done .step-time[data-took]").count() == 0, "finished steps keep their time"


def test_reject_asks_first_and_the_inbox_empties_after_the_decision(live_server, site, monkeypatch):
    planned = site["planned"]
    with chromium(monkeypatch) as browser:
        page = browser.page()
        log_in(page, live_server.url, "bob", "bob-password-1")
        expect(page.locator("#inbox-count")).to_have_text("1")
        page.click("text=Waiting for my approval")
        card = page.locator(f'article[data-request="{planned.pk}"]')
        expect(card).to_contain_text("16 CPUs is above the auto-approval limit of 4")
        expect(card).to_contain_text("Plan: 1 to add, 0 to change, 0 to destroy.")
        card.locator("text=Review and decide").click()
        expect(page.locator("#decision")).to_be_in_viewport()
        expect(page.locator("#plan-output")).not_to_be_visible()  # the Terraform plan is collapsed
        page.fill("#id_reason", "Too big for this quarter")

        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("button[value=reject]")
        assert VMRequest.objects.get(pk=planned.pk).status == S.PLANNED, "a dismissed confirmation does nothing"

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button[value=reject]")
        expect(page.locator(".messages")).to_contain_text("Rejected.")
        assert VMRequest.objects.get(pk=planned.pk).status == S.REJECTED
        expect(page.locator("#decision")).to_have_count(0)
        expect(page.locator("#inbox-count")).to_have_text("0")
        page.click("text=Waiting for my approval")
        expect(page.locator("#inbox")).to_contain_text("Nothing waits for your approval.")


def test_the_admin_pages_work_under_the_policy_and_the_changelist_reads_at_1280(live_server, site, monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.page()
        log_in(page, live_server.url, "ops", "ops-password-1")
        page.goto(f"{live_server.url}/admin/")
        page.click("#inventory-cache-link a")
        expect(page.locator("tr[data-scope='cluster:domain-c7']")).to_contain_text("Cluster cluster 0 (DC0)")
        page.locator("tr[data-scope='cluster:domain-c7'] input[type=submit]").click()
        expect(page.locator("tr[data-scope='cluster:domain-c7']")).to_contain_text("queued…")
        screenshot(page, "admin-cache-desktop")
        page.goto(f"{live_server.url}/admin/provisioning/vmrequest/")
        expect(page.locator("#content h1")).to_contain_text("VM request")
        header = page.locator("#result_list thead")
        for column in ("VM name", "Status", "Where", "Requester", "Created at"):
            expect(header).to_contain_text(column)
            cell = header.locator("th", has_text=column).first
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1280, f"{column} is off-screen at 1280 px"
        screenshot(page, "admin-requests-desktop")
