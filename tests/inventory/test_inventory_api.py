"""The inventory JSON API: shapes, auth, errors, and cache-first behaviour (no vCenter on a warm cache)."""

import time
from urllib.parse import quote

import pytest
from django_q.models import OrmQ

from inventory import cache, vsphere
from inventory.models import RefreshRun
from tests.support.inventory_data import sample_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_vcenter(monkeypatch):
    """Any vCenter session fails the test: a warm cache must answer on its own."""
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("vCenter was called although the cache is warm")

    monkeypatch.setattr(vsphere, "session", forbidden)
    return calls


@pytest.fixture
def warm(no_vcenter):
    cache.write_snapshot(sample_snapshot())


def test_datacenters_come_from_the_cache_with_their_freshness(logged_in, warm):
    response = logged_in.get("/api/vsphere/datacenters")
    assert response.status_code == 200
    body = response.json()
    assert [(d["id"], d["name"]) for d in body["datacenters"]] == [
        ("datacenter-2", "DC0"),
        ("datacenter-3", "Zürich / prod"),
    ]
    assert body["stale"] is False
    assert body["fetched_at"].endswith("+00:00")
    assert body["refresh_error"] is None


def test_clusters_by_a_url_encoded_datacenter_name(logged_in, warm):
    response = logged_in.get(f"/api/vsphere/datacenters/{quote('Zürich / prod', safe='')}/clusters")
    assert response.status_code == 200
    body = response.json()
    assert body["datacenter"] == {"id": "datacenter-3", "name": "Zürich / prod"}
    assert [c["id"] for c in body["clusters"]] == ["domain-c8"]


def test_a_name_two_datacenters_share_answers_409_naming_both(logged_in, no_vcenter):
    snapshot = sample_snapshot()
    snapshot.datacenters[1]["name"] = "DC0"
    cache.write_snapshot(snapshot)
    response = logged_in.get("/api/vsphere/datacenters/DC0/clusters")
    assert response.status_code == 409
    assert sorted(response.json()["ids"]) == ["datacenter-2", "datacenter-3"]
    assert "DC0" in response.json()["error"]


def test_cluster_resources_bring_pools_datastores_networks_and_templates(logged_in, warm):
    response = logged_in.get("/api/vsphere/hierarchical/clusters/domain-c7/resources")
    assert response.status_code == 200
    body = response.json()
    assert body["cluster"] == {"id": "domain-c7", "name": "cluster 0"}
    assert body["datacenter"] == {"id": "datacenter-2"}
    assert [p["path"] for p in body["resource_pools"]] == ["Resources", "Resources/web"]
    assert {"id", "name", "capacity", "free_space", "accessible", "maintenance_mode", "type"} <= set(
        body["datastores"][0]
    )
    assert {n["type"] for n in body["networks"]} == {"distributed", "standard"}
    template = body["templates"][0]
    assert {"id", "name", "uuid", "guest_id", "num_cpus", "memory_mb", "disks", "nic_types"} <= set(template)
    assert template["disks"][0] == {
        "label": "Hard disk 1",
        "unit_number": 0,
        "size_gb": 20,
        "thin": True,
        "eagerly_scrub": False,
    }
    assert body["templates_status"] == "ok"
    assert body["stale"] is False and body["fetched_at"]


@pytest.mark.parametrize("kind", ["clusters", "templates", "folders", "vms"])
def test_datacenter_lists_by_id(client, staff, warm, kind):
    client.force_login(staff)  # the VM list is for staff only
    response = client.get(f"/api/vsphere/hierarchical/datacenters/datacenter-3/{kind}")
    assert response.status_code == 200
    assert response.json()[kind], f"{kind} of datacenter-3"
    assert response.json()["datacenter"] == {"id": "datacenter-3"}


@pytest.mark.parametrize(
    "url",
    [
        "/api/vsphere/datacenters/Nowhere/clusters",
        "/api/vsphere/hierarchical/datacenters/datacenter-404/clusters",
        "/api/vsphere/hierarchical/datacenters/datacenter-404/templates",
        "/api/vsphere/hierarchical/clusters/domain-c404/resources",
    ],
)
def test_unknown_datacenters_and_clusters_answer_404_json_without_asking_vcenter(logged_in, warm, url):
    response = logged_in.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


def test_not_logged_in_is_401_json_not_a_redirect(client, warm):
    response = client.get("/api/vsphere/datacenters")
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}


def test_other_pages_redirect_to_the_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_only_get_is_allowed(logged_in, warm):
    assert logged_in.post("/api/vsphere/datacenters").status_code == 405


def test_stale_data_is_served_at_once_and_one_refresh_is_queued_for_a_burst(
    logged_in, no_vcenter, settings, django_capture_on_commit_callbacks
):
    settings.INVENTORY_SOFT_AGE = 300
    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 301)

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        answers = [logged_in.get("/api/vsphere/datacenters") for _ in range(10)]
    elapsed = time.monotonic() - started

    assert all(a.status_code == 200 and a.json()["stale"] is True for a in answers)
    assert elapsed < 2, "stale reads do not wait for the refresh"
    queued = list(OrmQ.objects.all())
    assert len(queued) == 1
    assert queued[0].task["func"] == "inventory.tasks.refresh_scope"
    assert queued[0].task["args"] == ("all", "stale_read")
    assert no_vcenter == []


def test_web_workers_queue_one_refresh_between_them(
    logged_in, no_vcenter, settings, django_capture_on_commit_callbacks
):
    """Each web process remembers its own claims; across processes Redis's SET NX keeps it to one job."""
    from inventory import tasks

    cache.write_snapshot(sample_snapshot(), fetched_at=time.time() - 10_000)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            tasks._recent_claims.clear()  # as if each read came from another worker process
            assert logged_in.get("/api/vsphere/datacenters").json()["stale"] is True
    assert OrmQ.objects.count() == 1


