"""warm_cache, the periodic schedule, and the admin's inventory cache page."""

import re

import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ, Schedule

from devtools.ports import free_port
from inventory import cache, refresh_locks, tasks, watch_store
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from inventory.snapshot import Scope
from tests.support.inventory_data import sample_snapshot
from tests.support.services import use_redis

pytestmark = pytest.mark.django_db


@pytest.mark.vcsim
def test_warm_cache_fills_the_cache_and_prints_a_summary(vcenter, real_redis, capsys):
    call_command("warm_cache")
    out = capsys.readouterr().out
    assert "Cache warm: 2 datacenters, 2 clusters" in out
    assert "SOAP calls" in out
    run = RefreshRun.objects.get()
    assert run.trigger == RefreshTrigger.WARM_CACHE and run.outcome == RefreshOutcome.SUCCEEDED
    assert len(cache.read_hash(cache.datacenters_key()).items) == 2
    assert Schedule.objects.filter(name=tasks.SCHEDULE_NAME).count() == 1


@pytest.mark.vcsim
def test_warm_cache_waits_for_a_refresh_already_running(vcenter, real_redis, settings):
    from inventory.snapshot import Scope

    with (
        refresh_locks.refresh_lock(Scope.everything()),
        pytest.raises(CommandError, match="another refresh held the lock"),
    ):
        call_command("warm_cache", wait=0.3)
    call_command("warm_cache", wait=0.3)
    assert RefreshRun.objects.filter(outcome=RefreshOutcome.SUCCEEDED).count() == 1


def test_warm_cache_fails_with_one_line_when_vcenter_is_unreachable(settings, real_redis):
    settings.VSPHERE_SERVER = f"127.0.0.1:{free_port()}"
    settings.VSPHERE_PASSWORD = "do-not-print-me"
    with pytest.raises(CommandError) as raised:
        call_command("warm_cache")
    message = str(raised.value)
    assert message.startswith("cannot reach vCenter 127.0.0.1:")
    assert "\n" not in message and "do-not-print-me" not in message


def test_warm_cache_fails_with_one_line_when_redis_is_unreachable(settings):
    use_redis(settings, f"redis://:redis-secret@127.0.0.1:{free_port()}/0")
    with pytest.raises(CommandError) as raised:
        call_command("warm_cache")
    assert "Redis at redis://127.0.0.1:" in str(raised.value)
    assert "redis-secret" not in str(raised.value)


def test_the_periodic_refresh_is_registered_once(settings):
    settings.INVENTORY_REFRESH_MINUTES = 4
    tasks.register_schedule()
    tasks.register_schedule()
    settings.INVENTORY_REFRESH_MINUTES = 10
    schedule = tasks.register_schedule()
    assert Schedule.objects.filter(name=tasks.SCHEDULE_NAME).count() == 1
    assert schedule.minutes == 10 and schedule.func == "inventory.tasks.refresh_all"
    settings.INVENTORY_REFRESH_MINUTES = 0
    tasks.register_schedule()
    assert not Schedule.objects.filter(name=tasks.SCHEDULE_NAME).exists()


def test_the_cache_page_shows_scopes_and_runs_to_staff(client, staff):
    cache.write_snapshot(sample_snapshot())
    RefreshRun.objects.create(
        trigger=RefreshTrigger.SCHEDULE,
        scope="all",
        started_at="2026-11-26T03:00:00Z",
        outcome=RefreshOutcome.FAILED,
        error="cannot reach vCenter vc01: timed out",
    )
    client.force_login(staff)
    page = client.get("/admin/inventory/refreshrun/cache/")
    assert page.status_code == 200
    html = page.content.decode()
    # Scopes by name, their ids beside; the lists each one holds; one button per scope.
    assert "Cluster cluster 0 (DC0)" in html and "Datacenter Zürich / prod" in html and "Everything" in html
    assert "cluster:domain-c7" in html and "datacenter:datacenter-3" in html
    assert "clusters (1), templates (1), vms (1), folders (2)" in html
    assert "cannot reach vCenter vc01: timed out" in html
    scopes = ("all", "datacenter:datacenter-2", "datacenter:datacenter-3", "cluster:domain-c7", "cluster:domain-c8")
    for scope in scopes:
        assert html.count(f'name="scope" value="{scope}"') == 1, scope
    assert "hx-trigger" not in html, "nothing is queued: the page does not poll"


