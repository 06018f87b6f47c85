"""All vCenter I/O: one session per refresh, one PropertyCollector pass per scope.

Nothing else in vmprov imports pyVmomi. A refresh opens a session (`session()`),
collects a scope (`collect()`) and gets back a `Snapshot` of plain dicts keyed by
managed object id, ready to be stored as JSON.

Round trips are constant whatever the inventory size: RetrieveServiceContent,
CreateContainerView, RetrievePropertiesEx (+ one ContinueRetrievePropertiesEx
per further page), DestroyView, and one more RetrievePropertiesEx (+ pages) for
the templates' hardware. Attribute access on managed objects (one call each) is
never used.
"""

from __future__ import annotations

import http.client
import logging
import math
import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from pyVim import connect
from pyVmomi import vim, vmodl

logger = logging.getLogger(__name__)

# vSphere 6.5, the oldest API with DistributedVirtualPortgroup config.uplink.
# A fixed version lets us skip pyVmomi's version probe, whose HTTPS request has
# no timeout and hangs forever against a hung vCenter.
API_VERSION = "vim.version.version11"

PropertyCollector = vmodl.query.PropertyCollector


class VCenterError(Exception):
    """vCenter could not be reached or answered with a fault; the message is for people."""


class VCenterObjectNotFound(VCenterError):
    """The datacenter or cluster a scoped refresh asked for does not exist (any more)."""


@dataclass(frozen=True)
class Scope:
    """What one refresh covers: everything, one datacenter or one cluster."""

    kind: str  # "all" | "datacenter" | "cluster"
    id: str = ""

    ALL = "all"
    DATACENTER = "datacenter"
    CLUSTER = "cluster"

    def __post_init__(self) -> None:
        if self.kind not in {self.ALL, self.DATACENTER, self.CLUSTER}:
            raise ValueError(f"unknown scope kind {self.kind!r}")
        if (self.kind == self.ALL) != (not self.id):
            raise ValueError("a datacenter or cluster scope needs an id; the full scope has none")

    @classmethod
    def everything(cls) -> Scope:
        return cls(cls.ALL)

    @classmethod
    def datacenter(cls, datacenter_id: str) -> Scope:
        return cls(cls.DATACENTER, datacenter_id)

    @classmethod
    def cluster(cls, cluster_id: str) -> Scope:
        return cls(cls.CLUSTER, cluster_id)

    @property
    def label(self) -> str:
        return self.kind if self.kind == self.ALL else f"{self.kind}:{self.id}"

    @classmethod
    def from_label(cls, label: str) -> Scope:
        kind, _, scope_id = label.partition(":")
        return cls(kind, scope_id)


@dataclass
class Snapshot:
    """One scope's inventory as plain data. Lists are keyed by the owner's managed object id."""

    scope: Scope
    datacenters: list[dict] = field(default_factory=list)
    clusters: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> clusters
    resources: dict[str, dict] = field(default_factory=dict)  # cluster id -> pools, datastores, networks
    templates: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> templates
    vms: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> VMs
    folders: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> VM folders
    soap_calls: int = 0

    def counts(self) -> dict[str, int]:
        def total(groups: dict[str, list[dict]]) -> int:
            return sum(len(items) for items in groups.values())

        return {
            "datacenters": len(self.datacenters),
            "clusters": total(self.clusters),
            "resource_pools": sum(len(r["resource_pools"]) for r in self.resources.values()),
            "datastores": len({d["id"] for r in self.resources.values() for d in r["datastores"]}),
            "networks": len({n["id"] for r in self.resources.values() for n in r["networks"]}),
            "folders": total(self.folders),
            "templates": total(self.templates),
            "vms": total(self.vms),
        }


# --- Names -------------------------------------------------------------------------------------

_VCENTER_ESCAPE = re.compile(r"%(2[fF]|5[cC]|25)")
_UNESCAPED = {"2f": "/", "5c": "\\", "25": "%"}


def display_name(raw: str) -> str:
    """A name as people typed it: vCenter returns `/`, `\\` and `%` as %2f, %5c and %25."""
    return _VCENTER_ESCAPE.sub(lambda m: _UNESCAPED[m.group(1).lower()], raw)


def path_segment(name: str) -> str:
    """A display name escaped for an inventory path (the form vCenter and Terraform expect)."""
    return name.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