def test_a_warm_cache_answers_every_endpoint_without_vcenter(logged_in, warm, no_vcenter):
    for url in [
        "/api/vsphere/datacenters",
        "/api/vsphere/datacenters/DC0/clusters",
        "/api/vsphere/hierarchical/datacenters/datacenter-2/clusters",
        "/api/vsphere/hierarchical/datacenters/datacenter-2/templates",
        "/api/vsphere/hierarchical/datacenters/datacenter-2/folders",
        "/api/vsphere/hierarchical/clusters/domain-c7/resources",
    ]:
        assert logged_in.get(url).status_code == 200, url
    assert no_vcenter == []
    assert RefreshRun.objects.count() == 0
    assert OrmQ.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/vsphere/hierarchical/clusters/" + "c" * 250 + "/resources",
        "/api/vsphere/hierarchical/clusters/domain c7/resources",
        "/api/vsphere/hierarchical/clusters/%C3%A9t%C3%A9/resources",
        "/api/vsphere/hierarchical/datacenters/" + "d" * 250 + "/clusters",
        "/api/vsphere/hierarchical/datacenters/-datacenter/templates",
    ],
)
def test_a_malformed_id_is_404_json_without_asking_vcenter_or_recording_a_refresh(logged_in, no_vcenter, url):
    # Nothing cached at all: a well-formed id would be looked up; a malformed one cannot name anything.
    response = logged_in.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert len(response.json()["error"]) < 120
    assert no_vcenter == []
    assert RefreshRun.objects.count() == 0


@pytest.fixture
def collections(monkeypatch):
    """Every collection the catalog starts, by scope label, each one succeeding from the sample snapshot."""
    from django.utils import timezone

    from inventory import catalog
    from inventory.choices import RefreshOutcome
    from inventory.snapshot import Scope

    started = []

    def collect(scope: Scope, trigger: str, wait: float = 0):
        started.append(scope.label)
        snapshot = sample_snapshot(scope=scope)
        if scope.kind == Scope.DATACENTER:
            snapshot.datacenters = [dc for dc in snapshot.datacenters if dc["id"] == scope.id]
            for lists in (snapshot.clusters, snapshot.templates, snapshot.vms, snapshot.folders):
                for other in [dc for dc in lists if dc != scope.id]:
                    del lists[other]
            snapshot.resources = {}
        cache.write_snapshot(snapshot)
        return RefreshRun.objects.create(
            trigger=trigger, scope=scope.label, started_at=timezone.now(), outcome=RefreshOutcome.SUCCEEDED
        )

    monkeypatch.setattr(catalog, "_refresh", collect)
    return started


def test_made_up_cluster_ids_cost_one_lookup_per_datacenter_and_none_of_their_own(logged_in, no_vcenter, collections):
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    cache.write_snapshot(sample_snapshot())
    # One datacenter's cluster list is not cached: a made-up id might be one of its clusters.
    redis.delete("vmprov:inventory:dc:datacenter-3:clusters")

    for made_up in ("domain-c404", "domain-c405", "domain-c406"):
        response = logged_in.get(f"/api/vsphere/hierarchical/clusters/{made_up}/resources")
        assert response.status_code == 404, response.json()
        assert response["Content-Type"] == "application/json"
    assert collections == ["datacenter:datacenter-3"], "one look at the datacenter, never a collection per id"
    assert not RefreshRun.objects.filter(scope__startswith="cluster:").exists()

    # The list is gone again within the soft age (say its refresh failed): made-up ids look up nothing more.
    redis.delete("vmprov:inventory:dc:datacenter-3:clusters")
    response = logged_in.get("/api/vsphere/hierarchical/clusters/domain-c407/resources")
    assert response.status_code == 503
    assert collections == ["datacenter:datacenter-3"]

    # A listed cluster whose resources are not cached is still collected, once.
    redis.delete("vmprov:inventory:cluster:domain-c7:resources")
    assert logged_in.get("/api/vsphere/hierarchical/clusters/domain-c7/resources").status_code == 200
    assert collections == ["datacenter:datacenter-3", "cluster:domain-c7"]


def test_a_refresh_scope_never_names_a_malformed_id():
    """What a refresh run records fits its column: a scope cannot be made of an id vCenter would never write."""
    from inventory.snapshot import Scope

    assert Scope.from_label("cluster:domain-c7").id == "domain-c7"
    for label in ("cluster:" + "c" * 81, "datacenter:dc 1", "cluster:été", "cluster:"):
        with pytest.raises(ValueError):
            Scope.from_label(label)


def test_the_api_answers_json_for_every_mistake(logged_in, warm):
    from django.test import Client

    for path in ("/api/vsphere/", "/api/vsphere/datacenters/", "/api/nothing", "/api/vsphere/hierarchical/x/y"):
        missing = logged_in.get(path)
        assert (missing.status_code, missing["Content-Type"]) == (404, "application/json"), path
        assert missing.json()["error"] == f"no API endpoint at {path}"
    for method in ("post", "put", "delete", "patch"):
        refused = getattr(logged_in, method)("/api/vsphere/datacenters")
        assert (refused.status_code, refused["Allow"]) == (405, "GET, HEAD"), method
        assert "only reads" in refused.json()["error"]
    assert logged_in.head("/api/vsphere/datacenters").status_code == 200
    anonymous = Client().post("/api/vsphere/datacenters")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "authentication required")
    assert anonymous["WWW-Authenticate"].startswith("Cookie ")
    assert {part.strip() for part in logged_in.get("/api/vsphere/datacenters")["Cache-Control"].split(",")} == {
        "private",
        "no-store",
    }
