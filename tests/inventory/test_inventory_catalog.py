"""The catalog as the rest of vmprov's one door to the inventory: only its own errors, no pyVmomi loaded to read
it, `find_vm`, the look-up delivery makes after refreshing a cluster, and a delivered VM read by id (`vms_by_id`,
`refresh_vm`)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyVim.task import WaitForTask

from devtools.ports import free_port
from inventory import cache, catalog, tasks
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from inventory.snapshot import Scope
from tests.support.inventory_data import sample_snapshot
from tests.support.services import use_redis
from tests.support.vcenter_admin import admin_session, find, rename, vim

ROOT = Path(__file__).resolve().parents[2]


def loaded_vsphere_modules(code: str) -> list[str]:
    """Run `code` in a fresh interpreter on the test settings; the pyVmomi / pyVim modules it left loaded."""
    check = "; import sys; print(sorted(m for m in sys.modules if m.startswith(('pyVmomi', 'pyVim'))))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code + check], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_the_catalog_cache_tasks_views_and_request_form_load_no_pyvmomi():
    # Without the admin's autodiscovery: provisioning.admin imports provisioning.delivery, which still imports
    # inventory.refresh itself (see the next test).
    code = (
        "from django.conf import settings; "
        "settings.INSTALLED_APPS = ['django.contrib.admin.apps.SimpleAdminConfig' if app == 'django.contrib.admin' "
        "else app for app in settings.INSTALLED_APPS]; "
        "import django; django.setup(); "
        "import inventory.cache, inventory.catalog, inventory.tasks, inventory.views, inventory.admin, "
        "provisioning.forms"
    )
    assert loaded_vsphere_modules(code) == []


def test_setting_up_django_and_reading_the_catalog_loads_no_pyvmomi():
    code = "import django; django.setup(); import inventory.cache, inventory.catalog, provisioning.forms"
    assert loaded_vsphere_modules(code) == []


def test_redis_being_down_reaches_callers_as_the_catalogs_unavailable(settings):
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    for read in (catalog.datacenters, lambda: catalog.vms("datacenter-2"), lambda: catalog.cluster_resources("c")):
        with pytest.raises(catalog.Unavailable, match=r"Redis at redis://127\.0\.0\.1") as raised:
            read()
        assert not isinstance(raised.value, cache.CacheUnavailable)
        assert raised.value.retry_after == 5


# --- find_vm -----------------------------------------------------------------------------------


def vcsim_vm(vcsim, name: str) -> dict:
    """Where vcsim placed VM `name`, as vCenter says: its ids and BIOS UUID."""
    with admin_session(vcsim) as si:
        vm = find(si, vim.VirtualMachine, name)
        cluster = vm.runtime.host.parent
        datacenter = cluster.parent
        while not isinstance(datacenter, vim.Datacenter):
            datacenter = datacenter.parent
        return {"id": vm._moId, "uuid": vm.config.uuid, "cluster_id": cluster._moId, "datacenter_id": datacenter._moId}


@pytest.mark.vcsim
@pytest.mark.django_db(transaction=True)
def test_find_vm_refreshes_the_cluster_first_and_matches_name_cluster_and_uuid(vcenter, real_redis):
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)
    placed = vcsim_vm(vcenter, "DC0_C0_RP0_VM1")
    with admin_session(vcenter) as si:
        rename(si, vim.VirtualMachine, "DC0_C0_RP0_VM1", "web01")  # after the warm-up: only a refresh sees it

    found = catalog.find_vm(placed["datacenter_id"], placed["cluster_id"], "web01")

    assert found.problem == ""
    assert found.vm["id"] == placed["id"] and found.vm["name"] == "web01"
    run = RefreshRun.objects.get(trigger=RefreshTrigger.DELIVERY)
    assert (run.scope, run.outcome) == (Scope.cluster(placed["cluster_id"]).label, RefreshOutcome.SUCCEEDED)

    by_uuid = catalog.find_vm(placed["datacenter_id"], placed["cluster_id"], "web01", placed["uuid"].upper())
    assert by_uuid.vm["id"] == placed["id"], "the UUID matches in any case"
    other_uuid = catalog.find_vm(placed["datacenter_id"], placed["cluster_id"], "web01", "4230b6d5-0000-0000-0000-0")
    assert other_uuid == catalog.VMLookup(None, "")
    elsewhere = vcsim_vm(vcenter, "DC1_C0_RP0_VM1")["cluster_id"]
    assert catalog.find_vm(placed["datacenter_id"], elsewhere, "web01") == catalog.VMLookup(None, "")


@pytest.mark.vcsim
@pytest.mark.django_db(transaction=True)
def test_find_vm_of_a_cluster_vcenter_no_longer_has_says_so(vcenter, real_redis):
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)
    placed = vcsim_vm(vcenter, "DC0_C0_RP0_VM1")

    found = catalog.find_vm(placed["datacenter_id"], "domain-c404", "DC0_C0_RP0_VM1")

    assert found.vm is None
    assert found.problem == "vCenter has no cluster domain-c404"


@pytest.mark.django_db(transaction=True)
def test_find_vm_after_a_failed_refresh_still_finds_a_cached_vm_and_says_why(settings, real_redis):
    cache.write_snapshot(sample_snapshot())
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"  # nothing listens: the refresh fails

    found = catalog.find_vm("datacenter-2", "domain-c7", "db01", "4230B6D5-0000-0000-0000-000000000000")

    assert found.vm["id"] == "vm-000"
    assert "cannot reach vCenter" in found.problem
    assert RefreshRun.objects.get().outcome == RefreshOutcome.FAILED


@pytest.mark.django_db(transaction=True)
def test_find_vm_answers_none_when_a_name_is_taken_twice_in_the_cluster(settings, real_redis):
    snapshot = sample_snapshot()
    twin = {**snapshot.vms["datacenter-2"][0], "id": "vm-twin", "uuid": "4230b6d5-0000-0000-0000-0000000000ff"}
    snapshot.vms["datacenter-2"].append(twin)
    cache.write_snapshot(snapshot)
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"

    assert catalog.find_vm("datacenter-2", "domain-c7", "db01").vm is None
    assert catalog.find_vm("datacenter-2", "domain-c7", "db01", twin["uuid"]).vm["id"] == "vm-twin"


@pytest.mark.django_db(transaction=True)
def test_find_vm_without_redis_answers_none_with_the_refresh_error(settings):
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")

    found = catalog.find_vm("datacenter-2", "domain-c7", "db01")

    assert found.vm is None
    assert "Redis at redis://127.0.0.1" in found.problem
    assert RefreshRun.objects.get().error == found.problem


@pytest.mark.django_db(transaction=True)
def test_find_vm_in_an_unknown_datacenter_says_why_when_the_refresh_found_nothing_wrong(settings, monkeypatch):
    from inventory import refresh as refresher

    cache.write_snapshot(sample_snapshot())
    monkeypatch.setattr(refresher, "refresh", lambda scope, trigger, wait=0: None)  # another worker is refreshing

    found = catalog.find_vm("datacenter-404", "domain-c7", "db01")

    assert found == catalog.VMLookup(None, "datacenter datacenter-404 is not in the vSphere inventory")


# --- A delivered VM: read by id, refreshed after a resize or a destroy -------------------------------------------


@pytest.mark.django_db
def test_vms_by_id_reads_only_those_vms_with_the_lists_freshness():
    snapshot = sample_snapshot()
    cache.write_snapshot(snapshot)
    wanted = snapshot.vms["datacenter-2"][0]

    listing = catalog.vms_by_id("datacenter-2", [wanted["id"], "vm-gone"])

    assert listing.items == [wanted]
    assert listing.fetched_at > 0 and listing.stale is False
    assert catalog.vms_by_id("datacenter-2", []).items == []


@pytest.mark.vcsim
@pytest.mark.django_db(transaction=True)
def test_refresh_vm_sees_a_resize_vcenter_sent_no_update_for_and_a_vm_that_is_gone(vcenter, real_redis):
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)
    placed = vcsim_vm(vcenter, "DC0_C0_RP0_VM1")
    with admin_session(vcenter) as si:
        WaitForTask(find(si, vim.VirtualMachine, "DC0_C0_RP0_VM1").ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=7)))
    assert catalog.vms_by_id(placed["datacenter_id"], [placed["id"]]).items[0]["num_cpus"] != 7, "cached before"

    found = catalog.refresh_vm(placed["datacenter_id"], placed["id"], "domain-c-unused")

    assert (found.problem, found.vm["num_cpus"]) == ("", 7)
    assert RefreshRun.objects.filter(trigger=RefreshTrigger.DELIVERY).get().scope == f"cluster:{placed['cluster_id']}"
    with admin_session(vcenter) as si:
        vm = find(si, vim.VirtualMachine, "DC0_C0_RP0_VM1")
        WaitForTask(vm.PowerOffVM_Task())
        WaitForTask(vm.Destroy_Task())
    assert catalog.refresh_vm(placed["datacenter_id"], placed["id"], placed["cluster_id"]) == catalog.VMLookup(None, "")
