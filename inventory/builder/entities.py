"""The builder's input: the managed objects one collection returned, as plain records, and an index over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inventory.snapshot import display_name, path_segment


@dataclass
class Entity:
    """One managed object as the PropertyCollector returned it, in plain values.

    `props` is keyed by vCenter property path. A reference to another managed object is its id (a list of
    references, a list of ids); `tag` is the list of tag keys and `guest.net` the list of the guest's
    addresses. Only `config.hardware.device` keeps vCenter's device objects (see `builder.hardware`).
    """

    kind: str  # the managed object type without its namespace, e.g. "ClusterComputeResource"
    id: str
    props: dict[str, Any]

    def ref(self, name: str) -> str | None:
        return self.props.get(name) or None

    def refs(self, name: str) -> list[str]:
        return list(self.props.get(name) or [])


class EntityIndex:
    """The collected objects by id, with the walks up the inventory tree every kind of list needs."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        self._by_id: dict[str, Entity] = {}
        for entity in entities:
            # The same object can arrive twice (a datacenter lists a network twice); merge.
            if entity.id in self._by_id:
                self._by_id[entity.id].props.update(entity.props)
            else:
                self._by_id[entity.id] = entity

    def get(self, entity_id: str | None) -> Entity | None:
        return self._by_id.get(entity_id or "")

    def put(self, entity: Entity) -> None:
        """Add or replace one object (the watcher's mirror keeps its index current this way)."""
        self._by_id[entity.id] = entity

    def remove(self, entity_id: str) -> Entity | None:
        return self._by_id.pop(entity_id, None)

    def entities(self) -> list[Entity]:
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def of_kind(self, *kinds: str) -> list[Entity]:
        """Every object of these kinds, by display name then id."""
        return sorted((e for e in self._by_id.values() if e.kind in kinds), key=lambda e: (self.name(e), e.id))

    @staticmethod
    def name(entity: Entity) -> str:
        return display_name(entity.props.get("name") or entity.id)

    def ancestor(self, entity_id: str | None, kinds: set[str]) -> Entity | None:
        """The first object of `kinds` at or above `entity_id` (None past a gap in what was collected)."""
        seen = set()
        while entity_id and entity_id not in seen:
            seen.add(entity_id)
            current = self._by_id.get(entity_id)
            if current is None:
                return None
            if current.kind in kinds:
                return current
            entity_id = current.ref("parent")
        return None

    def datacenter_of(self, entity: Entity) -> str | None:
        found = self.ancestor(entity.ref("parent"), {"Datacenter"})
        if found is None and entity.kind == "VirtualMachine":
            # A VM in a vApp has no parent folder; its host's cluster tells the datacenter.
            host = self.get(entity.ref("runtime.host"))
            if host is not None:
                found = self.ancestor(host.ref("parent"), {"Datacenter"})
        return found.id if found else None

    def path(self, entity: Entity, kinds: set[str], stop_at: str | None = None) -> str:
        """The escaped path of `entity` through its ancestors of `kinds`, up to (not including) `stop_at`."""
        segments: list[str] = []
        current: Entity | None = entity
        while current is not None and current.kind in kinds and current.id != stop_at:
            segments.append(path_segment(self.name(current)))
            current = self.get(current.ref("parent"))
        return "/".join(reversed(segments))
