"""All vCenter I/O: the connection settings, one session per refresh, one PropertyCollector pass per scope.

Nothing else in vmprov imports pyVmomi. A refresh opens a session (`session()`),
collects a scope (`collect()`) and gets back a `Snapshot` of plain dicts keyed by
managed object id, ready to be stored as JSON. What vCenter answers is turned into
plain `Entity` records here, at the edge; `inventory.builder` makes the snapshot.

Round trips are constant whatever the inventory size: RetrieveServiceContent,
CreateContainerView, RetrievePropertiesEx (+ one ContinueRetrievePropertiesEx
per further page), DestroyView, and one more RetrievePropertiesEx (+ pages) for
the templates' hardware. Attribute access on managed objects (one call each) is
never used.
"""

from __future__ import annotations

import functools
import http.client
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from pyVim import connect
from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from inventory.builder import Entity, build_snapshot
from inventory.builder.hardware import template_hardware
from inventory.snapshot import Scope, Snapshot, VCenterError, VCenterObjectNotFound

logger = logging.getLogger(__name__)

# vSphere 6.5, the oldest API with DistributedVirtualPortgroup config.uplink.
# A fixed version lets us skip pyVmomi's version probe, whose HTTPS request has
# no timeout and hangs forever against a hung vCenter.
API_VERSION = "vim.version.version11"

PropertyCollector = vmodl.query.PropertyCollector


# --- Settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VCenterConfig:
    """How to reach vCenter: the VSPHERE_* settings, unless a caller (a test, the benchmark) brings its own."""

    server: str
    user: str
    password: str
    allow_unverified_ssl: bool = False
    timeout: float = 20.0
    page_size: int = 500

    @classmethod
    def from_settings(cls) -> VCenterConfig:
        """The VSPHERE_* settings, read once (again after a test overrides one of them)."""
        return _config_from_settings()

    def __repr__(self) -> str:  # never show the password
        return f"VCenterConfig(server={self.server!r}, user={self.user!r})"

    def host_and_port(self) -> tuple[str, int]:
        if not self.server:
            raise VCenterError("VSPHERE_SERVER is not set: vmprov does not know which vCenter to read")
        return _host_and_port(self.server)


def _host_and_port(server: str) -> tuple[str, int]:
    parts = urlsplit(server if "//" in server else f"//{server}")
    try:
        port = parts.port or 443
    except ValueError:
        raise VCenterError(f"VSPHERE_SERVER {server!r} has an invalid port") from None
    if not parts.hostname:
        raise VCenterError(f"VSPHERE_SERVER {server!r} names no host")
    return parts.hostname, port


@functools.cache
def _config_from_settings() -> VCenterConfig:
    return VCenterConfig(
        server=settings.VSPHERE_SERVER,
        user=settings.VSPHERE_USER,
        password=settings.VSPHERE_PASSWORD,
        allow_unverified_ssl=settings.VSPHERE_ALLOW_UNVERIFIED_SSL,
        timeout=settings.VSPHERE_TIMEOUT,
        page_size=settings.VSPHERE_PAGE_SIZE,
    )


@receiver(setting_changed)
def _forget_config(setting: str, **kwargs: Any) -> None:
    if setting.startswith("VSPHERE_"):
        _config_from_settings.cache_clear()


def settings_problems() -> list[str]:
    """What is wrong with the VSPHERE_* settings, for a system check; never raises.

    An empty VSPHERE_SERVER is not a problem: vmprov runs without a vCenter (a demo, or not set up yet) and every
    refresh then fails saying so. Once a server is set, these are: a server that names no host or has an invalid
    port, an empty user or password, a timeout that is not a positive number of seconds, a page size that is not a
    positive whole number, and VSPHERE_ALLOW_UNVERIFIED_SSL that is not true or false.
    """
    problems = []
    server = getattr(settings, "VSPHERE_SERVER", "")
    if not isinstance(server, str):
        return [f"VSPHERE_SERVER must be a host name or URL, not {type(server).__name__}"]
    if server:
        try:
            _host_and_port(server)
        except VCenterError as error:
            problems.append(str(error))
        for name in ("VSPHERE_USER", "VSPHERE_PASSWORD"):
            value = getattr(settings, name, "")
            if not isinstance(value, str) or not value:
                problems.append(f"{name} is empty: vCenter {server} needs it to log in")
    timeout = getattr(settings, "VSPHERE_TIMEOUT", None)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        problems.append(f"VSPHERE_TIMEOUT must be a positive number of seconds, not {timeout!r}")
    page_size = getattr(settings, "VSPHERE_PAGE_SIZE", None)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        problems.append(f"VSPHERE_PAGE_SIZE must be a positive whole number of objects, not {page_size!r}")
    if not isinstance(getattr(settings, "VSPHERE_ALLOW_UNVERIFIED_SSL", None), bool):
        problems.append("VSPHERE_ALLOW_UNVERIFIED_SSL must be true or false")
    return problems


