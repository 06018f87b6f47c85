"""What the vsphere provider does in vCenter when Terraform applies a vmprov directory, done with pyVmomi against vcsim:
the vCenter effects of the Atlantis double (devtools.atlantis), kept apart from it; the demo, tests and benchmarks also
use its functions on their own.

`VCenterProvider` is the provider of the double's Terraform simulation (devtools.terraform_sim):
- create: clone the template named by the directory's values the way `vsphere_virtual_machine` does (clone powered
  off into the folder, pool and datastore; reconfigure CPUs, memory, hot add, annotation, the first NIC's network
  and the first disk's size; customize the Linux host name, domain and IPv4; power on; wait for a static address to
  show in the guest);
- read: what the VM is now (CPUs, memory, disk sizes), for the plan's refresh; None when it is gone;
- update: the provider's in-place update (`reconfigure_machine`: CPUs, memory, disk growth, annotation), shutting
  the guest down first when the change cannot be made while it runs (no hot add for more CPUs or memory, no hot
  remove for fewer CPUs, less memory, a Linux guest going above 3 GB), as the provider does;
- delete: power off and destroy (`destroy_machine`).

Only ever point this at vcsim: it moves templates for a moment (see `_clone_onto`).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyVim import connect
from pyVim.task import WaitForTask
from pyVmomi import vim

RESOURCE = "vsphere_virtual_machine.vm"
# vSphere: a Linux guest with this much memory or less must be off to get more than this.
LINUX_HOT_ADD_LIMIT_MB = 3072
_ESCAPED = re.compile(r"%(2[fF]|5[cC]|25)")
_UNESCAPED = {"2f": "/", "5c": "\\", "25": "%"}
# One clone at a time may move a template (see _clone_onto).
_placement = threading.Lock()


@contextmanager
def session(url: str) -> Iterator[vim.ServiceInstance]:
    """A session on the vCenter at `url` (https://user:password@host:port/sdk, as vcsim prints it)."""
    parts = urlsplit(url)
    si = connect.SmartConnect(
        host=parts.hostname,
        port=parts.port or 443,
        user=parts.username or "",
        pwd=parts.password or "",
        sslContext=ssl._create_unverified_context(),  # noqa: S323 - vcsim's certificate is self-signed
    )
    try:
        yield si
    finally:
        connect.Disconnect(si)


class VCenterProvider:
    """The Atlantis double's provider for `vsphere_virtual_machine`, in the vCenter at `url` (see the module). A
    failure raises (LookupError, RuntimeError), which the double reports as a failed apply. Attributes are flat
    paths (`num_cpus`, `disk[0].size`). `restarts` lists the
    UUIDs of the VMs an update had to shut down."""

    def __init__(self, url: str, guest_ip_timeout: float = 10) -> None:
        self.url = url
        self.guest_ip_timeout = guest_ip_timeout
        self.restarts: list[str] = []

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        hot_add = {
            "cpu_hot_add": bool(attributes.get("cpu_hot_add_enabled")),
            "memory_hot_add": bool(attributes.get("memory_hot_add_enabled")),
        }
        with session(self.url) as si:
            return clone_machine(si, values, self.guest_ip_timeout, **hot_add).config.uuid

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with session(self.url) as si:
            vm = find_machine(si, resource_id)
            if vm is None:
                return None
            hardware = vm.config.hardware
            current = {"num_cpus": hardware.numCPU, "memory": hardware.memoryMB}
            for index, disk in enumerate(_disks(vm)):
                current[f"disk[{index}].size"] = -(-disk.capacityInKB // (1024 * 1024))
            return current

    def update(self, resource_id: str, values: dict[str, Any], attributes: dict[str, Any], changed: list[str]) -> None:
        with session(self.url) as si:
            vm = find_machine(si, resource_id)
            if vm is None:
                raise LookupError(f"no VM with UUID {resource_id}")
            num_cpus, memory_mb = int(attributes["num_cpus"]), int(attributes["memory"])
            restart = must_power_off(vm, num_cpus, memory_mb)
            if restart:
                self.restarts.append(resource_id)
                _wait(vm.PowerOffVM_Task())
            reconfigure_machine(
                si,
                resource_id,
                num_cpus=num_cpus,
                memory_mb=memory_mb,
                disk_size_gb=attributes.get("disk[0].size"),
                annotation=attributes.get("annotation"),
            )
            if restart:
                _wait(vm.PowerOnVM_Task())

    def delete(self, resource_id: str) -> None:
        with session(self.url) as si:
            destroy_machine(si, resource_id)


def must_power_off(vm: vim.VirtualMachine, num_cpus: int, memory_mb: int) -> bool:
    """Whether the provider shuts the running guest down to give it `num_cpus` and `memory_mb`."""
    if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOn:
        return False
    config = vm.config
    cpus, memory = config.hardware.numCPU, config.hardware.memoryMB
    return (
        (num_cpus > cpus and not config.cpuHotAddEnabled)
        or (num_cpus < cpus and not config.cpuHotRemoveEnabled)
        or memory_mb < memory
        or (memory_mb > memory and not config.memoryHotAddEnabled)
        or memory <= LINUX_HOT_ADD_LIMIT_MB < memory_mb
    )


def find_machine(si: vim.ServiceInstance, uuid: str) -> vim.VirtualMachine | None:
    """The VM (not template) whose BIOS UUID is `uuid`: the provider's resource id."""
    vm = si.RetrieveContent().searchIndex.FindByUuid(None, uuid, True)
    return vm if vm is not None and not vm.config.template else None


def clone_machine(
    si: vim.ServiceInstance,
    values: dict[str, Any],
    guest_ip_timeout: float = 10,
    *,
    cpu_hot_add: bool = False,
    memory_hot_add: bool = False,
) -> vim.VirtualMachine:
    """Clone `values["template_uuid"]` into `values["resource_pool_id"]`'s cluster as the provider does."""
    content = si.RetrieveContent()
    template = content.searchIndex.FindByUuid(None, values["template_uuid"], True)
    if template is None or not template.config.template:
        raise LookupError(f"no template with UUID {values['template_uuid']}")
    datacenter = template.parent
    while not isinstance(datacenter, vim.Datacenter):
        datacenter = datacenter.parent
    stub = si._stub
    pool = vim.ResourcePool(values["resource_pool_id"], stub)
    datastore = vim.Datastore(values["datastore_id"], stub)
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool, datastore=datastore), powerOn=False)
    folder = _folder(datacenter.vmFolder, values.get("folder") or "")
    vm = _clone_onto(template, _placement_host(pool, datastore), folder, values["vm_name"], spec)

    devices = vm.config.hardware.device
    nics = [device for device in devices if isinstance(device, vim.vm.device.VirtualEthernetCard)]
    changes = []
    if nics and values.get("network_id"):
        changes.append(_network_change(stub, nics[0], values["network_id"]))
    wanted = (values.get("disks") or [{}])[0].get("size")
    changes += _disk_growth(vm, wanted)
    config = vim.vm.ConfigSpec(
        numCPUs=int(values["num_cpus"]),
        memoryMB=int(values["memory_mb"]),
        cpuHotAddEnabled=cpu_hot_add,
        memoryHotAddEnabled=memory_hot_add,
        annotation=values.get("annotation") or "",
        deviceChange=changes,
    )
    _wait(vm.ReconfigVM_Task(spec=config))
    _wait(vm.CustomizeVM_Task(spec=customization_spec(values, len(nics))))
    _wait(vm.PowerOnVM_Task())
    if values.get("ipv4_address"):
        _wait_for_guest_ip(vm, values["ipv4_address"], guest_ip_timeout)
    return vm