def test_the_admin_index_links_the_cache_page_for_those_allowed(client, staff, django_user_model):
    client.force_login(staff)
    assert 'href="/admin/inventory/refreshrun/cache/"' in client.get("/admin/").content.decode()
    client.force_login(django_user_model.objects.create_user("viewer", password="x", is_staff=True))
    assert "/admin/inventory/refreshrun/cache/" not in client.get("/admin/").content.decode()


def test_a_queued_refresh_shows_and_a_second_click_queues_nothing(client, staff, django_capture_on_commit_callbacks):
    cache.write_snapshot(sample_snapshot())
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "cluster:domain-c7"}, follow=True)
        second = client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "cluster:domain-c7"}, follow=True)
    assert OrmQ.objects.count() == 1
    assert "A refresh of Cluster cluster 0 (DC0) is queued" in first.content.decode()
    assert "already queued or running; nothing more was queued" in second.content.decode()
    page = second.content.decode()
    assert "queued…" in page and 'value="cluster:domain-c7"' not in page, "no button while it is queued"
    assert "hx-trigger" in page, "the page follows the queued refresh"

    # While it waits nothing changes: the poll answers 204. Once it ran, the poll brings the new row.
    poll_url = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert client.get(poll_url, headers={"HX-Request": "true"}).status_code == 204
    refresh_locks.clear_refresh_request(Scope.cluster("domain-c7"))  # what the refresh job does when it is done
    fragment = client.get(poll_url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert 'value="cluster:domain-c7"' in fragment.content.decode()


def test_the_refresh_buttons_queue_a_collection(client, staff, django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "cluster:domain-c7"})
    assert response.status_code == 302
    task = OrmQ.objects.get().task
    assert task["func"] == "inventory.tasks.refresh_scope"
    assert task["args"] == ("cluster:domain-c7", "admin")
    assert client.get("/admin/inventory/refreshrun/cache/refresh/").status_code == 405


def test_the_cache_page_is_for_staff_only(client, requester):
    client.force_login(requester)
    response = client.get("/admin/inventory/refreshrun/cache/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "all"})
    assert response.status_code == 302
    assert OrmQ.objects.count() == 0


def test_the_cache_page_and_its_buttons_need_the_refresh_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    operator = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    client.force_login(operator)
    assert client.get("/admin/inventory/refreshrun/cache/").status_code == 403
    assert client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "all"}).status_code == 403
    assert OrmQ.objects.count() == 0

    operator.user_permissions.add(Permission.objects.get(codename="refresh_inventory"))
    operator = django_user_model.objects.get(pk=operator.pk)  # permissions are cached on the user object
    client.force_login(operator)
    assert client.get("/admin/inventory/refreshrun/cache/").status_code == 200
    assert client.post("/admin/inventory/refreshrun/cache/refresh/", {"scope": "all"}).status_code == 302


def test_the_cache_page_says_when_redis_is_down(client, staff, settings):
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    client.force_login(staff)
    page = client.get("/admin/inventory/refreshrun/cache/")
    assert page.status_code == 200
    assert "is unavailable" in page.content.decode()


def test_with_a_live_watcher_the_refresh_button_asks_it_to_reload_and_says_so(
    client, staff, monkeypatch, django_capture_on_commit_callbacks
):
    cache.write_snapshot(sample_snapshot())
    monkeypatch.setattr(cache, "watcher_live", lambda: {"replica": "w1"})
    asked = []
    monkeypatch.setattr(watch_store, "request_resync", lambda: asked.append(True))
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            "/admin/inventory/refreshrun/cache/refresh/", {"scope": "datacenter:datacenter-2"}, follow=True
        )
    assert asked == [True] and OrmQ.objects.count() == 0, "no job that would only pass it on"
    text = page.content.decode()
    assert "The inventory watcher keeps the cache live, so no refresh job was queued" in text
    assert "(asked from Datacenter DC0)" in text
