"""The watcher's update handling, fed hand-made pyVmomi update sets: enter / modify / leave, partial objects,
truncated answers, an invalid version, a change it must read again, a key Redis lost, Redis failing meanwhile.

vcsim never truncates, never raises InvalidCollectorVersion and reports whole objects, so these paths are
tested here, against the fake Redis; tests/inventory/test_watch_vcsim.py runs the watcher against vcsim.
"""

import time

import pytest
from django_redis import get_redis_connection
from pyVmomi import vmodl

from inventory import cache, catalog, watch_store
from inventory.vsphere_updates import UpdateFeed, VersionLost, object_changes
from inventory.watcher import Watcher, WatchOptions
from tests.support.scripted_vcenter import (
    ScriptedFeed,
    ScriptedVCenter,
    obj,
    small_inventory,
    update,
    update_set,
    vm_update,
)

pytestmark = pytest.mark.django_db
OPTIONS = WatchOptions(max_wait=1, lease_seconds=30, backoff_max=0.01, page_size=3)
DC = "datacenter-2"


def run(*feeds: ScriptedFeed) -> tuple[Watcher, ScriptedVCenter]:
    """Run one watcher until its script ends (the last feed runs out of answers)."""
    vcenter = ScriptedVCenter(*feeds)
    watcher = Watcher(options=OPTIONS, replica="test", connect_vcenter=vcenter)
    watcher.run(vcenter.stop)
    return watcher, vcenter


def vm_names() -> dict[str, str]:
    return {vm["id"]: vm["name"] for vm in catalog.vms(DC).items}


# --- From vCenter's objects to plain changes ----------------------------------------------------


def test_an_update_set_becomes_plain_changes_in_order():
    changes = object_changes(
        update_set(
            "7",
            vm_update("vm-1", "web01", "host-10"),
            update("VirtualMachine", "vm-2", "modify", name="db01", runtime__powerState=("remove", None)),
            update("VirtualMachine", "vm-3", "leave"),
        )
    )

    assert [(c.id, c.op) for c in changes] == [("vm-1", "enter"), ("vm-2", "modify"), ("vm-3", "leave")]
    assert changes[0].values["runtime.host"] == "host-10" and changes[0].values["parent"] == "group-v3"
    assert (changes[1].values, changes[1].removed) == ({"name": "db01"}, ["runtime.powerState"])
    assert not any(c.refetch for c in changes)


def test_unreadable_properties_count_as_unset_and_a_change_inside_a_collection_asks_for_a_reread():
    changes = object_changes(
        update_set(
            "8",
            update(
                "VirtualMachine", "vm-1", "modify", missing=("config.uuid",), config__template=("indirectRemove", None)
            ),
            update("ClusterComputeResource", "domain-c7", "modify", host=("add", [obj("HostSystem", "host-11")])),
        )
    )

    assert changes[0].removed == ["config.template", "config.uuid"] and not changes[0].refetch
    assert changes[1].refetch


def test_invalid_collector_version_is_a_lost_version():
    class Collector:
        def WaitForUpdatesEx(self, version, options):
            raise vmodl.query.InvalidCollectorVersion()

    with pytest.raises(VersionLost):
        UpdateFeed(session=None, collector=Collector(), view=None).wait("12", 1, 100)


# --- The loop --------------------------------------------------------------------------------------


def test_the_first_load_follows_truncated_pages_and_shows_nothing_until_the_last():
    seen_between_pages = []
    feed = ScriptedFeed(
        small_inventory("1", truncated=True),
        update_set("2", vm_update("vm-1", "web01", "host-10"), vm_update("vm-2", "web02", "host-10")),
    )
    feed.before_answer = lambda version: seen_between_pages.append((version, cache.watcher_live() is not None))

    watcher, _ = run(feed)

    assert feed.asked[:3] == ["", "1", "2"], "each page asked from the version the last one gave, then waited from"
    assert seen_between_pages[:2] == [("", False), ("1", False)], "nothing written before the last page"
    assert vm_names() == {"vm-1": "web01", "vm-2": "web02"}
    assert watcher.status.version == "2"


def test_enter_modify_and_leave_reach_the_cache_and_new_vms_are_announced():
    feed = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10"), vm_update("vm-2", "web02", "host-10")),
        update_set("2", vm_update("vm-3", "web03", "host-10")),
        update_set("3", update("VirtualMachine", "vm-1", "modify", name="web01-renamed")),
        update_set("4", update("VirtualMachine", "vm-2", "modify", runtime__powerState="poweredOff")),
        None,  # maxWaitSeconds passed with nothing new
        update_set("5", update("VirtualMachine", "vm-3", "leave")),
    )

    watcher, _ = run(feed)

    assert feed.asked == ["", "1", "2", "3", "4", "4", "5"]
    assert vm_names() == {"vm-1": "web01-renamed", "vm-2": "web02"}
    assert {vm["id"]: vm["power_state"] for vm in catalog.vms(DC).items}["vm-2"] == "poweredOff"
    events = [event for _, event in watch_store.read_events("0-0", 0.1)]
    assert [(e["type"], e.get("name")) for e in events] == [("resync", None), ("vm", "web03"), ("vm", "web01-renamed")]
    assert watcher.status.last_update_at is not None and watcher.status.lag_ms is not None


def test_a_vm_that_arrives_without_uuid_is_listed_and_announced_again_once_it_has_one():
    partial = update(
        "VirtualMachine",
        "vm-9",
        name="web09",
        parent=obj("Folder", "group-v3"),
        runtime__host=obj("HostSystem", "host-10"),
    )
    feed = ScriptedFeed(
        small_inventory("1"),
        update_set("2", partial),
        update_set("3", update("VirtualMachine", "vm-9", "modify", config__uuid="4210-abc")),
    )

    run(feed)

    assert [vm["uuid"] for vm in catalog.vms(DC).items] == ["4210-abc"]
    events = [event for _, event in watch_store.read_events("0-0", 0.1) if event["type"] == "vm"]
    assert [e["uuid"] for e in events] == ["", "4210-abc"]


