"""The VM request form and pages: validation against the inventory, hostile input, history, permissions."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from inventory import cache
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.inventory_data import sample_snapshot
from tests.support.rows import request_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def warm():
    snapshot = sample_snapshot()
    windows = {
        **snapshot.templates["datacenter-2"][0],
        "id": "vm-win",
        "name": "win2022",
        "guest_id": "windows2019srv_64Guest",
    }
    snapshot.templates["datacenter-2"].append(windows)
    datastores = snapshot.resources["domain-c7"]["datastores"]
    datastores += [
        {**datastores[0], "id": "datastore-full", "name": "ds-full", "free_space": -3 * 2**30},
        {**datastores[0], "id": "datastore-empty", "name": "ds-empty", "free_space": 0},
    ]
    cache.write_snapshot(snapshot)
    return snapshot


def valid_post(**changes):
    data = {
        "datacenter": "datacenter-2",
        "cluster": "domain-c7",
        "resource_pool": "resgroup-02",
        "datastore": "datastore-01",
        "network": "dvportgroup-01",
        "folder": "group-v09",
        "template": "vm-t0",
        "vm_name": "web01",
        "num_cpus": "2",
        "memory_mb": "4096",
        "disk_size_gb": "40",
        "ip_mode": "dhcp",
        "ipv4_address": "",
        "ipv4_prefix": "",
        "ipv4_gateway": "",
        "dns_servers": "",
        "domain": "example.com",
        "notes": "for the web team",
    }
    data.update(changes)
    return data


def post(client, **changes):
    return client.post("/requests/new/", valid_post(**changes))


def errors_of(response):
    return response.context["form"].errors


def test_a_valid_request_is_saved_with_its_history_and_terraform(logged_in, requester, warm):
    response = post(logged_in)
    assert response.status_code == 302
    vm_request = VMRequest.objects.get()
    assert response["Location"] == f"/requests/{vm_request.pk}/"
    assert vm_request.requester == requester
    assert (vm_request.datacenter_name, vm_request.cluster_name) == ("DC0", "cluster 0")
    assert vm_request.resource_pool_name == "Resources/web"
    assert vm_request.template_uuid == "4210a5c4-0000-0000-0000-000000000000"
    assert vm_request.template_details["disks"][0]["size_gb"] == 20
    assert vm_request.status == RequestStatus.SUBMITTED
    assert [(e.from_status, e.to_status, e.actor) for e in vm_request.events.all()] == [("", "submitted", requester)]
    assert {"providers.tf", "variables.tf", "machine.tf", "terraform.tfvars"} <= set(vm_request.rendered_files)
    assert len(vm_request.config_hash) == 64
    assert '"web01"' in vm_request.rendered_files["terraform.tfvars"]

    page = logged_in.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "web01" in html and "Request submitted." in html and "machine.tf" in html


def test_a_static_request_keeps_its_network_settings(logged_in, warm):
    response = post(
        logged_in,
        ip_mode="static",
        ipv4_address="10.0.0.20",
        ipv4_prefix="24",
        ipv4_gateway="10.0.0.1",
        dns_servers="10.0.0.2, 10.0.0.3",
    )
    assert response.status_code == 302, errors_of(response)
    vm_request = VMRequest.objects.get()
    assert (vm_request.ipv4_address, vm_request.ipv4_prefix, vm_request.ipv4_gateway) == ("10.0.0.20", 24, "10.0.0.1")
    assert vm_request.dns_servers == ["10.0.0.2", "10.0.0.3"]
    assert '"10.0.0.20"' in vm_request.rendered_files["terraform.tfvars"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vm_name", 'web"01', "host name"),
        ("vm_name", "web${jndi}", "host name"),
        ("vm_name", "web\n01", "host name"),
        ("vm_name", "Web01", "host name"),
        ("vm_name", "-web", "host name"),
        ("vm_name", "x" * 64, "at most 63"),
        ("vm_name", "db01", "already exists"),
        # vCenter refuses a clone named like a template (a template is a VM to vCenter): refused here, not at clone.
        ("vm_name", "win2022", "A template named win2022 already exists"),
        ("domain", 'example.com"\n}', "DNS domain"),
        ("domain", "a" * 300, "at most 253"),
        ("notes", "x" * 2001, "at most 2000"),
        ("cluster", "domain-c8", "not in datacenter DC0"),
        ("resource_pool", "resgroup-12", "not in cluster"),
        ("datastore", "datastore-11", "not in cluster"),
        ("datastore", "datastore-02", "not accessible"),
        ("datastore", "datastore-03", "maintenance mode"),
        ("datastore", "datastore-full", "Datastore ds-full is full (\u22123 GB free)."),
        ("datastore", "datastore-empty", "Datastore ds-empty is full (0 GB free)."),
        ("network", "network-12", "not in cluster"),
        ("folder", "group-v19", "not in datacenter"),
        ("template", "vm-t1", "not in datacenter"),
        ("template", "vm-win", "Windows"),
        ("datacenter", "datacenter-404", "not in the vSphere inventory"),
        ("num_cpus", "0", "greater than or equal to 1"),
        ("num_cpus", "33", "less than or equal to 32"),
        ("memory_mb", "100", "greater than or equal to 512"),
        ("disk_size_gb", "10", "at least the template's 20 GB"),
        ("disk_size_gb", "300", "has 200 GB free"),
        ("datacenter", '"; DROP TABLE', "not in the vSphere inventory"),
    ],
)
def test_bad_input_is_refused_on_its_field_and_nothing_is_saved(logged_in, warm, field, value, message):
    response = post(logged_in, **{field: value})
    assert response.status_code == 400
    assert message in " ".join(errors_of(response)[field]), errors_of(response)
    assert VMRequest.objects.count() == 0
    # The user's input is kept in the page.
    form = response.context["form"]
    assert form.data["vm_name"] == (value if field == "vm_name" else "web01")
    assert form.data["notes"] == (value if field == "notes" else "for the web team")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ipv4_address": "10.0.0.5"}, "ipv4_address", "10.0.0.5 is already in use."),
        # A VM of the other datacenter reports 10.0.1.5: addresses are unique across the whole inventory.
        ({"ipv4_address": "10.0.1.5", "ipv4_gateway": "10.0.1.1"}, "ipv4_address", "10.0.1.5 is already in use."),
        ({"ipv4_gateway": "10.0.1.1"}, "ipv4_gateway", "not inside 10.0.0.0/24"),
        ({"ipv4_gateway": "10.0.0.20"}, "ipv4_gateway", "own address"),
        ({"ipv4_address": "10.0.0.255"}, "ipv4_address", "broadcast"),
        ({"ipv4_address": "10.0.0.300"}, "ipv4_address", "not an IPv4 address"),
        ({"ipv4_address": ""}, "ipv4_address", "Required"),
        ({"dns_servers": "10.0.0.2, ${var.x}"}, "dns_servers", "not an IPv4 address"),
        ({"ipv4_prefix": "33"}, "ipv4_prefix", "less than or equal to 30"),
    ],
)
def test_static_network_settings_are_checked(logged_in, warm, changes, field, message):
    static = {"ip_mode": "static", "ipv4_address": "10.0.0.20", "ipv4_prefix": "24", "ipv4_gateway": "10.0.0.1"}
    response = post(logged_in, **{**static, **changes})
    assert response.status_code == 400
    assert message in " ".join(errors_of(response)[field]), errors_of(response)


def test_only_staff_learn_which_vm_holds_an_address(logged_in, warm, staff):
    static = {"ip_mode": "static", "ipv4_address": "10.0.1.5", "ipv4_prefix": "24", "ipv4_gateway": "10.0.1.1"}
    # The VM list is staff-only: a requester learns that the address is taken, not by which VM.
    requester_sees = " ".join(errors_of(post(logged_in, **static))["ipv4_address"])
    assert "already in use" in requester_sees and "db01" not in requester_sees
    staff_client = Client()
    staff_client.force_login(staff)
    assert "already in use by VM db01" in " ".join(errors_of(post(staff_client, **static))["ipv4_address"])


@pytest.mark.parametrize("again", ["²", "³", "①", "٣", "1" * 5000, "-1", "1e3", " 1"])
def test_request_again_with_a_malformed_number_is_not_found(logged_in, warm, again):
    assert logged_in.get("/requests/new/", {"again": again}).status_code == 404


def test_an_open_request_holds_its_name_and_address(logged_in, warm):
    static = {"ip_mode": "static", "ipv4_address": "10.0.0.20", "ipv4_prefix": "24", "ipv4_gateway": "10.0.0.1"}
    assert post(logged_in, **static).status_code == 302
    again = post(logged_in, **static)
    assert "open request already asks" in " ".join(errors_of(again)["vm_name"])
    other_name = post(logged_in, vm_name="web02", **static)
    assert "taken by an open request" in " ".join(errors_of(other_name)["ipv4_address"])
    # The same name in another datacenter is fine.
    elsewhere = post(
        logged_in,
        datacenter="datacenter-3",
        cluster="domain-c8",
        resource_pool="resgroup-12",
        datastore="datastore-11",
        network="network-12",
        folder="group-v19",
        template="vm-t1",
    )
    assert elsewhere.status_code == 302, errors_of(elsewhere)


def test_a_cancelled_request_lets_go_of_its_name(logged_in, warm):
    post(logged_in)
    first = VMRequest.objects.get()
    assert logged_in.post(f"/requests/{first.pk}/cancel/").status_code == 302
    first.refresh_from_db()
    assert first.status == RequestStatus.CANCELLED
    assert [e.to_status for e in first.events.all()] == ["submitted", "cancelled"]
    assert post(logged_in).status_code == 302
    assert VMRequest.objects.count() == 2, "the cancelled request stays in the history"


def test_the_database_refuses_two_open_requests_for_one_name(requester, warm):
    from django.db import IntegrityError, transaction

    fields = request_fields(requester, vm_name="dup")
    VMRequest.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        VMRequest.objects.create(**fields)
    VMRequest.objects.create(**{**fields, "status": RequestStatus.REJECTED})  # closed requests do not count


def test_the_database_refuses_two_open_requests_for_one_address(requester, warm):
    from django.db import IntegrityError, transaction

    static = {"ip_mode": "static", "ipv4_address": "10.0.0.20", "ipv4_prefix": 24, "ipv4_gateway": "10.0.0.1"}
    VMRequest.objects.create(**request_fields(requester, vm_name="a1", **static))
    with pytest.raises(IntegrityError), transaction.atomic():
        VMRequest.objects.create(**request_fields(requester, vm_name="a2", datacenter_id="datacenter-3", **static))
    VMRequest.objects.create(**request_fields(requester, vm_name="a3", status=RequestStatus.CANCELLED, **static))


def test_request_again_prefills_the_form_from_a_failed_request(logged_in, warm):
    post(logged_in, notes='quotes " and ${x}')
    vm_request = VMRequest.objects.get()
    vm_request.transition(RequestStatus.PUSHING)
    vm_request.transition(RequestStatus.PUSH_FAILED, message="git push was rejected")
    page = logged_in.get(f"/requests/new/?again={vm_request.pk}")
    assert page.status_code == 200
    form = page.context["form"]
    assert form.initial["vm_name"] == "web01"
    assert form.initial["notes"] == 'quotes " and ${x}'
    placement = {p["name"]: p["selected"] for p in page.context["placement"]}
    assert placement == {
        "datacenter": "datacenter-2",
        "cluster": "domain-c7",
        "resource_pool": "resgroup-02",
        "datastore": "datastore-01",
        "network": "dvportgroup-01",
        "folder": "group-v09",
        "template": "vm-t0",
    }
    assert post(logged_in).status_code == 302, "the failed request no longer holds the name"


def test_a_user_cannot_see_or_act_on_anothers_request(logged_in, warm, django_user_model):
    post(logged_in)
    vm_request = VMRequest.objects.get()
    mallory = django_user_model.objects.create_user("mallory", password="x")
    client = Client()
    client.force_login(mallory)
    assert client.get(f"/requests/{vm_request.pk}/").status_code == 404
    assert client.post(f"/requests/{vm_request.pk}/cancel/").status_code == 404
    assert client.get(f"/requests/new/?again={vm_request.pk}").status_code == 404
    assert "web01" not in client.get("/requests/").content.decode()
    vm_request.refresh_from_db()
    assert vm_request.status == RequestStatus.SUBMITTED


def test_approvers_and_staff_see_every_request_but_cannot_cancel_others(logged_in, warm, django_user_model, staff):
    post(logged_in)
    vm_request = VMRequest.objects.get()
    approver = django_user_model.objects.create_user("bob", password="x")
    approver.groups.add(Group.objects.get_or_create(name="approvers")[0])
    client = Client()
    client.force_login(approver)
    assert client.get(f"/requests/{vm_request.pk}/").status_code == 200
    assert "web01" in client.get("/requests/").content.decode()
    client.post(f"/requests/{vm_request.pk}/cancel/")
    vm_request.refresh_from_db()
    assert vm_request.status == RequestStatus.SUBMITTED
    client.force_login(staff)
    assert client.get(f"/admin/provisioning/vmrequest/{vm_request.pk}/change/").status_code == 200


def test_the_form_says_when_the_inventory_cannot_be_read(logged_in, settings):
    from devtools.ports import free_port
    from tests.support.services import use_redis

    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    response = post(logged_in)
    assert response.status_code == 400
    assert "cannot be read right now" in " ".join(errors_of(response)["__all__"])
    assert response.context["form"].data["vm_name"] == "web01"


def test_transitions_are_claimed_once(requester, warm):
    from provisioning.models import TransitionRefused

    vm_request = VMRequest.objects.create(**request_fields(requester, vm_name="x1"))
    stale_copy = VMRequest.objects.get(pk=vm_request.pk)
    vm_request.transition(RequestStatus.PUSHING, message="worker A")
    with pytest.raises(TransitionRefused, match="someone moved it first"):
        stale_copy.transition(RequestStatus.PUSHING, message="worker B")
    with pytest.raises(TransitionRefused, match="cannot go from pushing to ready"):
        vm_request.transition(RequestStatus.READY)
    assert [e.message for e in vm_request.events.all()] == ["worker A"]


def test_the_form_page_tells_its_script_where_each_inventory_list_is(logged_in, warm):
    page = logged_in.get("/requests/new/").content.decode()
    urls = dict(re.findall(r'data-(\w+)-url="([^"]+)"', page))
    assert set(urls) == {"datacenters", "clusters", "folders", "templates", "resources"}

    for name, owner in [
        ("datacenters", ""),
        ("clusters", "datacenter-2"),
        ("folders", "datacenter-2"),
        ("templates", "datacenter-2"),
        ("resources", "domain-c7"),
    ]:
        response = logged_in.get(urls[name].replace("__id__", owner))
        assert response.status_code == 200, (name, urls[name])
        assert response.json()[name if name != "resources" else "resource_pools"]


@pytest.mark.parametrize("character", ["\x01", "\x07", "\x0b", "\x1f", "\ufffe", "\uffff"])
def test_notes_vcenter_cannot_store_are_a_form_error_and_nothing_is_saved(logged_in, warm, character):
    response = post(logged_in, notes=f"bell{character}here")
    assert response.status_code == 400
    [error] = errors_of(response)["notes"]
    assert f"U+{ord(character):04X}" in error and "position 5" in error and "vCenter cannot store" in error
    assert not VMRequest.objects.exists()


def test_tabs_newlines_and_any_other_unicode_stay_allowed_in_notes(logged_in, warm):
    notes = "line one\r\n\tline two — Zürich ✓ \u202eright-to-left\u202c"
    assert post(logged_in, notes=notes).status_code == 302
    assert VMRequest.objects.get().notes == notes


def test_a_full_datastore_is_refused_on_its_field_whatever_the_disk_size(logged_in, warm):
    response = post(logged_in, datastore="datastore-full", disk_size_gb="")
    assert errors_of(response)["datastore"] == ["Datastore ds-full is full (\u22123 GB free)."]
    assert "disk_size_gb" in errors_of(response)  # required, and nothing about the datastore there
    assert "ds-full" not in " ".join(errors_of(response)["disk_size_gb"])
    assert not VMRequest.objects.exists()


def test_the_form_says_which_sizes_are_approved_without_a_person(logged_in, warm, settings):
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}
    page = logged_in.get("/requests/new/").content.decode()
    assert (
        '<p class="help" id="auto-approval">Approved automatically: up to 4 CPUs, 8192 MB memory and 100 GB disk. '
        "A request above any of these waits for an approver.</p>"
    ) in page
    for field in ("num_cpus", "memory_mb", "disk_size_gb"):
        assert re.search(rf'<input [^>]*aria-describedby="auto-approval"[^>]*id="id_{field}"', page), field

    settings.VMPROV_AUTO_APPROVE = None
    page = logged_in.get("/requests/new/").content.decode()
    assert '<p class="help" id="auto-approval">Auto-approval is off: every request waits for an approver.</p>' in page
    # A refused form says it too.
    assert "Auto-approval is off" in post(logged_in, vm_name="").content.decode()


def test_request_again_tells_the_script_what_the_earlier_request_chose_by_name(logged_in, warm):
    assert post(logged_in, vm_name="web02").status_code == 302
    earlier = VMRequest.objects.get()
    earlier.transition(RequestStatus.CANCELLED)
    page = logged_in.get(f"/requests/new/?again={earlier.pk}").content.decode()
    assert f'data-again="{earlier.pk}"' in page
    choices = dict(re.findall(r'<select name="(\w+)"[^>]*data-again-choice="([^"]*)"', page))
    assert choices == {
        "datacenter": "DC0",
        "cluster": "cluster 0",
        "resource_pool": "Resources/web",
        "datastore": "ds-fast",
        "network": "VLAN 10",
        "folder": "/web",
        "template": "ubuntu-22.04",
    }
    # Each list has a place for the note, which the select points at, hidden until the script fills it.
    assert re.search(r'aria-describedby="status-datastore again-datastore"', page)
    assert '<div class="field-note" id="again-datastore" hidden></div>' in page
    # A new request has no earlier choice to speak of.
    fresh = logged_in.get("/requests/new/").content.decode()
    assert "data-again" not in fresh and "field-note" not in fresh
