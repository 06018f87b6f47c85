"""Review fixes of the inventory: waiters of a failed cold miss, templates that never block a cluster's
resources, one way to queue a refresh, unexpected collector errors, and the staff-only VM list."""

import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ
from django_redis import get_redis_connection

from devtools.ports import free_port
from inventory import cache, catalog, refresh_locks, tasks, vsphere
from inventory import refresh as refresher
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from inventory.refresh import refresh
from inventory.snapshot import Scope
from tests.support.inventory_data import sample_snapshot

# --- 1. A cold-miss waiter answers with the outcome of the collection it waited for ------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("outcome", "status"),
    [(RefreshOutcome.FAILED, 503), (RefreshOutcome.NOT_FOUND, 404), (RefreshOutcome.SUCCEEDED, 404)],
)
def test_a_cold_miss_waiter_answers_with_the_outcome_of_the_collection_it_waited_for(
    settings, real_redis, requester, monkeypatch, outcome, status
):
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"  # a waiter that collected on its own would fail otherwise
    waiting = threading.Event()
    collect_or_skip = refresher.refresh

    def signal_when_skipped(*args, **kwargs):
        run = collect_or_skip(*args, **kwargs)
        if run is None:
            waiting.set()
        return run

    monkeypatch.setattr(refresher, "refresh", signal_when_skipped)  # the catalog imports it when it collects
    answers = []

    def ask():
        try:
            client = Client()
            client.force_login(requester)
            answers.append(client.get("/api/vsphere/datacenters"))
        finally:
            connections.close_all()  # this thread's own connection (force_login queries outside a request)

    waiter = threading.Thread(target=ask)
    with refresh_locks.refresh_lock(Scope.everything()) as acquired:
        assert acquired
        waiter.start()
        assert waiting.wait(10), "the request waits for the collection holding the lock"
        RefreshRun.objects.create(
            trigger=RefreshTrigger.COLD_MISS,
            scope="all",
            started_at=timezone.now(),
            outcome=outcome,
            error="vCenter vc01 failed during the refresh: timed out" if outcome == RefreshOutcome.FAILED else "",
        )
    waiter.join(10)

    response = answers[0]
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    if status == 503:
        assert "vCenter vc01 failed during the refresh: timed out" in response.json()["error"]
        assert response["Retry-After"]
    assert RefreshRun.objects.count() == 1, "the waiter did not collect on its own"


# --- 2. A cluster's resources never wait for its datacenter's templates ------------------------


@pytest.fixture
def resources_without_templates(settings):
    """Everything cached but datacenter-2's templates, and vCenter unreachable."""
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"
    cache.write_snapshot(sample_snapshot())
    get_redis_connection("default").delete(cache.datacenter_key("datacenter-2", "templates"))


@pytest.mark.django_db
def test_cluster_resources_answer_at_once_while_cold_templates_load_in_the_background(
    logged_in, resources_without_templates, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        answers = [logged_in.get("/api/vsphere/hierarchical/clusters/domain-c7/resources") for _ in range(3)]
    elapsed = time.monotonic() - started

    assert elapsed < 1, "no request waited for vCenter"
    for response in answers:
        assert response.status_code == 200
        body = response.json()
        assert [p["path"] for p in body["resource_pools"]] == ["Resources", "Resources/web"]
        assert len(body["datastores"]) == 3 and len(body["networks"]) == 2
        assert body["templates"] == []
        assert body["templates_status"] == "loading"
        assert body["stale"] is False and body["fetched_at"]
    task = OrmQ.objects.get().task
    assert task["func"] == "inventory.tasks.refresh_scope"
    assert task["args"] == ("datacenter:datacenter-2", "cold_miss")
    assert RefreshRun.objects.count() == 0


@pytest.mark.django_db
def test_validating_a_request_still_waits_for_the_templates_it_checks(resources_without_templates):
    # The request form checks the chosen template against the list: it must not see an empty one.
    with pytest.raises(catalog.Unavailable, match="cannot reach vCenter"):
        catalog.cluster_resources("domain-c7")


# --- 3. One way to queue a refresh, on commit --------------------------------------------------


@pytest.mark.django_db
def test_the_admin_refresh_button_queues_on_commit_through_queue_refresh(
    client, staff, django_capture_on_commit_callbacks
):
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "datacenter:datacenter-2"})
        assert response.status_code == 302
        assert OrmQ.objects.count() == 0, "nothing is queued before the transaction commits"
    assert len(callbacks) == 1
    callbacks[0]()
    task = OrmQ.objects.get().task
    assert task["args"] == ("datacenter:datacenter-2", "admin")
    assert task["name"] == "refresh datacenter:datacenter-2 (admin root-admin)"


@pytest.mark.django_db
def test_stale_reads_and_the_admin_queue_through_the_same_function(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "queue_refresh", lambda scope, trigger, **kwargs: queued.append((scope, trigger)))
    assert tasks.enqueue_refresh(Scope.cluster("domain-c7"), RefreshTrigger.STALE_READ) is True
    assert tasks.enqueue_refresh(Scope.cluster("domain-c7"), RefreshTrigger.STALE_READ) is False
    assert queued == [(Scope.cluster("domain-c7"), RefreshTrigger.STALE_READ)]


# --- 4. An unexpected error in a refresh fails its run ------------------------------------------


@pytest.mark.django_db
def test_an_unexpected_collector_error_fails_the_run_and_is_raised(monkeypatch, settings):
    settings.VSPHERE_PASSWORD = "sekret-password"

    @contextmanager
    def fake_session(config=None):
        yield SimpleNamespace(counter=SimpleNamespace(calls=3))

    def broken_collect(session, scope):
        raise RuntimeError("unexpected property 'summary' (logged in with sekret-password)")

    monkeypatch.setattr(vsphere, "session", fake_session)
    monkeypatch.setattr(vsphere, "collect", broken_collect)

    with pytest.raises(RuntimeError, match="unexpected property"):
        refresh(Scope.everything(), RefreshTrigger.ADMIN)

    run = RefreshRun.objects.get()
    assert run.outcome == RefreshOutcome.FAILED
    assert "RuntimeError: unexpected property 'summary'" in run.error
    assert "sekret-password" not in run.error
    assert run.duration_ms is not None and run.soap_calls == 3
    assert not refresh_locks.refresh_running(Scope.everything()), "the lock is released"
    with pytest.raises(RuntimeError):
        tasks.refresh_scope("all", RefreshTrigger.SCHEDULE)  # the django-q2 task fails visibly
    assert RefreshRun.objects.filter(outcome=RefreshOutcome.FAILED).count() == 2


# --- 5. The VM list (IPs and UUIDs) is for staff only ------------------------------------------

VMS_URL = "/api/vsphere/hierarchical/datacenters/datacenter-2/vms"


@pytest.mark.django_db
def test_the_vm_list_is_forbidden_to_requesters_with_a_json_403(logged_in):
    cache.write_snapshot(sample_snapshot())
    response = logged_in.get(VMS_URL)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()
    assert "10.0.0.5" not in response.content.decode()


@pytest.mark.django_db
def test_the_vm_list_is_served_to_staff_and_asks_anonymous_users_to_log_in(client, staff):
    cache.write_snapshot(sample_snapshot())
    assert client.get(VMS_URL).status_code == 401
    client.force_login(staff)
    response = client.get(VMS_URL)
    assert response.status_code == 200
    assert response.json()["vms"][0]["ip_addresses"] == ["10.0.0.5"]
