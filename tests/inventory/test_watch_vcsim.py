"""The watcher against real parts: vcsim (govmomi 0.24) for vCenter, a real redis-server for the cache.

Changes reach the API within seconds; readers stop refreshing while it is live and say so; a restarted vCenter is
followed again with nothing left behind; readers never wait for a hung vCenter; Redis hanging while updates arrive
is caught up afterwards; the admin page shows the watcher.
"""

import os
import signal
import time

import pytest
from django.test import Client
from django_q.models import OrmQ
from pyVim.task import WaitForTask

from devtools.ports import free_port
from devtools.redis_server import start_redis
from inventory import cache, tasks, watch_store
from inventory.choices import RefreshOutcome
from inventory.models import RefreshRun
from tests.support.services import use_redis, use_vcenter
from tests.support.vcenter_admin import admin_session, find, rename, vim
from tests.support.watching import wait_until, watching

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]


@pytest.fixture
def api(staff):
    client = Client()
    client.force_login(staff)
    return client


def first_datacenter(api) -> str:
    return api.get("/api/vsphere/datacenters").json()["datacenters"][0]["id"]


def listed_vms(api, datacenter_id: str, *, unavailable_is_empty: bool = False) -> dict[str, dict]:
    response = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/vms")
    if response.status_code == 503 and unavailable_is_empty:
        return {}
    return {vm["name"]: vm for vm in response.json()["vms"]}


def test_renames_new_vms_power_changes_and_removals_reach_the_api_within_seconds(vcenter, real_redis, api):
    with watching():
        datacenter_id = first_datacenter(api)
        before = listed_vms(api, datacenter_id)
        name = sorted(n for n, vm in before.items() if vm["power_state"] == "poweredOn")[0]
        with admin_session(vcenter) as si:
            rename(si, vim.VirtualMachine, name, "renamed by hand")
            took_rename = wait_until(lambda: "renamed by hand" in listed_vms(api, datacenter_id), 2, "the rename")

            vm = find(si, vim.VirtualMachine, "renamed by hand")
            WaitForTask(vm.PowerOffVM_Task())
            took_power = wait_until(
                lambda: listed_vms(api, datacenter_id)["renamed by hand"]["power_state"] == "poweredOff",
                2,
                "the power-off",
            )

            spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=False)
            WaitForTask(vm.CloneVM_Task(folder=vm.parent, name="brand new", spec=spec))
            took_new = wait_until(lambda: "brand new" in listed_vms(api, datacenter_id), 2, "the new VM")

            WaitForTask(vm.Destroy_Task())
            took_removal = wait_until(lambda: "renamed by hand" not in listed_vms(api, datacenter_id), 2, "the removal")

        answer = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/vms").json()
    assert max(took_rename, took_power, took_new, took_removal) < 2
    new = listed_vms_from(answer)["brand new"]
    assert new["cluster_id"] and new["uuid"], "the new VM is placed and has its UUID"
    assert answer["live"] is True and answer["stale"] is False
    assert answer["freshness"] == f"live, last update at {answer['last_update_at']}"
    assert RefreshRun.objects.count() == 0, "no collection besides the watcher's own"


def listed_vms_from(answer: dict) -> dict[str, dict]:
    return {vm["name"]: vm for vm in answer["vms"]}


def test_while_a_watcher_is_live_old_lists_are_not_refreshed_and_once_it_stops_they_are(
    settings, vcenter, real_redis, api
):
    settings.INVENTORY_SOFT_AGE = 0  # every list is past its soft age at once
    with watching():
        time.sleep(1.1)
        answers = [api.get("/api/vsphere/datacenters").json() for _ in range(3)]
        job = tasks.refresh_all()
        assert all(a["live"] and not a["stale"] for a in answers)
        assert OrmQ.objects.count() == 0, "no refresh queued"
        assert job["outcome"] == RefreshOutcome.SKIPPED and RefreshRun.objects.count() == 0

    after = api.get("/api/vsphere/datacenters").json()
    assert after["live"] is False and after["last_update_at"] is None
    assert after["stale"] is True and after["freshness"] == f"snapshot at {after['fetched_at']}"
    assert OrmQ.objects.count() == 1, "the periodic and soft-age refreshes are the fallback again"


