"""The baseline: a full inventory read the way most pyVmomi scripts do it, by walking attributes.

Every attribute read on a managed object (`dc.hostFolder`, `cluster.datastore`,
`vm.config`) is one SOAP round trip. This walker is the *generous* version of
such a script: it reads each top-level property once per object it visits
(`summary = ds.summary`, then its fields) instead of once per field
(`ds.summary.capacity`, `ds.summary.freeSpace`, … would be one call each), so its
call count is a lower bound for scripts written that way. Objects reached
through several parents (a datastore or network mounted in several clusters)
are read once per parent, as a per-cluster listing does.

It reads the same information as `inventory.vsphere.collect(Scope.everything())`:
datacenters, clusters with their hosts (state, maintenance), resource pools
with paths, datastores with capacity and free space, networks (uplink port
groups left out), VM folders, templates with hardware, VMs with guest
addresses; `counts()` gives the same keys as `Snapshot.counts()` so the two
can be compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from inventory.builder.hardware import template_hardware
from inventory.snapshot import display_name, path_segment


@dataclass
class NaiveInventory:
    datacenters: list[dict] = field(default_factory=list)
    clusters: list[dict] = field(default_factory=list)
    resource_pools: list[dict] = field(default_factory=list)
    datastores: dict[str, dict] = field(default_factory=dict)
    networks: dict[str, dict] = field(default_factory=dict)
    folders: list[dict] = field(default_factory=list)
    templates: list[dict] = field(default_factory=list)
    vms: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "datacenters": len(self.datacenters),
            "clusters": len(self.clusters),
            "resource_pools": len(self.resource_pools),
            "datastores": len(self.datastores),
            "networks": len(self.networks),
            "folders": len(self.folders),
            "templates": len(self.templates),
            "vms": len(self.vms),
        }


def _datacenters(folder: Any) -> Iterator[Any]:
    for child in folder.childEntity:
        if isinstance(child, vim.Datacenter):
            yield child
        elif isinstance(child, vim.Folder):
            yield from _datacenters(child)


def _clusters(folder: Any) -> Iterator[Any]:
    for child in folder.childEntity:
        if isinstance(child, vim.ClusterComputeResource):
            yield child
        elif isinstance(child, vim.Folder):
            yield from _clusters(child)


def _pools(pool: Any, parent_path: str) -> Iterator[tuple[Any, str, str]]:
    name = display_name(pool.name)
    path = f"{parent_path}/{path_segment(name)}" if parent_path else path_segment(name)
    yield pool, name, path
    for child in pool.resourcePool:
        yield from _pools(child, path)


def _read_vm(vm: Any, datacenter_id: str, folder_id: str, inventory: NaiveInventory) -> None:
    name = display_name(vm.name)
    config = vm.config
    runtime = vm.runtime
    host_id = runtime.host._moId if runtime.host else None
    common = {"id": vm._moId, "name": name, "datacenter_id": datacenter_id, "host_id": host_id, "folder_id": folder_id}
    if config is not None and config.template:
        inventory.templates.append(
            {
                **common,
                "uuid": config.uuid,
                "guest_id": config.guestId,
                "num_cpus": config.hardware.numCPU,
                "memory_mb": config.hardware.memoryMB,
                "firmware": config.firmware or "bios",
                **template_hardware(config.hardware.device),
            }
        )
        return
    guest = vm.guest
    pool = vm.resourcePool
    addresses = {guest.ipAddress} if guest is not None and guest.ipAddress else set()
    for nic in (guest.net if guest is not None else None) or []:
        addresses.update(address for address in nic.ipAddress or [] if address)
    inventory.vms.append(
        {
            **common,
            "instance_uuid": config.instanceUuid if config is not None else "",
            "power_state": str(runtime.powerState),
            "pool_id": pool._moId if pool is not None else None,
            "ip_addresses": sorted(addresses),
        }
    )


def _walk_vm_folder(folder: Any, name: str, path: str, datacenter_id: str, inventory: NaiveInventory) -> None:
    inventory.folders.append({"id": folder._moId, "name": name, "path": path})
    for child in folder.childEntity:
        if isinstance(child, vim.Folder):
            child_name = display_name(child.name)
            child_path = f"{path}/{path_segment(child_name)}" if path else path_segment(child_name)
            _walk_vm_folder(child, child_name, child_path, datacenter_id, inventory)
        elif isinstance(child, vim.VirtualMachine):
            _read_vm(child, datacenter_id, folder._moId, inventory)


def naive_collect(service_instance: Any) -> NaiveInventory:
    """The whole inventory by attribute access: one SOAP round trip per property read."""
    inventory = NaiveInventory()
    content = service_instance.RetrieveContent()
    for datacenter in _datacenters(content.rootFolder):
        datacenter_id = datacenter._moId
        inventory.datacenters.append({"id": datacenter_id, "name": display_name(datacenter.name)})

        for cluster in _clusters(datacenter.hostFolder):
            hosts = []
            for host in cluster.host:
                runtime = host.runtime
                hosts.append(
                    {
                        "id": host._moId,
                        "name": display_name(host.name),
                        "connection_state": str(runtime.connectionState),
                        "maintenance_mode": bool(runtime.inMaintenanceMode),
                    }
                )
            inventory.clusters.append(
                {
                    "id": cluster._moId,
                    "name": display_name(cluster.name),
                    "datacenter_id": datacenter_id,
                    "hosts": hosts,
                }
            )
            for pool, name, path in _pools(cluster.resourcePool, ""):
                inventory.resource_pools.append(
                    {"id": pool._moId, "name": name, "path": path, "cluster": cluster._moId}
                )
            for datastore in cluster.datastore:
                summary = datastore.summary
                inventory.datastores[datastore._moId] = {
                    "id": datastore._moId,
                    "name": display_name(datastore.name),
                    "capacity": summary.capacity,
                    "free_space": summary.freeSpace,
                    "accessible": summary.accessible,
                    "maintenance_mode": summary.maintenanceMode or "normal",
                    "type": summary.type,
                }
            for network in cluster.network:
                name = display_name(network.name)
                if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
                    uplink = bool(network.config.uplink) or any(
                        tag.key == "SYSTEM/DVS.UPLINKPG" for tag in network.tag or []
                    )
                    if uplink:
                        continue
                inventory.networks[network._moId] = {"id": network._moId, "name": name}

        vm_folder = datacenter.vmFolder
        _walk_vm_folder(vm_folder, display_name(vm_folder.name), "", datacenter_id, inventory)
    return inventory
