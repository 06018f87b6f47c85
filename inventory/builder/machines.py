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
    """Datacenter id -> its VMs (templates are not VMs here)."""
    by_datacenter: dict[str, list[dict]] = {}
    for vm, placed in _machines(index, templates=False):
        props = vm.props
        by_datacenter.setdefault(placed["datacenter_id"], []).append(
            {
                **placed,
                # config.uuid is the vsphere provider's resource id: delivery finds the VM by it.
                "uuid": props.get("config.uuid") or "",
                "instance_uuid": props.get("config.instanceUuid") or "",
                "power_state": str(props.get("runtime.powerState") or ""),
                "num_cpus": props.get("config.hardware.numCPU"),
                "memory_mb": props.get("config.hardware.memoryMB"),
                "ip_addresses": guest_addresses(props),
            }
        )
    return by_datacenter


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