# --- Session -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VCenterConfig:
    server: str
    user: str
    password: str
    allow_unverified_ssl: bool = False
    timeout: float = 20.0
    page_size: int = 500

    @classmethod
    def from_settings(cls) -> VCenterConfig:
        return cls(
            server=settings.VSPHERE_SERVER,
            user=settings.VSPHERE_USER,
            password=settings.VSPHERE_PASSWORD,
            allow_unverified_ssl=settings.VSPHERE_ALLOW_UNVERIFIED_SSL,
            timeout=settings.VSPHERE_TIMEOUT,
            page_size=settings.VSPHERE_PAGE_SIZE,
        )

    def __repr__(self) -> str:  # never show the password
        return f"VCenterConfig(server={self.server!r}, user={self.user!r})"

    def host_and_port(self) -> tuple[str, int]:
        if not self.server:
            raise VCenterError("VSPHERE_SERVER is not set: vmprov does not know which vCenter to read")
        parts = urlsplit(self.server if "//" in self.server else f"//{self.server}")
        try:
            port = parts.port or 443
        except ValueError:
            raise VCenterError(f"VSPHERE_SERVER {self.server!r} has an invalid port") from None
        if not parts.hostname:
            raise VCenterError(f"VSPHERE_SERVER {self.server!r} names no host")
        return parts.hostname, port


class SoapCallCounter:
    """Counts the SOAP requests a session sends (every method call and property fetch)."""

    def __init__(self) -> None:
        self.calls = 0
        self.by_method: dict[str, int] = {}

    def install(self, stub: Any) -> None:
        invoke = stub.InvokeMethod

        def counted(mo: Any, info: Any, args: Any) -> Any:
            self.calls += 1
            self.by_method[info.wsdlName] = self.by_method.get(info.wsdlName, 0) + 1
            return invoke(mo, info, args)

        stub.InvokeMethod = counted


@dataclass
class Session:
    service_instance: Any
    counter: SoapCallCounter
    page_size: int
    _content: Any = None

    @property
    def stub(self) -> Any:
        return self.service_instance._stub

    @property
    def content(self) -> Any:
        """The ServiceContent, fetched once per session (each `service_instance.content` is a call)."""
        if self._content is None:
            self._content = self.service_instance.RetrieveContent()
        return self._content


_NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


def describe_fault(error: BaseException) -> str:
    if isinstance(error, vmodl.MethodFault):
        return error.msg or type(error).__name__.rsplit(".", 1)[-1]
    return str(error) or type(error).__name__


@contextmanager
def session(config: VCenterConfig | None = None) -> Iterator[Session]:
    """One logged-in vCenter session; always logged out at the end."""
    config = config or VCenterConfig.from_settings()
    host, port = config.host_and_port()
    counter = SoapCallCounter()
    ssl_context = None if config.allow_unverified_ssl else ssl.create_default_context()
    try:
        service_instance = connect.Connect(
            host=host,
            port=port,
            user=config.user,
            pwd=config.password,
            version=API_VERSION,
            sslContext=ssl_context,
            disableSslCertValidation=config.allow_unverified_ssl,
            httpConnectionTimeout=config.timeout,
            connectionPoolTimeout=0,
        )
    except vim.fault.InvalidLogin:
        raise VCenterError(f"vCenter {config.server} rejected the login of user {config.user!r}") from None
    except (*_NETWORK_ERRORS, vmodl.MethodFault) as error:
        reason = describe_fault(error)
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            raise VCenterError(
                f"vCenter {config.server} presented a certificate that does not verify ({reason}); "
                "install its CA certificate or set VSPHERE_ALLOW_UNVERIFIED_SSL=true"
            ) from None
        raise VCenterError(f"cannot reach vCenter {config.server}: {reason}") from None
    counter.install(service_instance._stub)
    try:
        yield Session(service_instance, counter, config.page_size)
    except (*_NETWORK_ERRORS, vmodl.MethodFault) as error:
        raise VCenterError(f"vCenter {config.server} failed during the refresh: {describe_fault(error)}") from None
    finally:
        try:
            connect.Disconnect(service_instance)
        except Exception as error:  # a failed logout must not hide the real outcome
            logger.warning("vCenter logout failed: %s", describe_fault(error))


# --- Collection --------------------------------------------------------------------------------

