"""The VMs vmprov delivered, as pages show them: each with its requests, the values last applied to it, what the
inventory shows of it now, and where the two differ (drift: somebody resized it in vCenter by hand).

A delivered VM is the request that created it, once ready (`VMRequest.objects.delivered()`); its changes and its
decommission point at that request. What was last applied is the newest change that finished, else the request that
created it: a change starts from those values, never from what vCenter shows, so that its plan shows the drift.
Reads only: the inventory through `inventory.catalog` (the cache), never vCenter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from inventory import catalog
from provisioning.lifecycle import OPEN_STATUSES, RequestKind, RequestStatus
from provisioning.models import VMRequest

APPLIED_FIELDS = ("num_cpus", "memory_mb", "disk_size_gb", "notes")


@dataclass
class DeliveredVM:
    """One delivered VM for a page."""

    vm: VMRequest  # the request that created it
    applied: dict  # num_cpus, memory_mb, disk_size_gb, notes as last applied, and `request` (the one that did)
    record: dict | None = None  # the inventory's record of it (None: not listed, or not readable)
    problem: str = ""  # why the inventory could not be read
    open_request: VMRequest | None = None  # its change or decommission under way
    requests: list[VMRequest] = field(default_factory=list)  # every request about it, newest first

    @property
    def decommissioned(self) -> bool:
        return self.vm.decommissioned_at is not None

    @property
    def drift(self) -> list[str]:
        """What the inventory shows that differs from the last applied values (empty when it agrees or is unread)."""
        if self.record is None or self.decommissioned:
            return []
        found = []
        for name in ("num_cpus", "memory_mb"):
            now, applied = self.record.get(name), self.applied[name]
            if now is not None and now != applied:
                found.append(f"vCenter shows {_amount(name, now)}; the last apply set {_amount(name, applied)}")
        return found


def applied_values(vm: VMRequest, day2: Iterable[VMRequest] | None = None) -> dict:
    """The values last applied to the VM `vm` delivered: its newest change that finished (among `day2`, its
    change and decommission requests, read when not given), else `vm` itself."""
    day2 = vm.day2_requests.all() if day2 is None else day2
    changes = [item for item in day2 if item.kind == RequestKind.CHANGE and item.status == RequestStatus.READY]
    source = max(changes, key=lambda item: (item.updated_at, item.pk), default=vm)
    return {**{name: getattr(source, name) for name in APPLIED_FIELDS}, "request": source}


def delivered_vms(user) -> list[DeliveredVM]:
    """The VMs `user` sees (their own; approvers and staff: all), newest first: two queries, and one inventory read
    per datacenter."""
    vms = list(VMRequest.objects.visible_to(user).delivered().select_related("requester")[:500])
    day2: dict[int, list[VMRequest]] = defaultdict(list)
    for item in VMRequest.objects.filter(vm_of__in=vms).order_by("-created_at", "-id"):
        day2[item.vm_of_id].append(item)
    found = [_delivered(vm, day2[vm.pk]) for vm in vms]
    _read_inventory(found)
    return found


def delivered_vm(vm: VMRequest) -> DeliveredVM:
    """One delivered VM with its inventory record and every request about it."""
    day2 = list(vm.day2_requests.select_related("requester").order_by("-created_at", "-id"))
    found = _delivered(vm, day2)
    _read_inventory([found])
    return found


def _delivered(vm: VMRequest, day2: list[VMRequest]) -> DeliveredVM:
    pending = [item for item in day2 if item.status in OPEN_STATUSES]
    return DeliveredVM(
        vm=vm,
        applied=applied_values(vm, day2),
        open_request=pending[-1] if pending else None,
        requests=[*day2, vm],
    )


def _read_inventory(found: Iterable[DeliveredVM]) -> None:
    by_datacenter: dict[str, list[DeliveredVM]] = defaultdict(list)
    for item in found:
        if item.vm.vm_moref and not item.decommissioned:
            by_datacenter[item.vm.datacenter_id].append(item)
    for datacenter_id, items in by_datacenter.items():
        try:
            records = catalog.vms_by_id(datacenter_id, [item.vm.vm_moref for item in items]).by_id()
        except (catalog.NotFound, catalog.Unavailable) as error:
            for item in items:
                item.problem = f"The inventory cannot be read now: {error}"
            continue
        for item in items:
            item.record = records.get(item.vm.vm_moref)
            if item.record is None:
                item.problem = f"The inventory does not list {item.vm.vm_moref} (any more)."


def _amount(name: str, value: int) -> str:
    """2 CPUs, 1 CPU, 2048 MB of memory."""
    return f"{value} MB of memory" if name == "memory_mb" else f"{value} CPU{'s' * (value != 1)}"
