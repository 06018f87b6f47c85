"""Virtual machines: templates (with the hardware a clone needs) and the VMs delivery looks for."""

from __future__ import annotations

from inventory.builder.entities import Entity, EntityIndex
from inventory.builder.hardware import template_hardware


def templates(index: EntityIndex) -> dict[str, list[dict]]:
    """Datacenter id -> its templates."""
    by_datacenter: dict[str, list[dict]] = {}
    for template, placed in _machines(index, templates=True):
        props = template.props
        by_datacenter.setdefault(placed["datacenter_id"], []).append(
            {
                **placed,
                "uuid": props.get("config.uuid") or "",
                "guest_id": props.get("config.guestId") or "",
                "num_cpus": int(props.get("config.hardware.numCPU") or 0),
                "memory_mb": int(props.get("config.hardware.memoryMB") or 0),
                "firmware": props.get("config.firmware") or "bios",
                **template_hardware(props.get("config.hardware.device")),
            }
        )
    return by_datacenter


def vms(index: EntityIndex) -> dict[str, list[dict]]:
    """Datacenter id -> its VMs (templates are not VMs here), with what a VM's page shows and a resize needs: size,
    hot add flags, power state, guest host name and addresses, and the names of its host, cluster and datastores."""
    by_datacenter: dict[str, list[dict]] = {}
    for vm, placed in _machines(index, templates=False):
        props = vm.props
        datastores = [index.get(datastore_id) for datastore_id in vm.refs("datastore")]
        by_datacenter.setdefault(placed["datacenter_id"], []).append(
            {
                **placed,
                "host_name": _name_of(index, placed["host_id"]),
                "cluster_name": _name_of(index, placed["cluster_id"]),
                # config.uuid is the vsphere provider's resource id: delivery finds the VM by it.
                "uuid": props.get("config.uuid") or "",
                "instance_uuid": props.get("config.instanceUuid") or "",
                "power_state": str(props.get("runtime.powerState") or ""),
                "num_cpus": props.get("config.hardware.numCPU"),
                "memory_mb": props.get("config.hardware.memoryMB"),
                # A real vCenter reports false; vcsim leaves an unset flag out.
                "cpu_hot_add_enabled": bool(props.get("config.cpuHotAddEnabled")),
                "cpu_hot_remove_enabled": bool(props.get("config.cpuHotRemoveEnabled")),
                "memory_hot_add_enabled": bool(props.get("config.memoryHotAddEnabled")),
                "guest_hostname": props.get("guest.hostName") or "",
                "ip_addresses": guest_addresses(props),
                "datastore_ids": vm.refs("datastore"),
                "datastore_names": sorted(index.name(datastore) for datastore in datastores if datastore is not None),
            }
        )
    return by_datacenter


def _name_of(index: EntityIndex, entity_id: str | None) -> str:
    """The display name of a collected object, "" when it was not collected."""
    entity = index.get(entity_id)
    return index.name(entity) if entity is not None else ""


def guest_addresses(props: dict) -> list[str]:
    """Every address the guest reports: its primary one and those of each NIC (`guest.net`), sorted."""
    addresses = {props["guest.ipAddress"]} if props.get("guest.ipAddress") else set()
    addresses.update(address for address in props.get("guest.net") or [] if address)
    return sorted(addresses)


def _machines(index: EntityIndex, *, templates: bool) -> list[tuple[Entity, dict]]:
    """The templates (or the VMs) in a datacenter, each with where it is placed."""
    cluster_of_host = {
        host_id: cluster.id for cluster in index.of_kind("ClusterComputeResource") for host_id in cluster.refs("host")
    }
    found = []
    for machine in index.of_kind("VirtualMachine"):
        if bool(machine.props.get("config.template")) != templates:
            continue
        datacenter_id = index.datacenter_of(machine)
        if datacenter_id is None:
            continue
        host_id = machine.ref("runtime.host")
        placed = {
            "id": machine.id,
            "name": index.name(machine),
            "datacenter_id": datacenter_id,
            "host_id": host_id,
            "cluster_id": cluster_of_host.get(host_id or ""),
            "folder_id": machine.ref("parent"),
        }
        found.append((machine, placed))
    return found
