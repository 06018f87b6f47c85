"""A delivered VM as people read it: its addresses, guest host name, power state, host and cluster, from the
inventory (`catalog.vms`). Shared by the request page, the ready email and any page that lists VMs
(the `provisioning/_vm_facts.html` partial renders one)."""

from __future__ import annotations

from dataclasses import dataclass

from inventory import catalog

POWER_STATES = {"poweredOn": "On", "poweredOff": "Off", "suspended": "Suspended"}


@dataclass(frozen=True)
class VMFacts:
    id: str
    name: str
    ip_addresses: tuple[str, ...]
    guest_hostname: str  # what the guest reports (VMware Tools); "" until it does
    power_state: str
    host: str  # the ESXi host's name, else its id
    cluster: str  # the cluster's name, else its id
    fetched_at: str  # ISO time of the inventory list it comes from

    def as_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs, for text (the email) and the partial alike."""
        return [
            ("IP addresses", ", ".join(self.ip_addresses) or "none reported yet"),
            ("Guest host name", self.guest_hostname or "not reported yet"),
            ("Power", self.power_state),
            ("Host", self.host or "unknown"),
            ("Cluster", self.cluster or "unknown"),
            ("VM id", self.id),
        ]


def facts_of(vm: dict, fetched_at: float = 0) -> VMFacts:
    """One VM record of `catalog.vms` as facts; fields the inventory does not collect yet fall back to ids."""
    state = vm.get("power_state") or ""
    return VMFacts(
        id=vm["id"],
        name=vm.get("name", ""),
        ip_addresses=tuple(vm.get("ip_addresses") or ()),
        guest_hostname=vm.get("guest_hostname") or "",
        power_state=POWER_STATES.get(state, state or "unknown"),
        host=vm.get("host_name") or vm.get("host_id") or "",
        cluster=vm.get("cluster_name") or vm.get("cluster_id") or "",
        fetched_at=catalog.iso(fetched_at) if fetched_at else "",
    )


def delivered_vm(datacenter_id: str, vm_id: str) -> VMFacts | None:
    """The facts of VM `vm_id` from the cached inventory; None when it is not there or cannot be read now."""
    if not vm_id:
        return None
    try:
        listing = catalog.vms(datacenter_id)
    except (catalog.NotFound, catalog.Unavailable):
        return None
    vm = listing.by_id().get(vm_id)
    return facts_of(vm, listing.fetched_at) if vm is not None else None
