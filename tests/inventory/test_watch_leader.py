"""Several watcher replicas, one leader: the lease, its fencing token on every write, and takeover when the
leader dies or hangs. Against the tests' own redis-server; the takeovers with real `manage.py watch_inventory`
processes on a vcsim."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from inventory import cache, catalog, watch_store
from tests.support.inventory_data import sample_snapshot
from tests.support.vcenter_admin import admin_session, rename, vim
from tests.support.watching import wait_until

ROOT = Path(__file__).resolve().parents[2]
LIVE = {"replica": "test", "since": 1.0, "last_update_at": 1.0, "heard_at": 1.0}


def vm_change(name: str) -> watch_store.KeyChange:
    vm = {"id": "vm-000", "name": name, "cluster_id": "domain-c7"}
    return watch_store.objects_change(cache.datacenter_key("datacenter-2", "vms"), [vm], [], {"fetched_at": 1.0})


def cached_vm_name() -> str:
    return next(vm["name"] for vm in catalog.vms("datacenter-2").items if vm["id"] == "vm-000")


def test_one_lease_at_a_time_and_a_replica_whose_lease_expired_cannot_write(real_redis):
    first = watch_store.acquire_lease("replica-a", 0.3)
    assert first is not None and watch_store.acquire_lease("replica-b", 0.3) is None
    watch_store.replace_everything(first, sample_snapshot(), LIVE, 5, time.time())
    watch_store.apply_changes(first, [vm_change("written by a")], [], LIVE, 5)
    assert cached_vm_name() == "written by a"

    time.sleep(0.4)  # replica a hangs: its lease expires, b takes over
    second = watch_store.acquire_lease("replica-b", 10)
    assert second is not None and int(second.split(":")[0]) > int(first.split(":")[0])

    assert watch_store.renew_lease(first, 10) is False
    with pytest.raises(cache.Fenced):
        watch_store.apply_changes(first, [vm_change("late write by a")], [], LIVE, 5)
    with pytest.raises(cache.Fenced):
        watch_store.replace_everything(first, sample_snapshot("stale"), LIVE, 5, time.time())
    with pytest.raises(cache.Fenced):
        watch_store.heartbeat(first, LIVE, 5)
    assert cached_vm_name() == "written by a"
    assert real_redis.keys(f"{cache.PREFIX}tmp:*") == [], "the refused reload left no staged keys"

    watch_store.apply_changes(second, [vm_change("written by b")], [], LIVE, 5)
    assert cached_vm_name() == "written by b"


def test_a_released_lease_is_taken_at_once_and_takes_the_live_marker_with_it(real_redis):
    token = watch_store.acquire_lease("replica-a", 30)
    watch_store.heartbeat(token, LIVE, 30)
    assert cache.watcher_live() == LIVE

    watch_store.release_lease(token)

    assert cache.watcher_live() is None
    assert watch_store.acquire_lease("replica-b", 30) is not None


def test_a_refresh_collected_before_the_watcher_went_live_is_not_written_over_it(real_redis):
    token = watch_store.acquire_lease("replica-a", 30)
    watch_store.replace_everything(token, sample_snapshot("watcher"), LIVE, 30, time.time())

    with pytest.raises(cache.WatcherLive):
        cache.write_snapshot(sample_snapshot("older refresh"))

    assert {dc["generation"] for dc in catalog.datacenters().items} == {"watcher"}
    assert real_redis.keys(f"{cache.PREFIX}tmp:*") == []


# --- Real replicas ---------------------------------------------------------------------------------


def start_replica(vcsim, redis_url: str, log: Path) -> subprocess.Popen:
    """`manage.py watch_inventory` as scripts/run starts it, paced for a test (lease 2 s, waits of 1 s)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_FILE")},
        "DJANGO_SETTINGS_MODULE": "vmprov.settings",
        "SECRET_KEY": secrets.token_urlsafe(30),
        "REDIS_URL": redis_url,
        "VSPHERE_SERVER": vcsim.server,
        "VSPHERE_USER": vcsim.user,
        "VSPHERE_PASSWORD": vcsim.password,
        "VSPHERE_ALLOW_UNVERIFIED_SSL": "true",
        "VSPHERE_TIMEOUT": "3",
        "INVENTORY_WATCH_WAIT_SECONDS": "1",
        "INVENTORY_WATCH_LEASE_SECONDS": "2",
        "INVENTORY_WATCH_BACKOFF_MAX": "1",
        "LOG_LEVEL": "INFO",
    }
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "watch_inventory"], env=env, cwd=ROOT, stdout=out, stderr=out
        )


def leader_pid() -> int | None:
    live = cache.watcher_live()
    return int(live["replica"].split(":")[1]) if live else None


def replica(pid: int) -> dict:
    return next((s for s in watch_store.replica_statuses() if s["pid"] == pid), {})


def renamed_in_cache(name: str) -> bool:
    return any(vm["name"] == name for vm in catalog.vms(datacenter_id()).items)


def datacenter_id() -> str:
    return catalog.datacenters().items[0]["id"]


@pytest.mark.vcsim
def test_a_paused_leader_is_replaced_and_fenced_off_and_a_dead_one_replaced(
    vcenter, real_redis, redis_server, tmp_path
):
    url = django_settings.CACHES["default"]["LOCATION"]
    first = start_replica(vcenter, url, tmp_path / "first.log")
    second = None
    try:
        wait_until(lambda: leader_pid() == first.pid, 60, "the first replica leads")
        second = start_replica(vcenter, url, tmp_path / "second.log")
        wait_until(lambda: replica(second.pid).get("leader") is False, 60, "the second replica stands by")
        vm_name = sorted(vm["name"] for vm in catalog.vms(datacenter_id()).items)[0]

        os.kill(first.pid, signal.SIGSTOP)  # the leader hangs: no renewals, no writes
        took_over = wait_until(lambda: leader_pid() == second.pid, 20, "the standby takes over")
        with admin_session(vcenter) as si:
            rename(si, vim.VirtualMachine, vm_name, "renamed under the second leader")
        wait_until(lambda: renamed_in_cache("renamed under the second leader"), 5, "the new leader writes")

        os.kill(first.pid, signal.SIGCONT)  # the old leader wakes up, still believing it leads
        wait_until(lambda: replica(first.pid).get("leader") is False, 20, "the old leader steps down")
        assert leader_pid() == second.pid and renamed_in_cache("renamed under the second leader")
        # It learns it from its keeper's refused renewal, or from a write the fencing token refused.
        log = (tmp_path / "first.log").read_text()
        assert "expired or was taken over" in log or "stops leading" in log

        second.kill()  # the leader dies without a word: its lease runs out
        wait_until(lambda: leader_pid() == first.pid, 20, "the first replica takes over again")
        with admin_session(vcenter) as si:
            rename(si, vim.VirtualMachine, "renamed under the second leader", "renamed under the first again")
        wait_until(lambda: renamed_in_cache("renamed under the first again"), 5, "the first replica writes again")

        first.send_signal(signal.SIGTERM)  # a clean stop gives the lease and the live marker up at once
        assert first.wait(15) == 0
        assert watch_store.lease_holder() is None and cache.watcher_live() is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
    assert took_over < 2 + 2 + 5, "within the lease, a standby's look at it, and a reload"
