"""The Redis layout: keys, JSON values, TTLs, atomic replacement, failure handling, locks.

Each test runs on fakeredis and on a real redis-server of the tests' own.
"""

import json
import threading
import time

import pytest
from django_redis import get_redis_connection

from inventory import cache, refresh_locks
from inventory.snapshot import Scope
from tests.support.inventory_data import sample_snapshot


@pytest.fixture(params=["fakeredis", "redis-server"])
def redis_client(request):
    if request.param == "redis-server":
        return request.getfixturevalue("real_redis")
    return get_redis_connection("default")


def test_a_snapshot_is_stored_as_json_hashes_by_datacenter_and_cluster(redis_client, settings):
    cache.write_snapshot(sample_snapshot(), fetched_at=1000.0)

    keys = sorted(k.decode() for k in redis_client.keys("vmprov:inventory:*"))
    assert keys == sorted(
        [
            "vmprov:inventory:datacenters",
            *[
                f"vmprov:inventory:dc:{dc}:{kind}"
                for dc in ("datacenter-2", "datacenter-3")
                for kind in ("clusters", "templates", "vms", "folders")
            ],
            "vmprov:inventory:cluster:domain-c7:resources",
            "vmprov:inventory:cluster:domain-c8:resources",
        ]
    )
    raw = redis_client.hgetall("vmprov:inventory:datacenters")
    assert json.loads(raw[b"datacenter-3"]) == {"id": "datacenter-3", "name": "Zürich / prod", "generation": "a"}
    assert json.loads(raw[b"_meta"]) == {"fetched_at": 1000.0, "scope": "all"}
    for value in raw.values():
        json.loads(value)  # JSON everywhere, never pickle

    resources = redis_client.hgetall("vmprov:inventory:cluster:domain-c7:resources")
    assert {k.decode().split(":")[0] for k in resources} == {"pool", "datastore", "network", "_meta"}


def test_hierarchical_keys_and_templates_get_their_own_ttl(redis_client, settings):
    settings.INVENTORY_TTL = 1000
    settings.INVENTORY_TEMPLATE_TTL = 50000
    cache.write_snapshot(sample_snapshot())
    assert 990 <= redis_client.ttl("vmprov:inventory:dc:datacenter-2:clusters") <= 1000
    assert 990 <= redis_client.ttl("vmprov:inventory:cluster:domain-c7:resources") <= 1000
    assert 49990 <= redis_client.ttl("vmprov:inventory:dc:datacenter-2:templates") <= 50000
    assert not redis_client.keys("vmprov:inventory:tmp:*"), "no temporary key is left behind"


def test_reading_returns_items_and_freshness(redis_client):
    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 30)
    datacenters = cache.read_hash(cache.datacenters_key())
    assert cache.read_hash(cache.datacenter_key("datacenter-9", "vms")) is None
    assert set(datacenters.items) == {"datacenter-2", "datacenter-3"}
    assert 29 <= datacenters.age() <= 40
    assert datacenters.error is None
    grouped = cache.resources_from(cache.read_hash(cache.resources_key("domain-c7")))
    assert [p["path"] for p in grouped["resource_pools"]] == ["Resources", "Resources/web"]
    assert [d["name"] for d in grouped["datastores"]] == ["ds-down", "ds-fast", "ds-maint"]


def test_a_refresh_replaces_removed_objects_and_scopes(redis_client):
    cache.write_snapshot(sample_snapshot())
    smaller = sample_snapshot("b")
    smaller.datacenters = smaller.datacenters[:1]
    for groups in (smaller.clusters, smaller.templates, smaller.vms, smaller.folders):
        groups.pop("datacenter-3")
    smaller.resources.pop("domain-c8")
    smaller.resources["domain-c7"]["networks"] = smaller.resources["domain-c7"]["networks"][:1]

    cache.write_snapshot(smaller)

    assert set(cache.read_hash(cache.datacenters_key()).items) == {"datacenter-2"}
    assert not redis_client.exists("vmprov:inventory:dc:datacenter-3:clusters")
    assert not redis_client.exists("vmprov:inventory:cluster:domain-c8:resources")
    networks = cache.resources_from(cache.read_hash(cache.resources_key("domain-c7")))["networks"]
    assert [n["generation"] for n in networks] == ["b"]
    assert len(networks) == 1


def read_at_once(client, *keys: str) -> list[dict[str, dict]]:
    """Several hashes in one MULTI/EXEC (all from the same moment), as objects by field without _meta/_error."""
    pipe = client.pipeline(transaction=True)
    for key in keys:
        pipe.hgetall(key)
    return [
        {field.decode(): json.loads(value) for field, value in raw.items() if field.decode() not in {"_meta", "_error"}}
        for raw in pipe.execute()
    ]


def test_readers_never_see_half_old_half_new_data(real_redis):
    """Writers alternate two generations; a reader in a tight loop must always see one generation."""
    cache.write_snapshot(sample_snapshot("a"))
    stop = threading.Event()
    mixed, reads = [], [0]

    def reader():
        while not stop.is_set():
            hashes = read_at_once(
                real_redis,
                cache.datacenters_key(),
                cache.datacenter_key("datacenter-2", "clusters"),
                cache.resources_key("domain-c7"),
                cache.datacenter_key("datacenter-2", "templates"),
            )
            generations = {item["generation"] for objects in hashes for item in objects.values()}
            if len(generations) != 1:
                mixed.append(generations)
            reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for i in range(60):
        cache.write_snapshot(sample_snapshot("b" if i % 2 == 0 else "a"))
    stop.set()
    for thread in threads:
        thread.join()
    assert reads[0] > 50
    assert mixed == []


