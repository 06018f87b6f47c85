"""Cache-first behaviour against real parts: vcsim for vCenter, a real redis-server for the cache.

Cold misses, single flight, vCenter down (warm and cold), Redis down or hung.
"""

import socket
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from devtools.ports import free_port
from inventory import cache, tasks
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from tests.support.inventory_data import sample_snapshot
from tests.support.services import use_redis, use_vcenter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]


def get_many(user, url, count):
    """`count` clients ask for `url` at the same moment; returns (responses, seconds each)."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def ask(i):
        try:
            client = Client()
            client.force_login(user)
            barrier.wait()
            started = time.monotonic()
            response = client.get(url)
            results[i] = (response, time.monotonic() - started)
        finally:
            connections.close_all()  # this thread's own connection (force_login queries outside a request)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_a_cold_miss_collects_once_for_many_concurrent_requests(settings, vcsim_factory, real_redis, requester):
    # A slow vCenter: every property collection takes 800 ms.
    vcsim = vcsim_factory(dc=2, method_delay="RetrievePropertiesEx:800")
    use_vcenter(settings, vcsim)

    results = get_many(requester, "/api/vsphere/datacenters", 8)

    assert [r.status_code for r, _ in results] == [200] * 8
    assert all(len(r.json()["datacenters"]) == 2 for r, _ in results)
    runs = list(RefreshRun.objects.all())
    assert len(runs) == 1, "one collection for eight cold requests"
    assert runs[0].trigger == RefreshTrigger.COLD_MISS
    assert runs[0].outcome == RefreshOutcome.SUCCEEDED
    assert runs[0].soap_calls <= 8


def test_waiting_for_a_slow_collection_is_bounded_with_retry_after(settings, vcsim_factory, real_redis, requester):
    vcsim = vcsim_factory(dc=1, method_delay="RetrievePropertiesEx:4000")
    use_vcenter(settings, vcsim)
    settings.INVENTORY_COLD_WAIT = 1

    results = get_many(requester, "/api/vsphere/datacenters", 3)

    statuses = sorted(r.status_code for r, _ in results)
    assert statuses == [200, 503, 503], "one request collects, the others give up after the bounded wait"
    for response, seconds in results:
        if response.status_code == 503:
            assert response["Retry-After"] == "5"
            assert "still being collected" in response.json()["error"]
            assert seconds < 3
    assert RefreshRun.objects.count() == 1


def test_a_cold_cache_with_vcenter_down_answers_503_quickly(settings, real_redis, logged_in):
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings.VSPHERE_USER, settings.VSPHERE_PASSWORD = "user", "sekret-password"

    started = time.monotonic()
    response = logged_in.get("/api/vsphere/datacenters")

    assert time.monotonic() - started < 3
    assert response.status_code == 503
    body = response.json()
    assert "cannot reach vCenter" in body["error"]
    assert "sekret-password" not in response.content.decode()
    run = RefreshRun.objects.get()
    assert run.outcome == RefreshOutcome.FAILED and "cannot reach vCenter" in run.error


def test_a_hung_vcenter_on_a_cold_cache_fails_within_its_timeout(settings, real_redis, logged_in):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    settings.VSPHERE_SERVER = f"127.0.0.1:{hung.getsockname()[1]}"
    settings.VSPHERE_TIMEOUT = 1
    try:
        started = time.monotonic()
        response = logged_in.get("/api/vsphere/datacenters")
        assert time.monotonic() - started < 4
        assert response.status_code == 503
    finally:
        hung.close()


def test_vcenter_down_with_a_warm_cache_serves_stale_data_and_records_the_failure(
    settings, vcsim_factory, real_redis, logged_in
):
    vcsim = vcsim_factory(dc=2)
    use_vcenter(settings, vcsim)
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)
    settings.INVENTORY_SOFT_AGE = 0  # everything is stale from now on
    settings.INVENTORY_TTL = 3600
    vcsim.stop()

    response = logged_in.get("/api/vsphere/datacenters")
    assert response.status_code == 200
    assert response.json()["stale"] is True
    assert len(response.json()["datacenters"]) == 2

    # The queued refresh runs (as the django-q2 cluster would) and fails: the data stays.
    with pytest.raises(tasks.RefreshFailed):
        tasks.refresh_scope("all", RefreshTrigger.STALE_READ)
    failed = RefreshRun.objects.filter(outcome=RefreshOutcome.FAILED).get()
    assert "cannot reach vCenter" in failed.error
    assert real_redis.ttl("vmprov:inventory:datacenters") > 3500

    again = logged_in.get("/api/vsphere/datacenters").json()
    assert len(again["datacenters"]) == 2
    assert "cannot reach vCenter" in again["refresh_error"]["message"]
    dc_id = again["datacenters"][0]["id"]
    clusters = logged_in.get(f"/api/vsphere/hierarchical/datacenters/{dc_id}/clusters").json()
    assert clusters["clusters"] and clusters["stale"] is True


def test_a_queued_refresh_brings_the_cache_up_to_date(settings, vcsim_factory, real_redis, logged_in):
    vcsim = vcsim_factory(dc=1)
    use_vcenter(settings, vcsim)
    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 10_000)

    result = tasks.refresh_scope("all", RefreshTrigger.STALE_READ)

    assert result["outcome"] == RefreshOutcome.SUCCEEDED
    body = logged_in.get("/api/vsphere/datacenters").json()
    assert [d["name"] for d in body["datacenters"]] == ["DC0"], "vCenter's data replaced the old"
    assert body["stale"] is False
    assert not real_redis.exists("vmprov:inventory:dc:datacenter-3:clusters")


@pytest.mark.parametrize("failure", ["refused", "hung"])
def test_redis_down_or_hung_answers_503_within_two_seconds(settings, logged_in, failure):
    listener = None
    if failure == "hung":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # accepts, never answers: a frozen Redis
        port = listener.getsockname()[1]
    else:
        port = free_port()
    use_redis(settings, f"redis://127.0.0.1:{port}/0")
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"
    try:
        timings, errors = [], []
        for url in [
            "/api/vsphere/datacenters",
            "/api/vsphere/hierarchical/clusters/domain-c7/resources",
            "/api/vsphere/hierarchical/datacenters/datacenter-2/templates",
        ]:
            started = time.monotonic()
            response = logged_in.get(url)
            timings.append(time.monotonic() - started)
            assert response.status_code == 503, url
            errors.append(response.json()["error"])
            assert "Redis" in errors[-1]
            assert response["Retry-After"]
        assert max(timings) < 2
        # The first read found Redis down; the circuit breaker answered the next two without trying it again.
        assert "retrying in" not in errors[0]
        assert all("retrying in" in error for error in errors[1:]), "the circuit breaker answers at once"
        assert RefreshRun.objects.filter(outcome=RefreshOutcome.SUCCEEDED).count() == 0
    finally:
        if listener:
            listener.close()
