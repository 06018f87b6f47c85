"""The plain description of one VM request (`MachineSpec`, with its `TemplateSpec`) and why one cannot be cloned.

This is the rendering boundary: callers build a `MachineSpec` from whatever they store, and nothing in
`provisioning.terraform` imports models. `spec_problems()` lists, in words people can read, everything that would
keep the spec from becoming a valid clone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The vsphere provider manages 1 to 4 SCSI controllers and numbers disks across them, 15 per controller (the
# controller's own SCSI slot is already left out of the count): unit_number 0 to 15 * scsi_controller_count - 1.
MAX_SCSI_CONTROLLERS = 4
DISKS_PER_SCSI_CONTROLLER = 15


class InvalidMachineSpec(ValueError):
    """A MachineSpec that cannot become a valid clone; `problems` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class TemplateDisk:
    """One disk of the template, as the inventory reports it. `unit_number` is the vsphere provider's bus-wide
    number (bus * 15 + unit, the controller's slot skipped), not vSphere's per-controller one."""

    label: str
    size_gb: int
    thin: bool = True
    eagerly_scrub: bool = False
    unit_number: int | None = None


@dataclass(frozen=True)
class TemplateSpec:
    """The template to clone: what the clone must copy from it."""

    uuid: str
    guest_id: str
    scsi_type: str
    firmware: str
    nic_types: tuple[str, ...]
    disks: tuple[TemplateDisk, ...]
    # SCSI controllers the clone manages: the highest bus with a template disk + 1 (the inventory's count).
    scsi_controller_count: int = 1

    def __post_init__(self) -> None:
        # Accept lists and dicts (the inventory's JSON shape) but keep the spec immutable.
        object.__setattr__(self, "nic_types", tuple(self.nic_types))
        disks = tuple(disk if isinstance(disk, TemplateDisk) else TemplateDisk(**disk) for disk in self.disks)
        object.__setattr__(self, "disks", disks)

    @classmethod
    def from_inventory(cls, template: Mapping[str, Any]) -> TemplateSpec:
        """From the inventory cache's template entry (`uuid`, `guest_id`, `scsi_type`, `firmware`, ...)."""
        # Missing fields become empty strings, which spec_problems() then names. Entries cached before
        # scsi_controller_count existed had every disk numbered as if on one controller.
        return cls(
            uuid=template.get("uuid") or "",
            guest_id=template.get("guest_id") or "",
            scsi_type=template.get("scsi_type") or "",
            firmware=template.get("firmware") or "bios",
            nic_types=tuple(template.get("nic_types") or ()),
            disks=tuple(
                TemplateDisk(
                    label=disk["label"],
                    size_gb=disk["size_gb"],
                    thin=bool(disk.get("thin", True)),
                    eagerly_scrub=bool(disk.get("eagerly_scrub", False)),
                    unit_number=disk.get("unit_number"),
                )
                for disk in template.get("disks") or ()
            ),
            scsi_controller_count=template.get("scsi_controller_count", 1),
        )


