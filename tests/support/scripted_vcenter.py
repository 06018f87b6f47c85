"""A vCenter for the watcher's loop, scripted with hand-made pyVmomi UpdateSets (no network).

`ScriptedVCenter(feeds)` stands where `inventory.vsphere_updates.connect` does; each `open_feed()` hands out the
next `ScriptedFeed`, whose `wait()` answers the next scripted UpdateSet (converted by the real
`object_changes`), None, or raises a scripted error. When a feed runs out of answers it sets `stop`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl

from inventory.vsphere_updates import UpdateBatch, object_changes

PC = vmodl.query.PropertyCollector


def obj(kind: str, object_id: str) -> Any:
    return getattr(vim, kind)(object_id)


def typed(value: Any) -> Any:
    """pyVmomi wants an array of a declared type where a property's value is a list."""
    if not isinstance(value, list):
        return value
    if value and isinstance(value[0], str):
        return VmomiSupport.GetVmodlType("string[]")(value)
    return (type(value[0]) if value else vim.ManagedEntity).Array(value)


def update(kind: str, object_id: str, op: str = "enter", missing: tuple[str, ...] = (), **props) -> Any:
    """One ObjectUpdate; props use "__" for "." and ("remove", None) / ("add", value) for other operations."""
    changes = []
    for name, value in props.items():
        op_name, val = value if isinstance(value, tuple) else ("assign", value)
        changes.append(PC.Change(name=name.replace("__", "."), op=op_name, val=typed(val)))
    missing_set = [PC.MissingProperty(path=path, fault=vim.fault.NoPermission()) for path in missing]
    return PC.ObjectUpdate(kind=op, obj=obj(kind, object_id), changeSet=changes, missingSet=missing_set)


def update_set(version: str, *updates: Any, truncated: bool = False) -> Any:
    return PC.UpdateSet(
        version=version,
        truncated=truncated,
        filterSet=[PC.FilterUpdate(filter=PC.Filter("filter-1"), objectSet=list(updates))],
    )


def vm_update(object_id: str, name: str, host: str, op: str = "enter", folder: str = "group-v3", **props) -> Any:
    values = dict(
        name=name,
        parent=obj("Folder", folder),
        runtime__host=obj("HostSystem", host),
        config__template=False,
        config__uuid=f"uuid-{object_id}",
        runtime__powerState="poweredOn",
    )
    values.update(props)
    return update("VirtualMachine", object_id, op, **values)


def small_inventory(version: str = "1", *extra: Any, truncated: bool = False) -> Any:
    """A datacenter, its VM folder, a cluster with one host and pool, and the VMs given in `extra`."""
    return update_set(
        version,
        update("Folder", "group-d1", name="Datacenters", childType=["Datacenter"]),
        update(
            "Datacenter",
            "datacenter-2",
            name="DC0",
            parent=obj("Folder", "group-d1"),
            vmFolder=obj("Folder", "group-v3"),
        ),
        update("Folder", "group-v3", name="vm", parent=obj("Datacenter", "datacenter-2"), childType=["VirtualMachine"]),
        update(
            "Folder", "group-h4", name="host", parent=obj("Datacenter", "datacenter-2"), childType=["ComputeResource"]
        ),
        update(
            "ClusterComputeResource",
            "domain-c7",
            name="C0",
            parent=obj("Folder", "group-h4"),
            host=[obj("HostSystem", "host-10")],
            datastore=[],
            network=[],
        ),
        update("HostSystem", "host-10", name="esx0", parent=obj("ClusterComputeResource", "domain-c7")),
        update(
            "ResourcePool",
            "resgroup-8",
            name="Resources",
            parent=obj("ClusterComputeResource", "domain-c7"),
            owner=obj("ClusterComputeResource", "domain-c7"),
        ),
        *extra,
        truncated=truncated,
    )


class ScriptedFeed:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []  # the versions waited from
        self.closed = False
        self.reread: list[str] = []
        self.stop: threading.Event | None = None
        self.before_answer = lambda version: None  # a test looks at the cache between answers

    def wait(self, version: str, max_wait: int, max_objects: int) -> UpdateBatch | None:
        self.asked.append(version)
        self.before_answer(version)
        if not self.answers:
            self.stop.set()
            return None
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            return None
        return UpdateBatch(str(answer.version), bool(answer.truncated), object_changes(answer))

    def close(self) -> None:
        self.closed = True

    def read_objects(self, changes):
        from inventory.mirror import ENTER, ObjectChange

        self.reread += [change.id for change in changes]
        return [
            ObjectChange(c.kind, c.id, ENTER, {"name": f"read again {c.id}", "parent": "group-v3"}) for c in changes
        ]

    def template_details(self, template_ids):
        return {i: {"config.hardware.device": [], "config.firmware": "efi"} for i in template_ids}


class ScriptedVCenter:
    """Hands out its feeds in order, one per `open_feed()`, in a session that never fails."""

    def __init__(self, *feeds: ScriptedFeed) -> None:
        self.feeds = list(feeds)
        self.opened: list[ScriptedFeed] = []
        self.stop = threading.Event()
        self.soap_calls_by_method: dict[str, int] = {}
        for feed in self.feeds:
            feed.stop = self.stop

    @contextmanager
    def __call__(self):
        yield self

    def open_feed(self) -> ScriptedFeed:
        feed = self.feeds.pop(0)
        self.opened.append(feed)
        return feed