def test_an_incremental_truncated_answer_is_followed_at_once_and_written_whole():
    seen = []
    feed = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10")),
        update_set("2", update("VirtualMachine", "vm-1", "modify", name="a"), truncated=True),
        update_set("3", update("VirtualMachine", "vm-1", "modify", name="b")),
    )
    feed.before_answer = lambda version: seen.append((version, set(vm_names().values()) if version != "" else None))

    run(feed)

    assert feed.asked[:3] == ["", "1", "2"] and feed.asked[3] == "3"
    assert ("2", {"web01"}) in seen, "the truncated answer is not written on its own"
    assert vm_names() == {"vm-1": "b"}


def test_an_invalid_version_reloads_on_a_new_feed_and_leaves_nothing_behind():
    first = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10"), vm_update("vm-2", "web02", "host-10")),
        VersionLost("vCenter no longer knows version '1'"),
    )
    second = ScriptedFeed(small_inventory("1", vm_update("vm-1", "web01", "host-10")))

    watcher, vcenter = run(first, second)

    assert vcenter.opened == [first, second] and first.closed
    assert second.asked[0] == "", "the new feed starts from the beginning"
    assert vm_names() == {"vm-1": "web01"}, "the VM deleted meanwhile is gone"
    assert watcher.status.reconnects == 0, "the session was kept"


def test_a_change_the_mirror_cannot_apply_reads_the_object_again():
    feed = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10")),
        update_set("2", update("VirtualMachine", "vm-1", "modify", guest__net=("add", ["10.0.0.1"]))),
    )

    run(feed)

    assert feed.reread == ["vm-1"]
    assert vm_names() == {"vm-1": "read again vm-1"}


def test_a_list_redis_lost_is_rewritten_whole_from_the_mirror():
    feed = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10"), vm_update("vm-2", "web02", "host-10")),
        update_set("2", update("VirtualMachine", "vm-1", "modify", name="web01-renamed")),
    )
    feed.before_answer = lambda version: (
        version == "1" and get_redis_connection("default").delete(cache.datacenter_key(DC, "vms"))
    )

    run(feed)

    assert vm_names() == {"vm-1": "web01-renamed", "vm-2": "web02"}, "a partial write never stands for the list"


def test_redis_failing_while_updates_arrive_is_caught_up_afterwards(monkeypatch):
    real_apply = watch_store.apply_changes
    failures = []

    def failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise cache.CacheUnavailable("Redis is down")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(watch_store, "apply_changes", failing_once)
    seen = []
    feed = ScriptedFeed(
        small_inventory("1", vm_update("vm-1", "web01", "host-10")),
        update_set("2", update("VirtualMachine", "vm-1", "modify", name="lost-write")),
        update_set("3", update("VirtualMachine", "vm-1", "modify", runtime__powerState="poweredOff")),
    )
    feed.before_answer = lambda version: seen.append((version, cache.watcher_live() is not None))

    run(feed)

    assert failures == [1]
    assert ("2", True) in seen and seen[-1][1] is True
    assert vm_names() == {"vm-1": "lost-write"}
    assert catalog.vms(DC).items[0]["power_state"] == "poweredOff"


def test_a_stopped_watcher_gives_its_lease_and_live_marker_up():
    vcenter = ScriptedVCenter(ScriptedFeed(small_inventory("1")))
    watcher = Watcher(options=OPTIONS, replica="first", connect_vcenter=vcenter)

    watcher.run(vcenter.stop)

    assert watch_store.lease_holder() is None and cache.watcher_live() is None
    assert [status["replica"] for status in watch_store.replica_statuses()] == ["first"]
    assert watch_store.replica_statuses()[0]["leader"] is False


def test_a_full_reload_comes_when_asked_and_when_due():
    first = ScriptedFeed(small_inventory("1", vm_update("vm-1", "web01", "host-10")), None)
    first.before_answer = lambda version: version == "1" and watch_store.request_resync()
    asked = ScriptedFeed(small_inventory("1", vm_update("vm-2", "web02", "host-10")), None)
    due = ScriptedFeed(small_inventory("1", vm_update("vm-3", "web03", "host-10")))
    vcenter = ScriptedVCenter(first, asked, due)
    options = WatchOptions(max_wait=1, lease_seconds=30, backoff_max=0.01, reconcile_seconds=0.5)
    watcher = Watcher(options=options, replica="test", connect_vcenter=vcenter)
    asked.before_answer = lambda version: version == "1" and time.sleep(0.6)  # then the periodic reload is due

    watcher.run(vcenter.stop)

    assert vcenter.opened == [first, asked, due] and first.closed and asked.closed
    assert vm_names() == {"vm-3": "web03"}
    events = [event["type"] for _, event in watch_store.read_events("0-0", 0.1)]
    assert events == ["resync", "resync", "resync"]


def test_an_unexpected_error_is_reported_and_followed_by_a_reload(caplog):
    broken = ScriptedFeed(small_inventory("1", vm_update("vm-1", "web01", "host-10")), KeyError("a bug"))
    again = ScriptedFeed(small_inventory("1", vm_update("vm-1", "web01-again", "host-10")))

    watcher, vcenter = run(broken, again)

    assert vcenter.opened == [broken, again]
    assert watcher.status.reconnects == 1 and watcher.status.error == "", "cleared by the reload that followed"
    assert "failed unexpectedly" in caplog.text and "KeyError: 'a bug'" in caplog.text
    assert vm_names() == {"vm-1": "web01-again"}
