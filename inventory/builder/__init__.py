"""From the objects one collection returned to a `Snapshot`: pure functions, one per kind of list.

`build_snapshot(scope, entities)` takes plain `Entity` records (vsphere.retrieve turns vCenter's answers into
them) and returns the snapshot the cache stores. Each kind has its own small function, callable on its own from
tests: `placement` (datacenters, clusters, VM folders), `resources` (resource pools, datastores, networks),
`machines` (templates, VMs) and `hardware` (a template's devices).
"""

from __future__ import annotations

from collections.abc import Iterable

from inventory.builder import machines, placement, resources
from inventory.builder.entities import Entity, EntityIndex
from inventory.snapshot import Scope, Snapshot

__all__ = ["Entity", "EntityIndex", "build_snapshot"]


def build_snapshot(scope: Scope, entities: Iterable[Entity]) -> Snapshot:
    index = EntityIndex(entities)
    snapshot = Snapshot(
        scope=scope,
        datacenters=placement.datacenters(index),
        clusters=placement.clusters(index),
        resources=resources.cluster_resources(index),
        templates=machines.templates(index),
        vms=machines.vms(index),
        folders=placement.folders(index),
    )
    # Every datacenter in scope has its lists, even when empty, so "empty" is told apart from "not cached".
    if scope.kind == Scope.ALL:
        datacenter_ids = [datacenter["id"] for datacenter in snapshot.datacenters]
    elif scope.kind == Scope.DATACENTER:
        datacenter_ids = [scope.id]
    else:
        datacenter_ids = []
    for datacenter_id in datacenter_ids:
        for groups in (snapshot.clusters, snapshot.templates, snapshot.vms, snapshot.folders):
            groups.setdefault(datacenter_id, [])
    return snapshot