def test_a_restarted_vcenter_is_followed_again_and_what_it_lost_is_gone(settings, vcsim_factory, real_redis, api):
    address = f"127.0.0.1:{free_port()}"
    before = vcsim_factory(dc=1, vm=4, listen=address)
    use_vcenter(settings, before)
    with watching() as watcher:
        datacenter_id = first_datacenter(api)
        assert len(listed_vms(api, datacenter_id)) == 3  # the fourth VM is made a template

        before.stop()
        vcsim_factory(dc=1, vm=2, listen=address)  # the same vCenter, restarted with fewer VMs

        wait_until(lambda: watcher.status.reconnects >= 1, 30, "the watcher noticed the restart")
        wait_until(lambda: len(listed_vms(api, datacenter_id)) == 1, 30, "the watcher reloaded the new inventory")
        answer = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/vms").json()
    assert answer["live"] is True


def test_readers_answer_at_once_while_vcenter_hangs_and_say_the_lists_are_a_snapshot(vcenter, real_redis, api):
    with watching() as watcher:
        datacenter_id = first_datacenter(api)
        os.kill(vcenter.process.pid, signal.SIGSTOP)
        try:
            slowest = 0.0
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                started = time.monotonic()
                answer = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/clusters").json()
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.05)
            assert answer["live"] is False, "the live marker went with vCenter's answers"
            assert answer["freshness"].startswith("snapshot at")
        finally:
            os.kill(vcenter.process.pid, signal.SIGCONT)
        wait_until(lambda: cache.watcher_live() is not None, 30, "live again once vCenter answers")
    assert slowest < 0.5, f"a read took {slowest:.2f} s while vCenter hung"
    assert watcher.status.reconnects >= 1


def test_redis_hanging_while_updates_arrive_is_caught_up_once_it_answers(settings, vcenter, api):
    settings.INVENTORY_REDIS_BREAKER_SECONDS = 0.2
    redis = start_redis()
    try:
        use_redis(settings, redis.url)
        with watching() as watcher:
            datacenter_id = first_datacenter(api)
            name = sorted(listed_vms(api, datacenter_id))[0]
            os.kill(redis.process.pid, signal.SIGSTOP)
            try:
                with admin_session(vcenter) as si:
                    rename(si, vim.VirtualMachine, name, "renamed while Redis hung")
                wait_until(lambda: watcher.unwritten, 10, "the watcher's write failed")
            finally:
                os.kill(redis.process.pid, signal.SIGCONT)
            wait_until(
                lambda: "renamed while Redis hung" in listed_vms(api, datacenter_id, unavailable_is_empty=True),
                15,
                "the rename caught up",
            )
            assert cache.watcher_live() is not None
    finally:
        redis.stop()


def test_the_admin_cache_page_shows_the_watcher(vcenter, real_redis, api):
    with watching(replica="replica-one"):
        wait_until(
            lambda: watch_store.replica_statuses() and watch_store.replica_statuses()[0]["heard_at"], 5, "status"
        )
        page = api.get("/admin/inventory/refreshrun/cache/").content.decode()
    assert "replica-one" in page and "leader, live" in page and "connected" in page

    stopped = api.get("/admin/inventory/refreshrun/cache/").content.decode()
    assert "standby" in stopped and "not connected" in stopped


def test_new_and_removed_folders_and_a_renamed_cluster_reach_the_api_within_seconds(vcenter, real_redis, api):
    # (A new resource pool would too on a real vCenter; govmomi 0.24's CreateResourcePool registers the pool before
    # listing it under its parent, so vcsim's ContainerView never reports it: it shows at the next reload.)
    with watching():
        datacenter_id = first_datacenter(api)
        cluster = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/clusters").json()["clusters"][0]
        resources_path = f"/api/vsphere/hierarchical/clusters/{cluster['id']}/resources"
        folders_path = f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/folders"
        with admin_session(vcenter) as si:
            datacenter = find(si, vim.Datacenter, api.get("/api/vsphere/datacenters").json()["datacenters"][0]["name"])
            folder = datacenter.vmFolder.CreateFolder("apps / prod")
            wait_until(
                lambda: "apps %2f prod" in {f["path"] for f in api.get(folders_path).json()["folders"]},
                2,
                "the new folder",
            )
            WaitForTask(folder.Destroy_Task())
            wait_until(
                lambda: "apps %2f prod" not in {f["path"] for f in api.get(folders_path).json()["folders"]},
                2,
                "the removed folder",
            )
            rename(si, vim.ClusterComputeResource, cluster["name"], "renamed cluster")
            wait_until(lambda: api.get(resources_path).json()["cluster"]["name"] == "renamed cluster", 2, "rename")
        clusters = api.get(f"/api/vsphere/hierarchical/datacenters/{datacenter_id}/clusters").json()["clusters"]
    assert "renamed cluster" in {c["name"] for c in clusters}