def reconfigure_machine(
    si: vim.ServiceInstance,
    uuid: str,
    *,
    num_cpus: int | None = None,
    memory_mb: int | None = None,
    disk_size_gb: int | None = None,
    annotation: str | None = None,
) -> vim.VirtualMachine:
    """Change CPUs, memory, the first disk's size and the notes in place, as the provider's update does (a disk only
    grows)."""
    vm = find_machine(si, uuid)
    if vm is None:
        raise LookupError(f"no VM with UUID {uuid}")
    config = vim.vm.ConfigSpec(deviceChange=_disk_growth(vm, disk_size_gb))
    if num_cpus is not None:
        config.numCPUs = int(num_cpus)
    if memory_mb is not None:
        config.memoryMB = int(memory_mb)
    if annotation is not None:
        config.annotation = annotation
    _wait(vm.ReconfigVM_Task(spec=config))
    return vm


def destroy_machine(si: vim.ServiceInstance, uuid: str) -> None:
    """Power the VM off and delete it with its disks, as the provider's destroy does."""
    vm = find_machine(si, uuid)
    if vm is None:
        raise LookupError(f"no VM with UUID {uuid}")
    if vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff:
        _wait(vm.PowerOffVM_Task())
    _wait(vm.Destroy_Task())


def customization_spec(values: dict[str, Any], nic_count: int) -> vim.vm.customization.Specification:
    """LinuxPrep with the VM name as host name; the first NIC static (address, mask, gateway) or DHCP."""
    identity = vim.vm.customization.LinuxPrep(
        hostName=vim.vm.customization.FixedName(name=values["vm_name"]), domain=values["domain"]
    )
    adapters = []
    for index in range(max(nic_count, 1)):
        if index == 0 and values.get("ipv4_address"):
            network = ipaddress.IPv4Network(f"0.0.0.0/{values['ipv4_prefix']}")
            settings = vim.vm.customization.IPSettings(
                ip=vim.vm.customization.FixedIp(ipAddress=values["ipv4_address"]),
                subnetMask=str(network.netmask),
                gateway=[values["ipv4_gateway"]] if values.get("ipv4_gateway") else [],
                dnsServerList=list(values.get("dns_servers") or []),
            )
        else:
            settings = vim.vm.customization.IPSettings(ip=vim.vm.customization.DhcpIpGenerator())
        adapters.append(vim.vm.customization.AdapterMapping(adapter=settings))
    global_settings = vim.vm.customization.GlobalIPSettings(
        dnsServerList=list(values.get("dns_servers") or []), dnsSuffixList=[values["domain"]]
    )
    return vim.vm.customization.Specification(
        identity=identity, globalIPSettings=global_settings, nicSettingMap=adapters
    )


