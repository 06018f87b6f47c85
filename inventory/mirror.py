"""The watcher's copy of vCenter in memory, and which cached lists each change touches.

Pure: no pyVmomi, no Redis. `Mirror.apply()` takes plain `ObjectChange`s (inventory.vsphere_updates turns vCenter's
update sets into them) and says what they touched (`Touched`); `Mirror.render()` rebuilds exactly those lists, or
single entries of a datacenter's VM and template lists, through the builder: the same pure functions a full
collection runs, so a list written from updates is the list a collection would write.

What a change touches, looked at before and after it (a move touches both places):
- a VM or template: its own entry only (name, placement, power state, addresses, UUIDs, hardware);
- a host: its datacenter's cluster list (each cluster lists its hosts and their state);
- a cluster: its datacenter's cluster list and its resources; when its hosts change, the VMs on them too;
- a resource pool: its owner cluster's resources (the paths below it change with it);
- a datastore or network: the resources of every cluster that lists it;
- a folder: its datacenter's folder list (the paths below it change with it);
- a datacenter's name: the datacenter list;
- a new or removed datacenter, an object moved to another datacenter, or a kind the cache does not know:
  everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inventory.builder import Entity, EntityIndex, build_snapshot, machines, placement, resources
from inventory.snapshot import Scope, Snapshot

ENTER, MODIFY, LEAVE = "enter", "modify", "leave"

NETWORK_KINDS = {"Network", "DistributedVirtualPortgroup", "OpaqueNetwork"}
POOL_KINDS = {"ResourcePool", "VirtualApp"}
# Delivery looks for a new VM by these: a VM that enters, or whose value of one of them changes, is announced.
IDENTITY_PROPERTIES = {"name", "config.uuid", "runtime.host", "parent", "config.template"}
# Read for templates only, apart from the update stream (see vsphere_updates.template_details).
TEMPLATE_DETAIL = "config.hardware.device"


@dataclass
class ObjectChange:
    """One object's update as plain values: it entered, changed or left (`op`).

    `values` are the properties assigned (in the collector's plain form, see vsphere._plain), `removed` the ones
    now unset or unreadable. `refetch` says the change came in a shape the mirror cannot apply (a change inside a
    collection): the object must be read again whole.
    """

    kind: str
    id: str
    op: str
    values: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    refetch: bool = False

    @property
    def names(self) -> set[str]:
        return set(self.values) | set(self.removed)


@dataclass
class Touched:
    """The lists (and VM entries) a batch of changes touched."""

    everything: bool = False
    datacenters: bool = False
    cluster_lists: set[str] = field(default_factory=set)  # datacenter ids
    folder_lists: set[str] = field(default_factory=set)  # datacenter ids
    resources: set[str] = field(default_factory=set)  # cluster ids
    machines: set[str] = field(default_factory=set)  # VM ids
    arrivals: set[str] = field(default_factory=set)  # VM ids that entered or changed identity

    def __or__(self, other: Touched) -> Touched:
        return Touched(
            everything=self.everything or other.everything,
            datacenters=self.datacenters or other.datacenters,
            cluster_lists=self.cluster_lists | other.cluster_lists,
            folder_lists=self.folder_lists | other.folder_lists,
            resources=self.resources | other.resources,
            machines=self.machines | other.machines,
            arrivals=self.arrivals | other.arrivals,
        )

    def __bool__(self) -> bool:
        return bool(
            self.everything
            or self.datacenters
            or self.cluster_lists
            or self.folder_lists
            or self.resources
            or self.machines
        )


@dataclass
class MachineChanges:
    """Entries of one datacenter's VM (or template) list to write, and ids to remove from it."""

    upserted: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class Rendered:
    """What `render` rebuilt. `everything` when the whole inventory was; otherwise whole lists by owner, VM entries,
    and the VMs to announce (`arrived`). A cluster whose resources are None is gone."""

    everything: Snapshot | None = None
    datacenters: list[dict] | None = None
    cluster_lists: dict[str, list[dict]] = field(default_factory=dict)
    folder_lists: dict[str, list[dict]] = field(default_factory=dict)
    resources: dict[str, dict | None] = field(default_factory=dict)
    machines: dict[tuple[str, str], MachineChanges] = field(default_factory=dict)
    arrived: list[dict] = field(default_factory=list)


class Mirror:
    """Every object the watcher's filter reported, by id, kept current by `apply()`."""

    def __init__(self, entities: Iterable[Entity] = ()) -> None:
        self.index = EntityIndex(())
        self._ids_by_kind: dict[str, set[str]] = {}
        # VM id -> (datacenter id, "vms" | "templates"): the list it was last rendered into.
        self.placed: dict[str, tuple[str, str]] = {}
        for entity in entities:
            self._put(entity)

    def __len__(self) -> int:
        return len(self.index)

    def counts(self) -> dict[str, int]:
        return {kind: len(ids) for kind, ids in sorted(self._ids_by_kind.items())}

    # --- Changes ---------------------------------------------------------------------------------

    def apply(self, changes: Iterable[ObjectChange], *, track: bool = True) -> Touched:
        """Apply changes in order; returns what they touched (nothing without `track`: a reload renders it all)."""
        touched = Touched()
        for change in changes:
            before = self.index.get(change.id)
            moving = track and before is not None and change.op == MODIFY and "parent" in change.names
            datacenter_before = self.index.datacenter_of(before) if moving else None
            if track and before is not None:
                self._touch(before, change, touched)
            if change.op == LEAVE:
                if before is not None:
                    self._remove(before)
                continue
            # An enter carries every property vCenter has: a known object entering again starts afresh.
            entity = before if before is not None and change.op == MODIFY else Entity(change.kind, change.id, {})
            entity.props.update(change.values)
            for name in change.removed:
                entity.props.pop(name, None)
            self._put(entity)
            if track:
                self._touch(entity, change, touched)
            if moving and entity.kind != "VirtualMachine" and self.index.datacenter_of(entity) != datacenter_before:
                touched.everything = True
        return touched

    def add_details(self, vm_id: str, props: dict[str, Any]) -> None:
        """Properties read apart from the update stream (a template's devices); kept until the VM enters again."""
        vm = self.index.get(vm_id)
        if vm is not None:
            vm.props.update(props)

    def templates_without_details(self, among: Iterable[str] | None = None) -> list[str]:
        """Templates (of the VM ids `among`, or all) whose devices have not been read yet."""
        return [
            vm_id
            for vm_id in (self._ids("VirtualMachine") if among is None else among)
            if (vm := self.index.get(vm_id)) is not None
            and vm.props.get("config.template")
            and TEMPLATE_DETAIL not in vm.props
        ]

    def _put(self, entity: Entity) -> None:
        self.index.put(entity)
        self._ids_by_kind.setdefault(entity.kind, set()).add(entity.id)

    def _remove(self, entity: Entity) -> None:
        self.index.remove(entity.id)
        self._ids_by_kind.get(entity.kind, set()).discard(entity.id)

    def _ids(self, *kinds: str) -> list[str]:
        return [entity_id for kind in kinds for entity_id in self._ids_by_kind.get(kind, ())]

    def _touch(self, entity: Entity, change: ObjectChange, touched: Touched) -> None:
        """Note what `entity`, as it is now, shows in: called before a change and again after it."""
        names = change.names
        kind = entity.kind
        datacenter_id = self.index.datacenter_of(entity) if kind != "VirtualMachine" else None
        if kind == "VirtualMachine":
            touched.machines.add(entity.id)
            if change.op == ENTER or names & IDENTITY_PROPERTIES:
                touched.arrivals.add(entity.id)
        elif kind == "HostSystem":
            _add(touched.cluster_lists, datacenter_id)
        elif kind == "ClusterComputeResource":
            _add(touched.cluster_lists, datacenter_id)
            touched.resources.add(entity.id)
            if change.op != MODIFY or "host" in names:
                hosts = set(entity.refs("host"))
                touched.machines.update(
                    vm_id for vm_id in self._ids("VirtualMachine") if self.index.get(vm_id).ref("runtime.host") in hosts
                )
        elif kind in POOL_KINDS:
            _add(touched.resources, entity.ref("owner"))
        elif kind == "Datastore" or kind in NETWORK_KINDS:
            for cluster_id in self._ids("ClusterComputeResource"):
                cluster = self.index.get(cluster_id)
                if entity.id in cluster.refs("datastore") or entity.id in cluster.refs("network"):
                    touched.resources.add(cluster_id)
        elif kind == "Folder":
            _add(touched.folder_lists, datacenter_id)
        elif kind == "Datacenter" and change.op == MODIFY and names <= {"name"}:
            touched.datacenters = True
        else:
            touched.everything = True

    # --- Rendering -------------------------------------------------------------------------------

    def render_everything(self) -> Rendered:
        """The whole inventory, as one full collection would build it."""
        snapshot = build_snapshot(Scope.everything(), self.index.entities())
        self.placed = {
            item["id"]: (datacenter_id, kind)
            for kind in ("vms", "templates")
            for datacenter_id, items in getattr(snapshot, kind).items()
            for item in items
        }
        return Rendered(everything=snapshot)

    def render(self, touched: Touched) -> Rendered:
        """Rebuild what `touched` names, and nothing else."""
        if touched.everything:
            return self.render_everything()
        rendered = Rendered()
        datacenter_ids = set(self._ids("Datacenter"))
        if touched.datacenters:
            rendered.datacenters = placement.datacenters(self._sub_index("Datacenter"))
        if touched.cluster_lists:
            clusters = placement.clusters(self._sub_index("ClusterComputeResource", "HostSystem"))
            for datacenter_id in touched.cluster_lists & datacenter_ids:
                rendered.cluster_lists[datacenter_id] = clusters.get(datacenter_id, [])
        if touched.folder_lists:
            folders = placement.folders(self._sub_index("Folder", "Datacenter"))
            for datacenter_id in touched.folder_lists & datacenter_ids:
                rendered.folder_lists[datacenter_id] = folders.get(datacenter_id, [])
        if touched.resources:
            pools = resources.resource_pools(self._sub_index(*POOL_KINDS))
            for cluster_id in touched.resources:
                cluster = self.index.get(cluster_id)
                if cluster is None or cluster.kind != "ClusterComputeResource":
                    rendered.resources[cluster_id] = None
                else:
                    rendered.resources[cluster_id] = resources.one_cluster_resources(self.index, cluster, pools)
        if touched.machines:
            cluster_of_host = {
                host_id: cluster_id
                for cluster_id in self._ids("ClusterComputeResource")
                for host_id in self.index.get(cluster_id).refs("host")
            }
            for vm_id in sorted(touched.machines):
                self._render_machine(vm_id, vm_id in touched.arrivals, cluster_of_host, rendered)
        return rendered

    def _render_machine(self, vm_id: str, arrived: bool, cluster_of_host: dict[str, str], rendered: Rendered) -> None:
        was = self.placed.pop(vm_id, None)
        place, entry = self._machine_entry(vm_id, cluster_of_host)
        if was is not None and was != place:
            rendered.machines.setdefault(was, MachineChanges()).removed.append(vm_id)
        if place is None:
            return  # gone, or not placed in a datacenter yet (a partial object): listed once it is
        self.placed[vm_id] = place
        rendered.machines.setdefault(place, MachineChanges()).upserted.append(entry)
        if arrived and place[1] == "vms":
            rendered.arrived.append(entry)

    def _machine_entry(self, vm_id: str, cluster_of_host: dict[str, str]) -> tuple[tuple[str, str] | None, dict | None]:
        """One VM's (or template's) entry, built from the VM and what places it: its folders up to its datacenter,
        its host, and the cluster that lists the host (as the builder tells a VM's cluster)."""
        vm = self.index.get(vm_id)
        if vm is None:
            return None, None
        context = {vm.id: vm}
        self._ancestors(vm.ref("parent"), context)
        host = self.index.get(vm.ref("runtime.host"))
        if host is not None:
            context[host.id] = host
            self._ancestors(host.ref("parent"), context)
            self._ancestors(cluster_of_host.get(host.id), context)
        template = bool(vm.props.get("config.template"))
        built = (machines.templates if template else machines.vms)(EntityIndex(context.values()))
        for datacenter_id, entries in built.items():
            return (datacenter_id, "templates" if template else "vms"), entries[0]
        return None, None

    def _ancestors(self, entity_id: str | None, into: dict[str, Entity]) -> None:
        while entity_id and entity_id not in into:
            entity = self.index.get(entity_id)
            if entity is None:
                return
            into[entity_id] = entity
            entity_id = entity.ref("parent")

    def _sub_index(self, *kinds: str) -> EntityIndex:
        """The objects of `kinds` and their ancestors: enough for the builder's functions of those kinds."""
        context: dict[str, Entity] = {}
        for entity_id in self._ids(*kinds):
            context[entity_id] = self.index.get(entity_id)
        for entity in list(context.values()):
            self._ancestors(entity.ref("parent"), context)
        return EntityIndex(context.values())


def _add(ids: set[str], entity_id: str | None) -> None:
    if entity_id:
        ids.add(entity_id)