# --- Session -----------------------------------------------------------------------------------


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
    """A vCenter fault or a network error in a few words for people."""
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
        "config.cpuHotAddEnabled",
        "config.cpuHotRemoveEnabled",
        "config.memoryHotAddEnabled",
        "datastore",
        "runtime.host",
        "runtime.powerState",
        "guest.ipAddress",
        "guest.net",
        "guest.hostName",
    ],
}
# Read for templates only, in a second pass: device lists are large and most VMs are not templates. (Measured on
# vcsim, 2,000 VMs of 13 devices each: 2.2-2.7 s without their devices, 8.8-12.2 s with them; so a VM's disks are
# read for that one VM when needed, by `machine_hardware`.)
_TEMPLATE_PROPERTIES = ["config.hardware.device", "config.firmware"]


# Kept as vCenter's objects: builder.hardware reads the devices by attribute.
_DEVICE_PROPERTIES = {"config.hardware.device"}


def _plain(name: str, value: Any) -> Any:
    """A property value as the builder takes it: a managed object becomes its id, a list a list, vCenter's
    strings and enums plain strings; tags become their keys and a guest's NICs their addresses."""
    if name in _DEVICE_PROPERTIES:
        return list(value or [])
    if name == "tag":
        return [tag.key for tag in value or []]
    if name == "guest.net":
        return [address for nic in value or [] for address in nic.ipAddress or []]
    if isinstance(value, ManagedObject):
        return value._moId
    if isinstance(value, list):
        return [_plain(name, item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def _kind(obj: Any) -> str:
    return type(obj).__name__.rsplit(".", 1)[-1]


def retrieve(session: Session, spec: Any) -> Iterator[Entity]:
    """RetrievePropertiesEx, then ContinueRetrievePropertiesEx while vCenter hands out page tokens."""
    collector = session.content.propertyCollector
    result = collector.RetrievePropertiesEx([spec], PropertyCollector.RetrieveOptions(maxObjects=session.page_size))
    while result is not None:
        for content in result.objects or []:
            props = {prop.name: _plain(prop.name, prop.val) for prop in content.propSet or []}
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

    return build_snapshot(scope, entities)


# One VM read now (not from the cache): its size with its disks, and what decides whether a resize restarts it.
_MACHINE_PROPERTIES = [
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.cpuHotAddEnabled",
    "config.cpuHotRemoveEnabled",
    "config.memoryHotAddEnabled",
    "runtime.powerState",
]


def machine_hardware(vm_id: str) -> dict[str, Any]:
    """One VM's CPUs, memory, disks, hot add flags and power state as vCenter reports them now (one session, one
    round trip): delivery compares them with what a request asked for after an apply, and works out whether a
    resize restarts the guest. Its devices are read here, for one VM, never in a collection (see `collect`)."""
    with session() as current:
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=vim.VirtualMachine(vm_id, current.stub), skip=False)],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=_MACHINE_PROPERTIES)],
        )
        try:
            found = list(retrieve(current, spec))
        except vmodl.fault.ManagedObjectNotFound:
            raise VCenterObjectNotFound(f"vCenter has no virtual machine {vm_id}") from None
    if not found:
        raise VCenterObjectNotFound(f"vCenter has no virtual machine {vm_id}")
    props = found[0].props
    return {
        "num_cpus": props.get("config.hardware.numCPU"),
        "memory_mb": props.get("config.hardware.memoryMB"),
        "disks": template_hardware(props.get("config.hardware.device"))["disks"],
        "cpu_hot_add_enabled": bool(props.get("config.cpuHotAddEnabled")),
        "cpu_hot_remove_enabled": bool(props.get("config.cpuHotRemoveEnabled")),
        "memory_hot_add_enabled": bool(props.get("config.memoryHotAddEnabled")),
        "power_state": str(props.get("runtime.powerState") or ""),
    }