@dataclass(frozen=True)
class MachineSpec:
    """Everything one VM request needs, as plain data. Empty network settings mean DHCP."""

    vm_name: str
    datacenter_id: str
    datacenter_name: str
    cluster_id: str
    cluster_name: str
    resource_pool_id: str
    datastore_id: str
    network_id: str
    # Relative to the datacenter's vm folder, "" for its root, with `/` inside a name escaped as %2f.
    folder: str
    template: TemplateSpec
    num_cpus: int
    memory_mb: int
    # Size of the first disk; the template's other disks keep their size.
    disk_size_gb: int
    domain: str
    ipv4_address: str = ""
    ipv4_prefix: int | None = None
    ipv4_gateway: str = ""
    dns_servers: tuple[str, ...] = ()
    annotation: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.template, Mapping):
            object.__setattr__(self, "template", TemplateSpec.from_inventory(self.template))
        if isinstance(self.dns_servers, str):
            raise TypeError("dns_servers is a sequence of addresses, not one string")
        object.__setattr__(self, "dns_servers", tuple(self.dns_servers))

    @property
    def dhcp(self) -> bool:
        return not self.ipv4_address


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def spec_problems(spec: MachineSpec) -> list[str]:
    """Why `spec` cannot become a valid clone (empty when it can). Callers may show these to people."""
    problems = []
    for name in ("vm_name", "datacenter_id", "resource_pool_id", "datastore_id", "network_id", "domain"):
        if not getattr(spec, name):
            problems.append(f"{name} is empty")
    template = spec.template
    for name in ("uuid", "guest_id", "scsi_type", "firmware"):
        if not getattr(template, name):
            problems.append(f"the template's {name} is empty")
    if not template.nic_types:
        problems.append("the template has no network adapter")
    if not template.disks:
        problems.append("the template has no disk")
    for name in ("num_cpus", "memory_mb", "disk_size_gb"):
        value = getattr(spec, name)
        if not _is_int(value) or value < 1:
            problems.append(f"{name} must be a whole number of at least 1, not {value!r}")
    if template.disks and _is_int(spec.disk_size_gb) and spec.disk_size_gb < template.disks[0].size_gb:
        problems.append(
            f"disk_size_gb {spec.disk_size_gb} is smaller than the template's first disk "
            f"({template.disks[0].size_gb} GB): a clone cannot shrink a disk"
        )
    problems.extend(_disk_number_problems(template))
    problems.extend(_network_problems(spec))
    return problems


def _disk_number_problems(template: TemplateSpec) -> list[str]:
    count = template.scsi_controller_count
    if not _is_int(count) or not 1 <= count <= MAX_SCSI_CONTROLLERS:
        return [f"the template's scsi_controller_count must be 1 to {MAX_SCSI_CONTROLLERS}, not {count!r}"]
    limit = count * DISKS_PER_SCSI_CONTROLLER
    problems, seen = [], set()
    for disk in template.disks:
        unit = disk.unit_number
        if unit is None:
            continue
        if not _is_int(unit) or not 0 <= unit < limit:
            controllers = f"{count} SCSI controller{'s' if count > 1 else ''}"
            problems.append(f"disk unit_number {unit!r} is outside 0 to {limit - 1} ({controllers})")
        elif unit in seen:
            problems.append(f"disk unit_number {unit} is used twice")
        seen.add(unit)
    if len(template.disks) > limit:
        problems.append(f"the template has {len(template.disks)} disks; {count} SCSI controller(s) hold {limit}")
    return problems


def _network_problems(spec: MachineSpec) -> list[str]:
    if spec.dhcp:
        if spec.ipv4_prefix is not None or spec.ipv4_gateway or spec.dns_servers:
            return ["DHCP (no ipv4_address) takes no prefix, gateway or DNS servers"]
        return []
    problems = []
    if not _is_int(spec.ipv4_prefix) or not 1 <= spec.ipv4_prefix <= 32:
        return [f"ipv4_prefix must be 1 to 32 for a static address, not {spec.ipv4_prefix!r}"]
    try:
        interface = ipaddress.IPv4Interface(f"{spec.ipv4_address}/{spec.ipv4_prefix}")
    except ValueError:
        return [f"ipv4_address {spec.ipv4_address!r} is not an IPv4 address"]
    if not spec.ipv4_gateway:
        problems.append("a static address needs ipv4_gateway")
    else:
        try:
            gateway = ipaddress.IPv4Address(spec.ipv4_gateway)
        except ValueError:
            problems.append(f"ipv4_gateway {spec.ipv4_gateway!r} is not an IPv4 address")
        else:
            # The provider requires it: the gateway must be local to the customized interface.
            if gateway not in interface.network:
                problems.append(f"ipv4_gateway {gateway} is outside {interface.network}")
    for server in spec.dns_servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            problems.append(f"DNS server {server!r} is not an IP address")
    return problems
