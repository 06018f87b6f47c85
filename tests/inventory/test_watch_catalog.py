"""Readers while a watcher is live (its marker in Redis, set here by hand): answers say "live, last update at …",
nothing is collected or queued, an admin refresh asks the watcher for a reload; without the marker the answers are
a snapshot again and the soft-age refresh is back."""

import io
import time

import pytest
from django.core.management import call_command
from django_q.models import OrmQ
from django_redis import get_redis_connection

from inventory import cache, catalog, tasks, watch_store
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from tests.support.inventory_data import sample_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
LAST_UPDATE = 1_700_000_000.0


@pytest.fixture
def live():
    """A warm cache a day old, then a watcher that went live (its lease and marker)."""
    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 86_000)
    token = watch_store.acquire_lease("replica-a", 30)
    watch_store.heartbeat(token, {"replica": "replica-a", "last_update_at": LAST_UPDATE, "heard_at": time.time()}, 30)
    return token


def test_answers_are_live_with_their_last_update_and_old_lists_are_not_refreshed(logged_in, live):
    body = logged_in.get("/api/vsphere/datacenters").json()
    resources = logged_in.get("/api/vsphere/hierarchical/clusters/domain-c7/resources").json()

    assert body["live"] is True and body["stale"] is False
    assert body["last_update_at"] == catalog.iso(LAST_UPDATE) == resources["last_update_at"]
    assert body["freshness"] == f"live, last update at {catalog.iso(LAST_UPDATE)}"
    assert resources["live"] is True and resources["templates_status"] == catalog.TEMPLATES_OK
    assert OrmQ.objects.count() == 0, "no soft-age refresh while live"


def test_once_the_watcher_is_gone_answers_are_a_snapshot_and_old_lists_are_refreshed(logged_in, live):
    watch_store.release_lease(live)

    body = logged_in.get("/api/vsphere/datacenters").json()

    assert body["live"] is False and body["last_update_at"] is None and body["stale"] is True
    assert body["freshness"] == f"snapshot at {body['fetched_at']}"
    assert OrmQ.objects.count() == 1


def test_a_list_missing_while_live_is_not_in_vcenter_and_nothing_is_collected(logged_in, live, settings):
    settings.VSPHERE_SERVER = "vcenter.invalid"  # a collection would fail loudly
    get_redis_connection("default").delete(cache.datacenter_key("datacenter-2", "folders"))

    missing_list = logged_in.get("/api/vsphere/hierarchical/datacenters/datacenter-2/folders")
    unknown_cluster = logged_in.get("/api/vsphere/hierarchical/clusters/domain-c99/resources")

    assert (missing_list.status_code, unknown_cluster.status_code) == (404, 404)
    assert RefreshRun.objects.count() == 0 and OrmQ.objects.count() == 0


def test_delivery_finds_a_vm_in_the_cache_without_a_refresh_while_live(live):
    found = catalog.find_vm("datacenter-2", "domain-c7", "db01")

    assert found.vm["id"] == "vm-000" and found.problem == ""
    assert RefreshRun.objects.count() == 0


def test_refresh_jobs_collect_nothing_while_live_and_an_admin_refresh_asks_for_a_reload(live):
    scheduled = tasks.refresh_all()
    asked = tasks.refresh_scope("cluster:domain-c7", RefreshTrigger.ADMIN)

    assert scheduled["outcome"] == asked["outcome"] == RefreshOutcome.SKIPPED
    assert RefreshRun.objects.count() == 0
    assert watch_store.heartbeat(live, None, 30) is True, "the watcher is asked for a full reload"
    assert watch_store.heartbeat(live, None, 30) is False, "once"


def test_warm_cache_leaves_a_live_cache_to_its_watcher(live):
    out = io.StringIO()

    call_command("warm_cache", stdout=out)

    assert "A watcher (replica-a) keeps the cache live" in out.getvalue()
    assert RefreshRun.objects.count() == 0


def test_delivery_reads_a_vm_without_collecting_and_asks_the_watcher_to_look_again(live, settings):
    """After a resize, delivery reads the VM from the lists the watcher keeps; when they lag behind vCenter (vcsim
    sends no update for a reconfiguration) it asks the watcher to read vCenter again instead of collecting."""
    settings.VSPHERE_SERVER = "vcenter.invalid"  # a collection would fail loudly
    vm = sample_snapshot().vms["datacenter-2"][0]

    found = catalog.refresh_vm("datacenter-2", vm["id"], vm["cluster_id"])
    catalog.ask_for_a_fresh_look()

    assert found.vm is not None and found.vm["id"] == vm["id"] and found.problem == ""
    assert RefreshRun.objects.count() == 0, "nothing collected while the watcher is live"
    assert get_redis_connection("default").get(cache.watcher_key("resync")) == b"1"
