"""A template's hardware as the Terraform clone needs it: disks (with the provider's unit numbers), NIC types and
SCSI controllers.

The one place the builder reads vCenter's own objects: `config.hardware.device` stays a list of pyVmomi device
objects, read here by attribute only (`key`, `controllerKey`, `unitNumber`, `busNumber`, ...) and told apart by
class name, so this module imports no pyVmomi and tests can hand it any objects with those attributes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

_NIC_TYPES = {
    "VirtualVmxnet3": "vmxnet3",
    "VirtualVmxnet3Vrdma": "vmxnet3vrdma",
    "VirtualVmxnet2": "vmxnet2",
    "VirtualE1000": "e1000",
    "VirtualE1000e": "e1000e",
    "VirtualPCNet32": "pcnet32",
    "VirtualSriovEthernetCard": "sriov",
}
_SCSI_TYPES = {
    "ParaVirtualSCSIController": "pvscsi",
    "VirtualLsiLogicController": "lsilogic",
    "VirtualLsiLogicSASController": "lsilogic-sas",
    "VirtualBusLogicController": "buslogic",
}

# The vsphere provider numbers SCSI disks across buses, 15 per bus: each bus has 16 slots, one of them (7 unless
# the controller says otherwise) the controller's own.
_PROVIDER_UNITS_PER_BUS = 15
_SCSI_CONTROLLER_SLOT = 7


def _device_kind(device: Any) -> str:
    return type(device).__name__.rsplit(".", 1)[-1]


def provider_unit_number(scsi_unit: int | None, bus: int, controller_slot: int | None = None) -> int | None:
    """The vsphere provider's `unit_number` of a disk at SCSI `bus`:`scsi_unit`, as its findControllerInfo reads a
    disk: units above the controller's own slot move down one, then 15 per bus (SCSI0:8 is 7, SCSI1:0 is 15)."""
    if scsi_unit is None:
        return None
    slot = _SCSI_CONTROLLER_SLOT if controller_slot is None else controller_slot
    return bus * _PROVIDER_UNITS_PER_BUS + (scsi_unit - 1 if scsi_unit > slot else scsi_unit)


def template_hardware(devices: Iterable[Any] | None) -> dict[str, Any]:
    """Disks, NIC types and SCSI controllers of a template, as the Terraform clone needs them.

    A disk's `unit_number` is the provider's bus-wide number (see provider_unit_number), found through the disk's
    `controllerKey`; `scsi_controller_count` is the highest bus with a disk + 1, since the provider only looks at
    disks on buses below it. A disk whose controller is not a SCSI controller in the list counts as on bus 0.
    """
    devices = list(devices or [])
    scsi_controllers = {
        getattr(device, "key", None): device for device in devices if _device_kind(device) in _SCSI_TYPES
    }
    disks, nic_types, scsi_types, buses = [], [], [], [0]
    for device in devices:
        kind = _device_kind(device)
        if kind == "VirtualDisk":
            controller = scsi_controllers.get(getattr(device, "controllerKey", None))
            bus = int(getattr(controller, "busNumber", 0) or 0)
            buses.append(bus)
            disks.append(_disk(device, bus, controller, fallback_label=f"disk{len(disks)}"))
        elif kind in _NIC_TYPES:
            nic_types.append(_NIC_TYPES[kind])
        elif kind in _SCSI_TYPES:
            scsi_types.append(_SCSI_TYPES[kind])
    # The order the clone needs: the provider matches disk blocks to the template's disks by unit number.
    disks.sort(key=lambda d: (d["unit_number"] is None, d["unit_number"] or 0))
    return {
        "disks": disks,
        "nic_types": nic_types,
        "scsi_type": scsi_types[0] if scsi_types else "pvscsi",
        "scsi_controller_count": max(buses) + 1,
    }


def _disk(device: Any, bus: int, controller: Any, fallback_label: str) -> dict[str, Any]:
    backing = getattr(device, "backing", None)
    capacity_kb = getattr(device, "capacityInKB", 0) or 0
    return {
        "label": getattr(getattr(device, "deviceInfo", None), "label", None) or fallback_label,
        "unit_number": provider_unit_number(
            getattr(device, "unitNumber", None), bus, getattr(controller, "scsiCtlrUnitNumber", None)
        ),
        "size_gb": math.ceil(capacity_kb / (1024 * 1024)),
        "thin": bool(getattr(backing, "thinProvisioned", False)),
        "eagerly_scrub": bool(getattr(backing, "eagerlyScrub", False)),
    }
