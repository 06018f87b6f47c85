"""vCenter's update stream for the watcher: its own PropertyCollector, one filter, WaitForUpdatesEx.

The vCenter I/O of inventory.watcher, beside inventory.vsphere (whose session, property table and plain values it
reuses: the filter asks for exactly the properties a full collection reads, `vsphere._PROPERTIES`).

`UpdateFeed.open(session)` creates a PropertyCollector of vmprov's own (CreatePropertyCollector: its filters and
versions are ours alone), a ContainerView over the root folder of every kind the cache holds and one filter over
it (partialUpdates=False: a change reports the whole value of the property asked for, never a piece of a
collection). `wait(version, ...)` is one WaitForUpdatesEx; from version "" it answers every object as "enter",
page by page (`maxObjectUpdates`, `truncated`). Filters belong to the session and die with it: after a lost
session, a vCenter restart or `InvalidCollectorVersion` the watcher opens a new feed and starts again from "".

Round trips at idle: one WaitForUpdatesEx per `maxWaitSeconds`; it also keeps the session from timing out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pyVmomi import vim, vmodl

from inventory import vsphere
from inventory.mirror import ENTER, LEAVE, MODIFY, ObjectChange
from inventory.snapshot import VCenterError

logger = logging.getLogger(__name__)

PropertyCollector = vmodl.query.PropertyCollector
_UNSET_OPS = {"remove", "indirectRemove"}


class VersionLost(VCenterError):
    """vCenter no longer knows the version we wait from (InvalidCollectorVersion): reload from version ""."""


@dataclass
class UpdateBatch:
    """One WaitForUpdatesEx answer as plain changes."""

    version: str
    truncated: bool
    changes: list[ObjectChange]


def object_changes(update_set: Any) -> list[ObjectChange]:
    """An UpdateSet's object updates, in order, as plain `ObjectChange`s.

    Properties vCenter could not read (`missingSet`, e.g. NoPermission) count as unset, like properties vCenter
    leaves out. A change inside a collection ("add", or a path with an index) asks for the object to be read again.
    """
    changes = []
    for filter_update in update_set.filterSet or []:
        for update in filter_update.objectSet or []:
            obj = update.obj
            change = ObjectChange(kind=vsphere._kind(obj), id=obj._moId, op=str(update.kind))
            if change.op not in {ENTER, MODIFY, LEAVE}:
                raise VCenterError(f"vCenter sent an update of unknown kind {change.op!r} for {change.id}")
            for property_change in update.changeSet or []:
                name, op = property_change.name, str(property_change.op)
                if op == "assign" and "[" not in name:
                    change.values[name] = vsphere._plain(name, property_change.val)
                elif op in _UNSET_OPS and "[" not in name:
                    change.removed.append(name)
                else:
                    change.refetch = True
            for missing in update.missingSet or []:
                logger.debug("vCenter left out %s of %s: %s", missing.path, change.id, missing.fault)
                change.removed.append(missing.path)
            changes.append(change)
    return changes


class UpdateFeed:
    """The watcher's PropertyCollector and filter in one session."""

    def __init__(self, session: vsphere.Session, collector: Any, view: Any) -> None:
        self.session = session
        self._collector = collector
        self._view = view

    @classmethod
    def open(cls, session: vsphere.Session) -> UpdateFeed:
        content = session.content
        collector = content.propertyCollector.CreatePropertyCollector()
        view = content.viewManager.CreateContainerView(content.rootFolder, list(vsphere._PROPERTIES), True)
        spec = PropertyCollector.FilterSpec(
            objectSet=[
                PropertyCollector.ObjectSpec(
                    obj=view, skip=True, selectSet=[vsphere._traversal("view", vim.view.ContainerView, "view")]
                )
            ],
            propSet=[PropertyCollector.PropertySpec(type=t, pathSet=p) for t, p in vsphere._PROPERTIES.items()],
        )
        collector.CreateFilter(spec, partialUpdates=False)
        return cls(session, collector, view)

    def close(self) -> None:
        """Destroy the collector (and its filter) and the view; a failure is only logged: the session ends next."""
        for destroy in (self._collector.DestroyPropertyCollector, self._view.DestroyView):
            try:
                destroy()
            except Exception as error:
                logger.info("could not clean up after the update feed: %s", vsphere.describe_fault(error))

    def wait(self, version: str, max_wait: int, max_objects: int) -> UpdateBatch | None:
        """One WaitForUpdatesEx: None when nothing changed within `max_wait` seconds."""
        options = PropertyCollector.WaitOptions(maxWaitSeconds=max_wait, maxObjectUpdates=max_objects)
        try:
            update_set = self._collector.WaitForUpdatesEx(version, options)
        except vmodl.fault.InvalidArgument as error:
            raise VersionLost(f"vCenter refused version {version!r}: {vsphere.describe_fault(error)}") from None
        except vmodl.query.InvalidCollectorVersion:
            raise VersionLost(f"vCenter no longer knows version {version!r}") from None
        if update_set is None:
            return None
        return UpdateBatch(str(update_set.version), bool(update_set.truncated), object_changes(update_set))

    def read_objects(self, changes: Iterable[ObjectChange]) -> list[ObjectChange]:
        """Read whole again the objects of `changes` (a change the mirror cannot apply): each as an enter, or a
        leave when it is gone."""
        wanted = {change.id: change.kind for change in changes}
        by_kind = {_vim_type(kind): kind for kind in wanted.values()}
        spec = PropertyCollector.FilterSpec(
            objectSet=[
                PropertyCollector.ObjectSpec(obj=_vim_type(kind)(object_id, self.session.stub), skip=False)
                for object_id, kind in wanted.items()
            ],
            propSet=[
                PropertyCollector.PropertySpec(type=t, pathSet=p)
                for t, p in vsphere._PROPERTIES.items()
                if any(issubclass(wanted_type, t) for wanted_type in by_kind)
            ],
        )
        found = {entity.id: entity for entity in _retrieve_existing(self.session, spec)}
        return [
            ObjectChange(kind, object_id, ENTER, found[object_id].props)
            if object_id in found
            else ObjectChange(kind, object_id, LEAVE)
            for object_id, kind in wanted.items()
        ]

    def template_details(self, template_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The properties read for templates only (`vsphere._TEMPLATE_PROPERTIES`), by template id."""
        spec = PropertyCollector.FilterSpec(
            objectSet=[
                PropertyCollector.ObjectSpec(obj=vim.VirtualMachine(i, self.session.stub), skip=False)
                for i in template_ids
            ],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=vsphere._TEMPLATE_PROPERTIES)],
        )
        details = {entity.id: entity.props for entity in _retrieve_existing(self.session, spec)}
        # A template without devices still counts as read: it is not asked for again.
        return {i: {"config.hardware.device": [], **details[i]} for i in template_ids if i in details}


def _vim_type(kind: str) -> type:
    return getattr(vim, kind, None) or getattr(vim.dvs, kind)


def _retrieve_existing(session: vsphere.Session, spec: Any) -> list:
    """RetrievePropertiesEx of objects that may be gone meanwhile: those are left out."""
    try:
        return list(vsphere.retrieve(session, spec))
    except vmodl.fault.ManagedObjectNotFound as error:
        gone = getattr(error.obj, "_moId", None)
        if gone is None or len(spec.objectSet) == 1:
            return []
        spec.objectSet = [o for o in spec.objectSet if o.obj._moId != gone]
        return _retrieve_existing(session, spec)


class VCenterConnection:
    """One logged-in session the watcher opens feeds in, and counts its SOAP calls on."""

    def __init__(self, session: vsphere.Session) -> None:
        self.session = session

    def open_feed(self) -> UpdateFeed:
        return UpdateFeed.open(self.session)

    @property
    def soap_calls_by_method(self) -> dict[str, int]:
        return self.session.counter.by_method


@contextmanager
def connect(config: vsphere.VCenterConfig, max_wait: int) -> Iterator[VCenterConnection]:
    """A session whose socket timeout outlasts a whole wait: WaitForUpdatesEx holds the answer for up to
    `max_wait` seconds, and a vCenter that stops answering is noticed `config.timeout` seconds later."""
    with vsphere.session(replace(config, timeout=config.timeout + max_wait)) as session:
        yield VCenterConnection(session)