# Only the properties the form and delivery use, per type. A spec for a base type
# (Network) also applies to its subtypes (DistributedVirtualPortgroup, OpaqueNetwork).
_PROPERTIES: dict[type, list[str]] = {
    vim.Datacenter: ["name", "parent", "vmFolder"],
    vim.Folder: ["name", "parent", "childType"],
    vim.ClusterComputeResource: ["name", "parent", "host", "datastore", "network", "resourcePool"],
    vim.HostSystem: ["name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode"],
    vim.ResourcePool: ["name", "parent", "owner"],
    vim.Datastore: [
        "name",
        "summary.capacity",
        "summary.freeSpace",
        "summary.accessible",
        "summary.maintenanceMode",
        "summary.type",
    ],
    vim.Network: ["name"],
    vim.dvs.DistributedVirtualPortgroup: ["config.uplink", "tag"],
    vim.VirtualMachine: [
        "name",
        "parent",
        "resourcePool",
        "config.template",
        "config.uuid",
        "config.instanceUuid",
        "config.guestId",
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "runtime.host",
        "runtime.powerState",
        "guest.ipAddress",
        "guest.net",
    ],
}
# Read for templates only, in a second pass: device lists are large and most VMs are not templates.
_TEMPLATE_PROPERTIES = ["config.hardware.device", "config.firmware"]


@dataclass
class Entity:
    """One managed object as the PropertyCollector returned it."""

    kind: str  # pyVmomi type name without its namespace, e.g. "ClusterComputeResource"
    id: str
    props: dict[str, Any]

    def ref(self, name: str) -> str | None:
        value = self.props.get(name)
        return value._moId if value is not None else None

    def refs(self, name: str) -> list[str]:
        return [item._moId for item in self.props.get(name) or []]


def _kind(obj: Any) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


def retrieve(session: Session, spec: Any) -> Iterator[Entity]:
    """RetrievePropertiesEx, then ContinueRetrievePropertiesEx while vCenter hands out page tokens."""
    collector = session.content.propertyCollector
    result = collector.RetrievePropertiesEx([spec], PropertyCollector.RetrieveOptions(maxObjects=session.page_size))
    while result is not None:
        for content in result.objects or []:
            props = {prop.name: prop.val for prop in content.propSet or []}
            for missing in content.missingSet or []:
                # e.g. NoPermission on one property: leave it out, as if unset.
                logger.debug("vCenter left out %s of %s: %s", missing.path, content.obj._moId, missing.fault)
            yield Entity(_kind(content.obj), content.obj._moId, props)
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(result.token)


def _traversal(name: str, of_type: type, path: str, recurse: bool = False) -> Any:
    select = [PropertyCollector.SelectionSpec(name=name)] if recurse else []
    return PropertyCollector.TraversalSpec(name=name, type=of_type, path=path, skip=False, selectSet=select)


def collect(session: Session, scope: Scope) -> Snapshot:
    """Read one scope of the inventory in a constant number of round trips."""
    stub = session.stub
    content = session.content
    if scope.kind == Scope.ALL:
        root = content.rootFolder
    elif scope.kind == Scope.DATACENTER:
        root = vim.Datacenter(scope.id, stub)
    else:
        root = vim.ClusterComputeResource(scope.id, stub)

    try:
        view = content.viewManager.CreateContainerView(root, list(_PROPERTIES), True)
    except vmodl.fault.ManagedObjectNotFound:
        raise VCenterObjectNotFound(f"vCenter has no {scope.kind} {scope.id}") from None
    try:
        object_specs = [
            PropertyCollector.ObjectSpec(
                obj=view, skip=True, selectSet=[_traversal("view", vim.view.ContainerView, "view")]
            )
        ]
        if scope.kind != Scope.ALL:
            # The scope's own object and its ancestors: they tell its datacenter.
            root_traversals = [_traversal("parent", vim.ManagedEntity, "parent", recurse=True)]
            if scope.kind == Scope.CLUSTER:
                # Datastores and networks are not below a cluster in the tree; the cluster lists them.
                root_traversals += [
                    _traversal("datastore", vim.ClusterComputeResource, "datastore"),
                    _traversal("network", vim.ClusterComputeResource, "network"),
                ]
            object_specs.append(PropertyCollector.ObjectSpec(obj=root, skip=False, selectSet=root_traversals))
        property_specs = [PropertyCollector.PropertySpec(type=t, pathSet=p) for t, p in _PROPERTIES.items()]
        try:
            entities = list(
                retrieve(session, PropertyCollector.FilterSpec(objectSet=object_specs, propSet=property_specs))
            )
        except vmodl.fault.ManagedObjectNotFound:
            raise VCenterObjectNotFound(f"vCenter has no {scope.kind} {scope.id}") from None
    finally:
        view.DestroyView()

    template_ids = [e.id for e in entities if e.kind == "VirtualMachine" and e.props.get("config.template")]
    if template_ids:
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=vim.VirtualMachine(i, stub), skip=False) for i in template_ids],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=_TEMPLATE_PROPERTIES)],
        )
        details = {e.id: e.props for e in retrieve(session, spec)}
        for entity in entities:
            entity.props.update(details.get(entity.id, {}))

    snapshot = build_snapshot(scope, entities)
    snapshot.soap_calls = session.counter.calls
    return snapshot