def _placement_host(pool: vim.ResourcePool, datastore: vim.Datastore) -> vim.HostSystem:
    """The host DRS would start the VM on: a connected host of the pool's cluster, out of maintenance, that sees
    the datastore, with the fewest VMs."""
    hosts = [
        host
        for host in pool.owner.host
        if host.runtime.connectionState == "connected"
        and not host.runtime.inMaintenanceMode
        and datastore in host.datastore
    ]
    if not hosts:
        raise RuntimeError(f"no usable host in {pool.owner.name} for datastore {datastore.name}")
    return min(hosts, key=lambda host: (len(host.vm), host._moId))


def _clone_onto(
    template: vim.VirtualMachine, host: vim.HostSystem, folder: vim.Folder, name: str, spec: vim.vm.CloneSpec
) -> vim.VirtualMachine:
    """Clone `template` so that the VM runs on `host`.

    vcsim (govmomi 0.24) registers a clone on its source's host whatever the relocate spec says, and its RelocateVM
    changes a VM's host without moving it in the hosts' VM lists (a VM relocated afterwards would stay listed under
    the template's host, in the template's cluster). So the template itself is relocated to `host` for the time of
    the clone, then back: the clone is registered on `host` and every list stays right."""
    with _placement:
        home = template.runtime.host
        _wait(template.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=host)))
        try:
            return _wait(template.CloneVM_Task(folder=folder, name=name, spec=spec))
        finally:
            _wait(template.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=home)))


def _vcenter_segment(name: str) -> str:
    """A name as an inventory path segment (vCenter returns `/`, `\\` and `%` escaped; vcsim returns them raw)."""
    raw = _ESCAPED.sub(lambda match: _UNESCAPED[match.group(1).lower()], name)
    return raw.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


def _folder(root: vim.Folder, path: str) -> vim.Folder:
    """The folder at `path` (segments escaped as vmprov renders them) under the datacenter's VM folder."""
    folder = root
    for segment in [part for part in path.split("/") if part]:
        children = [child for child in folder.childEntity if isinstance(child, vim.Folder)]
        matches = [child for child in children if _vcenter_segment(child.name) == segment]
        if len(matches) != 1:
            raise LookupError(f"folder {path!r} not found ({segment!r} under {folder.name!r})")
        folder = matches[0]
    return folder


def _network_change(
    stub: Any, nic: vim.vm.device.VirtualEthernetCard, network_id: str
) -> vim.vm.device.VirtualDeviceSpec:
    if network_id.startswith("dvportgroup-"):
        portgroup = vim.dvs.DistributedVirtualPortgroup(network_id, stub)
        nic.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(
                portgroupKey=portgroup.key, switchUuid=portgroup.config.distributedVirtualSwitch.uuid
            )
        )
    else:
        network = vim.Network(network_id, stub)
        nic.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(network=network, deviceName=network.name)
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)


def _disks(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualDisk]:
    return [device for device in vm.config.hardware.device if isinstance(device, vim.vm.device.VirtualDisk)]


def _disk_growth(vm: vim.VirtualMachine, size_gb: int | None) -> list[vim.vm.device.VirtualDeviceSpec]:
    disks = _disks(vm)
    if not disks or not size_gb or size_gb * 1024 * 1024 <= disks[0].capacityInKB:
        return []
    disks[0].capacityInKB = size_gb * 1024 * 1024
    return [vim.vm.device.VirtualDeviceSpec(operation="edit", device=disks[0])]


def _wait(task: vim.Task) -> Any:
    try:
        WaitForTask(task)
    except vim.fault.VimFault as fault:
        raise RuntimeError(f"{type(fault).__name__}: {fault.msg or fault}") from None
    except Exception as error:  # vmodl faults (InvalidArgument, ManagedObjectNotFound, ...)
        raise RuntimeError(f"{type(error).__name__}: {getattr(error, 'msg', '') or error}") from None
    return task.info.result


def _wait_for_guest_ip(vm: vim.VirtualMachine, address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vm.guest.ipAddress == address:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the guest never reported {address} (it reports {vm.guest.ipAddress!r})")