def test_a_refresh_swaps_every_key_inside_one_multi_exec(real_redis):
    """Readers see the old scope or the new one: all RENAMEs (and deletions) go between one MULTI and EXEC."""
    cache.write_snapshot(sample_snapshot("a"))
    seen = []
    with real_redis.monitor() as monitor:
        writer = threading.Thread(target=lambda: (time.sleep(0.2), cache.write_snapshot(sample_snapshot("b"))))
        writer.start()
        for command in monitor.listen():
            seen.append(command["command"].split(" ", 1)[0].upper())
            if seen[-1] == "EXEC":
                break
        writer.join()
    renames = [i for i, name in enumerate(seen) if name == "RENAME"]
    assert len(renames) == 11
    multi = max(i for i, name in enumerate(seen) if name == "MULTI" and i < renames[0])
    assert set(seen[multi + 1 : -1]) == {"RENAME"}, seen[multi:]


def test_a_failed_refresh_keeps_the_data_alive_and_records_the_error(redis_client, settings):
    settings.INVENTORY_TTL = 100
    cache.write_snapshot(sample_snapshot(), fetched_at=500.0)
    redis_client.expire("vmprov:inventory:dc:datacenter-2:clusters", 3)  # nearly expired

    kept = cache.record_failure(Scope.everything(), "cannot reach vCenter vc01: timed out", failed_at=900.0)

    assert kept == 11
    assert 95 <= redis_client.ttl("vmprov:inventory:dc:datacenter-2:clusters") <= 100
    clusters = cache.read_hash(cache.datacenter_key("datacenter-2", "clusters"))
    assert clusters.fetched_at == 500.0, "the data is as old as it was"
    assert clusters.error == {"at": 900.0, "message": "cannot reach vCenter vc01: timed out"}
    assert set(clusters.items) == {"domain-c7"}


def test_a_failure_does_not_resurrect_an_expired_key(redis_client):
    cache.write_snapshot(sample_snapshot())
    redis_client.delete("vmprov:inventory:dc:datacenter-2:vms")
    cache.record_failure(Scope.datacenter("datacenter-2"), "boom")
    assert not redis_client.exists("vmprov:inventory:dc:datacenter-2:vms")


def test_a_cluster_refresh_updates_its_vms_in_the_datacenter_list(redis_client):
    cache.write_snapshot(sample_snapshot())
    cluster_snapshot = sample_snapshot("b", scope=Scope.cluster("domain-c7"))
    cluster_snapshot.datacenters = cluster_snapshot.datacenters[:1]
    cluster_snapshot.resources = {"domain-c7": cluster_snapshot.resources["domain-c7"]}
    cluster_snapshot.clusters = {"datacenter-2": cluster_snapshot.clusters["datacenter-2"]}
    new_vm = {**cluster_snapshot.vms["datacenter-2"][0], "id": "vm-new", "name": "web07"}
    cluster_snapshot.vms = {"datacenter-2": [new_vm]}  # db01 is gone, web07 appeared
    cluster_snapshot.templates, cluster_snapshot.folders = {}, {}

    cache.write_snapshot(cluster_snapshot)

    vms = cache.read_hash(cache.datacenter_key("datacenter-2", "vms")).items
    assert set(vms) == {"vm-new"}
    assert cache.read_hash(cache.datacenter_key("datacenter-2", "templates")).items["vm-t0"]["generation"] == "a"
    assert cache.read_hash(cache.datacenter_key("datacenter-2", "clusters")).items["domain-c7"]["generation"] == "b"
    assert set(cache.read_hash(cache.datacenter_key("datacenter-3", "vms")).items) == {"vm-100"}


def test_a_cluster_is_unknown_only_when_every_cluster_list_is_cached(redis_client):
    assert cache.cluster_is_unknown("domain-c99") is False  # nothing cached: it may exist
    cache.write_snapshot(sample_snapshot())
    assert cache.cluster_is_unknown("domain-c8") is False
    assert cache.cluster_is_unknown("domain-c99") is True
    redis_client.delete("vmprov:inventory:dc:datacenter-3:clusters")
    assert cache.cluster_is_unknown("domain-c99") is False, "a missing list may hold it"


def test_a_burst_of_refresh_requests_claims_once(redis_client):
    scope = Scope.datacenter("datacenter-2")
    claims = [refresh_locks.claim_refresh_request(scope) for _ in range(20)]
    assert claims.count(True) == 1
    refresh_locks.clear_refresh_request(scope)
    assert refresh_locks.claim_refresh_request(scope) is True


def test_the_refresh_lock_is_single_flight_and_kept_alive(redis_client, settings):
    settings.INVENTORY_LOCK_TIMEOUT = 1
    scope = Scope.cluster("domain-c7")
    with refresh_locks.refresh_lock(scope) as first:
        assert first is True
        with refresh_locks.refresh_lock(scope) as second:
            assert second is False
        time.sleep(1.5)  # longer than the lock timeout: the keeper extends it
        assert refresh_locks.refresh_running(scope)
        with refresh_locks.refresh_lock(scope) as third:
            assert third is False
    assert not refresh_locks.refresh_running(scope)


def test_the_overview_lists_every_scope_with_counts_age_and_ttl(redis_client):
    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 60)
    rows = {row.key: row for row in cache.overview()}
    assert rows["datacenters"].objects == 2
    assert rows["cluster:domain-c7:resources"].objects == 7
    assert rows["dc:datacenter-2:templates"].ttl > rows["dc:datacenter-2:clusters"].ttl
    assert 59 <= time.time() - rows["datacenters"].fetched_at <= 70