# --- From entities to a snapshot (pure) --------------------------------------------------------

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
_NETWORK_TYPES = {
    "Network": "standard",
    "DistributedVirtualPortgroup": "distributed",
    "OpaqueNetwork": "opaque",
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


def template_hardware(devices: Iterable[Any]) -> dict[str, Any]:
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
            backing = getattr(device, "backing", None)
            label = getattr(getattr(device, "deviceInfo", None), "label", None) or f"disk{len(disks)}"
            capacity_kb = getattr(device, "capacityInKB", 0) or 0
            unit_number = provider_unit_number(
                getattr(device, "unitNumber", None), bus, getattr(controller, "scsiCtlrUnitNumber", None)
            )
            disks.append(
                {
                    "label": label,
                    "unit_number": unit_number,
                    "size_gb": math.ceil(capacity_kb / (1024 * 1024)),
                    "thin": bool(getattr(backing, "thinProvisioned", False)),
                    "eagerly_scrub": bool(getattr(backing, "eagerlyScrub", False)),
                }
            )
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


def _guest_addresses(props: dict[str, Any]) -> list[str]:
    addresses = {props["guest.ipAddress"]} if props.get("guest.ipAddress") else set()
    for nic in props.get("guest.net") or []:
        addresses.update(address for address in (getattr(nic, "ipAddress", None) or []) if address)
    return sorted(addresses)


def _is_uplink(entity: Entity) -> bool:
    if entity.props.get("config.uplink"):
        return True
    return any(getattr(tag, "key", "") == "SYSTEM/DVS.UPLINKPG" for tag in entity.props.get("tag") or [])


def build_snapshot(scope: Scope, entities: Iterable[Entity]) -> Snapshot:
    by_id: dict[str, Entity] = {}
    for entity in entities:
        # The same object can arrive twice (a datacenter lists a network twice); merge.
        if entity.id in by_id:
            by_id[entity.id].props.update(entity.props)
        else:
            by_id[entity.id] = entity

    def of_kind(*kinds: str) -> list[Entity]:
        return sorted((e for e in by_id.values() if e.kind in kinds), key=lambda e: (name(e), e.id))

    def name(entity: Entity) -> str:
        return display_name(entity.props.get("name") or entity.id)

    def ancestor(entity_id: str | None, kinds: set[str]) -> Entity | None:
        seen = set()
        while entity_id and entity_id not in seen:
            seen.add(entity_id)
            current = by_id.get(entity_id)
            if current is None:
                return None
            if current.kind in kinds:
                return current
            entity_id = current.ref("parent")
        return None

    def datacenter_of(entity: Entity) -> str | None:
        found = ancestor(entity.ref("parent"), {"Datacenter"})
        if found is None and entity.kind == "VirtualMachine":
            # A VM in a vApp has no parent folder; its host's cluster tells the datacenter.
            host = by_id.get(entity.ref("runtime.host") or "")
            if host is not None:
                found = ancestor(host.ref("parent"), {"Datacenter"})
        return found.id if found else None

    snapshot = Snapshot(scope=scope)
    datacenter_ids = set()
    for datacenter in of_kind("Datacenter"):
        snapshot.datacenters.append({"id": datacenter.id, "name": name(datacenter)})
        datacenter_ids.add(datacenter.id)

    clusters = of_kind("ClusterComputeResource")
    for cluster in clusters:
        datacenter_id = datacenter_of(cluster)
        if datacenter_id is None:
            continue
        hosts = [by_id[h] for h in cluster.refs("host") if h in by_id]
        snapshot.clusters.setdefault(datacenter_id, []).append(
            {
                "id": cluster.id,
                "name": name(cluster),
                "datacenter_id": datacenter_id,
                "hosts": [
                    {
                        "id": h.id,
                        "name": name(h),
                        "connection_state": str(h.props.get("runtime.connectionState") or ""),
                        "maintenance_mode": bool(h.props.get("runtime.inMaintenanceMode")),
                    }
                    for h in sorted(hosts, key=name)
                ],
            }
        )
        snapshot.resources[cluster.id] = {
            "cluster": {"id": cluster.id, "name": name(cluster)},
            "datacenter_id": datacenter_id,
            "resource_pools": [],
            "datastores": [],
            "networks": [],
        }

    for pool in of_kind("ResourcePool"):
        owner = pool.ref("owner")
        if owner not in snapshot.resources:
            continue  # a standalone host's pool, or a vApp
        segments, current = [], pool
        while current is not None and current.kind in {"ResourcePool", "VirtualApp"}:
            segments.append(path_segment(name(current)))
            current = by_id.get(current.ref("parent") or "")
        snapshot.resources[owner]["resource_pools"].append(
            {"id": pool.id, "name": name(pool), "path": "/".join(reversed(segments))}
        )

    for cluster in clusters:
        if cluster.id not in snapshot.resources:
            continue
        resources = snapshot.resources[cluster.id]
        for datastore_id in dict.fromkeys(cluster.refs("datastore")):
            datastore = by_id.get(datastore_id)
            if datastore is None:
                continue
            resources["datastores"].append(
                {
                    "id": datastore.id,
                    "name": name(datastore),
                    "capacity": int(datastore.props.get("summary.capacity") or 0),
                    "free_space": int(datastore.props.get("summary.freeSpace") or 0),
                    "accessible": bool(datastore.props.get("summary.accessible")),
                    "maintenance_mode": str(datastore.props.get("summary.maintenanceMode") or "normal"),
                    "type": str(datastore.props.get("summary.type") or ""),
                }
            )
        for network_id in dict.fromkeys(cluster.refs("network")):
            network = by_id.get(network_id)
            if network is None or _is_uplink(network):
                continue
            resources["networks"].append(
                {
                    "id": network.id,
                    "name": name(network),
                    "type": _NETWORK_TYPES.get(network.kind, "standard"),
                }
            )
        resources["datastores"].sort(key=lambda d: (d["name"], d["id"]))
        resources["networks"].sort(key=lambda n: (n["name"], n["id"]))

    vm_roots = {d.id: d.ref("vmFolder") for d in of_kind("Datacenter")}
    for folder in of_kind("Folder"):
        if "VirtualMachine" not in (folder.props.get("childType") or []):
            continue
        datacenter_id = datacenter_of(folder)
        if datacenter_id is None:
            continue
        segments, current = [], folder
        while current is not None and current.kind == "Folder" and current.id != vm_roots.get(datacenter_id):
            segments.append(path_segment(name(current)))
            current = by_id.get(current.ref("parent") or "")
        snapshot.folders.setdefault(datacenter_id, []).append(
            {"id": folder.id, "name": name(folder), "path": "/".join(reversed(segments))}
        )

    cluster_of_host = {h: c.id for c in clusters for h in c.refs("host")}
    for vm in of_kind("VirtualMachine"):
        datacenter_id = datacenter_of(vm)
        if datacenter_id is None:
            continue
        host_id = vm.ref("runtime.host")
        common = {
            "id": vm.id,
            "name": name(vm),
            "datacenter_id": datacenter_id,
            "host_id": host_id,
            "cluster_id": cluster_of_host.get(host_id or ""),
            "folder_id": vm.ref("parent"),
        }
        if vm.props.get("config.template"):
            snapshot.templates.setdefault(datacenter_id, []).append(
                {
                    **common,
                    "uuid": vm.props.get("config.uuid") or "",
                    "guest_id": vm.props.get("config.guestId") or "",
                    "num_cpus": int(vm.props.get("config.hardware.numCPU") or 0),
                    "memory_mb": int(vm.props.get("config.hardware.memoryMB") or 0),
                    "firmware": vm.props.get("config.firmware") or "bios",
                    **template_hardware(vm.props.get("config.hardware.device")),
                }
            )
        else:
            snapshot.vms.setdefault(datacenter_id, []).append(
                {
                    **common,
                    # config.uuid is the vsphere provider's resource id: delivery finds the VM by it.
                    "uuid": vm.props.get("config.uuid") or "",
                    "instance_uuid": vm.props.get("config.instanceUuid") or "",
                    "power_state": str(vm.props.get("runtime.powerState") or ""),
                    "ip_addresses": _guest_addresses(vm.props),
                }
            )

    if scope.kind == Scope.ALL:
        # Every datacenter has its lists, even when empty, so "empty" is told apart from "not cached".
        for datacenter_id in datacenter_ids:
            for groups in (snapshot.clusters, snapshot.templates, snapshot.vms, snapshot.folders):
                groups.setdefault(datacenter_id, [])
    elif scope.kind == Scope.DATACENTER:
        for groups in (snapshot.clusters, snapshot.templates, snapshot.vms, snapshot.folders):
            groups.setdefault(scope.id, [])
    return snapshot
