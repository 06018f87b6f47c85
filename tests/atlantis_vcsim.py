"""What `terraform apply` of a vmprov directory does in vCenter, done with pyVmomi against vcsim.

`clone_in_vcsim(vcsim, values)` takes the values of the directory's variables (as the local Atlantis passes them to
its `on_apply` hook) and clones the template the way the vsphere provider does: clone powered off into the folder,
pool and datastore; reconfigure CPUs, memory, annotation, the first NIC's network and the first disk's size; customize
(Linux host name and domain, fixed IPv4 or DHCP); power on; wait for the guest address of a static IP.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from pyVim.task import WaitForTask
from pyVmomi import vim

from inventory.snapshot import display_name, path_segment
from tests.vcenter_admin import admin_session

APPLY_COMPLETE = "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."


def clone_in_vcsim(vcsim, values: dict[str, Any], guest_ip_timeout: float = 10) -> str:
    """Clone the template named by `values["template_uuid"]` as the vsphere provider would; returns Terraform's
    apply output. Raises LookupError / RuntimeError (a failed apply) when something is missing or vcsim refuses."""
    with admin_session(vcsim) as si:
        content = si.RetrieveContent()
        template = content.searchIndex.FindByUuid(None, values["template_uuid"], True)
        if template is None or not template.config.template:
            raise LookupError(f"no template with UUID {values['template_uuid']}")
        datacenter = template.parent
        while not isinstance(datacenter, vim.Datacenter):
            datacenter = datacenter.parent
        folder = _folder(datacenter.vmFolder, values.get("folder") or "")
        stub = si._stub
        relocate = vim.vm.RelocateSpec(
            pool=vim.ResourcePool(values["resource_pool_id"], stub),
            datastore=vim.Datastore(values["datastore_id"], stub),
        )
        clone_spec = vim.vm.CloneSpec(location=relocate, powerOn=False, template=False)
        vm = _wait(template.CloneVM_Task(folder=folder, name=values["vm_name"], spec=clone_spec))

        devices = vm.config.hardware.device
        nics = [device for device in devices if isinstance(device, vim.vm.device.VirtualEthernetCard)]
        changes = []
        if nics and values.get("network_id"):
            changes.append(_network_change(stub, nics[0], values["network_id"]))
        disks = [device for device in devices if isinstance(device, vim.vm.device.VirtualDisk)]
        wanted = (values.get("disks") or [{}])[0].get("size")
        if disks and wanted and wanted * 1024 * 1024 > disks[0].capacityInKB:
            disks[0].capacityInKB = wanted * 1024 * 1024
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disks[0]))
        config = vim.vm.ConfigSpec(
            numCPUs=int(values["num_cpus"]),
            memoryMB=int(values["memory_mb"]),
            annotation=values.get("annotation") or "",
            deviceChange=changes,
        )
        _wait(vm.ReconfigVM_Task(spec=config))
        _wait(vm.CustomizeVM_Task(spec=customization_spec(values, len(nics))))
        _wait(vm.PowerOnVM_Task())
        if values.get("ipv4_address"):
            _wait_for_guest_ip(vm, values["ipv4_address"], guest_ip_timeout)
        uuid = vm.config.uuid
    return (
        "vsphere_virtual_machine.vm: Creating...\n"
        f"vsphere_virtual_machine.vm: Creation complete after 1s [id={uuid}]\n\n"
        f"{APPLY_COMPLETE}\n"
    )


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


def _folder(root: vim.Folder, path: str) -> vim.Folder:
    """The folder at `path` under the datacenter's vm folder; segments escape `/` as %2f (vcsim returns raw
    names, a real vCenter escaped ones: both compare equal once escaped)."""
    folder = root
    for segment in [part for part in path.split("/") if part]:
        children = [child for child in folder.childEntity if isinstance(child, vim.Folder)]
        matches = [child for child in children if path_segment(display_name(child.name)) == segment]
        if len(matches) != 1:
            raise LookupError(f"folder {path!r} not found ({segment!r} under {folder.name!r})")
        folder = matches[0]
    return folder


def _network_change(stub, nic, network_id: str) -> vim.vm.device.VirtualDeviceSpec:
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


def _wait(task):
    try:
        WaitForTask(task)
    except vim.fault.VimFault as fault:
        raise RuntimeError(f"{type(fault).__name__}: {fault.msg or fault}") from None
    except Exception as error:  # vmodl faults (InvalidArgument, ManagedObjectNotFound, ...)
        raise RuntimeError(f"{type(error).__name__}: {getattr(error, 'msg', '') or error}") from None
    return task.info.result


def _wait_for_guest_ip(vm, address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vm.guest.ipAddress == address:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the guest never reported {address} (it reports {vm.guest.ipAddress!r})")
