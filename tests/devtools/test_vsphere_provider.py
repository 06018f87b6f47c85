"""The Atlantis double's vCenter effects (devtools.vsphere_provider) against vcsim: a clone lands where the request
chose, customized and powered on; a VM is read back, resized in place (shut down first only when the provider would)
and destroyed, as the vsphere provider does."""

import pytest

from devtools.vsphere_provider import (
    VCenterProvider,
    clone_machine,
    destroy_machine,
    find_machine,
    reconfigure_machine,
    session,
)
from tests.support.vcenter_admin import find, vim

pytestmark = pytest.mark.vcsim


def every(si, vim_type) -> list:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim_type], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def values_for(si, cluster_name: str, **changes) -> dict:
    """A vmprov directory's values for a VM in `cluster_name`, cloned from the datacenter's template."""
    template = next(vm for vm in every(si, vim.VirtualMachine) if vm.config.template)
    cluster = find(si, vim.ClusterComputeResource, cluster_name)
    values = {
        "vm_name": "web01",
        "template_uuid": template.config.uuid,
        "resource_pool_id": cluster.resourcePool._moId,
        "datastore_id": cluster.datastore[0]._moId,
        "network_id": find(si, vim.DistributedVirtualPortgroup, "DC0_DVPG0")._moId,
        "folder": "",
        "num_cpus": 3,
        "memory_mb": 3072,
        "disks": [{"size": 30, "unit_number": 0, "thin_provisioned": True, "eagerly_scrub": False}],
        "domain": "example.com",
        "annotation": "requested by alice",
        "ipv4_address": None,
        "ipv4_prefix": None,
        "ipv4_gateway": None,
        "dns_servers": [],
    }
    return values | changes


def disk_kb(vm) -> int:
    return next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)).capacityInKB


def test_a_clone_is_customized_powered_on_and_reported_as_terraform_does(vcsim_factory):
    vcsim = vcsim_factory(templates=1, folder=1)
    with session(vcsim.url) as si:
        static = values_for(si, "DC0_C0", vm_name="web-static", folder="F0", ipv4_address="10.20.30.40")
        static |= {"ipv4_prefix": 24, "ipv4_gateway": "10.20.30.1", "dns_servers": ["10.20.0.53"]}
        dhcp = values_for(si, "DC0_C0", vm_name="web-dhcp")
    uuid = VCenterProvider(vcsim.url).create(None, static, {"cpu_hot_add_enabled": True})
    with session(vcsim.url) as si:
        clone_machine(si, dhcp)
        vm = find(si, vim.VirtualMachine, "web-static")
        assert vm.config.uuid == uuid, "the provider's resource id is the VM's BIOS UUID"
        assert (vm.config.cpuHotAddEnabled, vm.config.memoryHotAddEnabled) == (True, False)
        assert (vm.runtime.powerState, vm.guest.ipAddress, vm.guest.hostName) == (
            "poweredOn",
            "10.20.30.40",
            "web-static",
        )
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, vm.parent.name) == (3, 3072, "F0")
        assert (vm.resourcePool._moId, [n.name for n in vm.network]) == (static["resource_pool_id"], ["DC0_DVPG0"])
        assert vm.config.annotation == "requested by alice"
        assert disk_kb(vm) == 30 * 1024 * 1024
        other = find(si, vim.VirtualMachine, "web-dhcp")
        assert (other.runtime.powerState, other.parent.name, other.guest.hostName) == ("poweredOn", "vm", "web-dhcp")
        # vmprov renders a folder path with `/` in a name escaped, as vCenter writes it.
        find(si, vim.Datacenter, "DC0").vmFolder.CreateFolder("Team A").CreateFolder("db/prod")
        nested = clone_machine(si, values_for(si, "DC0_C0", vm_name="db01", folder="Team A/db%2fprod"))
        assert (nested.parent.name, nested.parent.parent.name) == ("db/prod", "Team A")
        with pytest.raises(LookupError, match="no template"):
            clone_machine(si, {**static, "template_uuid": "00000000-0000-0000-0000-000000000000"})


def test_a_clone_runs_in_the_chosen_cluster_not_the_templates(vcsim_factory):
    """DRS starts a VM on a host of its resource pool's cluster, wherever the template lives."""
    vcsim = vcsim_factory(dc=1, cluster=2)
    with session(vcsim.url) as si:
        template = next(vm for vm in every(si, vim.VirtualMachine) if vm.config.template)
        template_host = template.runtime.host
        assert template_host.parent.name == "DC0_C0"
        vm = clone_machine(si, values_for(si, "DC0_C1"))
        host = vm.runtime.host
        assert host.parent.name == "DC0_C1"
        assert vm in host.vm and vm not in template_host.vm, "the hosts' VM lists agree with the VM's host"
        assert vm.resourcePool == find(si, vim.ClusterComputeResource, "DC0_C1").resourcePool
        assert template.runtime.host == template_host, "the template is back on its host"


def test_a_vm_is_resized_in_place_and_a_disk_only_grows(vcsim_factory):
    vcsim = vcsim_factory()
    with session(vcsim.url) as si:
        uuid = clone_machine(si, values_for(si, "DC0_C0")).config.uuid
        reconfigure_machine(si, uuid, num_cpus=4, memory_mb=8192, disk_size_gb=40)
        vm = find_machine(si, uuid)
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk_kb(vm)) == (4, 8192, 40 * 1024 * 1024)
        reconfigure_machine(si, uuid, disk_size_gb=10)
        assert disk_kb(find_machine(si, uuid)) == 40 * 1024 * 1024
        with pytest.raises(LookupError, match="no VM"):
            reconfigure_machine(si, "00000000-0000-0000-0000-000000000000", num_cpus=1)


def test_a_vm_is_powered_off_and_destroyed(vcsim_factory):
    vcsim = vcsim_factory()
    with session(vcsim.url) as si:
        vm = clone_machine(si, values_for(si, "DC0_C0"))
        uuid, host = vm.config.uuid, vm.runtime.host
        destroy_machine(si, uuid)
        assert find_machine(si, uuid) is None
        assert "web01" not in [other.name for other in every(si, vim.VirtualMachine)]
        assert vm not in host.vm
        with pytest.raises(LookupError, match="no VM"):
            destroy_machine(si, uuid)


def test_the_provider_reads_resizes_in_place_and_shuts_down_only_when_it_must(vcsim_factory):
    vcsim = vcsim_factory()
    provider = VCenterProvider(vcsim.url)
    with session(vcsim.url) as si:
        values = values_for(si, "DC0_C0", num_cpus=2, memory_mb=2048)
    hot = provider.create(None, values, {"cpu_hot_add_enabled": True, "memory_hot_add_enabled": True})
    cold = provider.create(None, {**values, "vm_name": "cold01"}, {})
    assert provider.read(hot) == {"num_cpus": 2, "memory": 2048, "disk[0].size": 30}

    grown = {"num_cpus": 4, "memory": 3072, "annotation": "bigger", "disk[0].size": 40}
    provider.update(hot, values, grown, ["num_cpus", "memory"])
    assert provider.restarts == [], "hot add: the guest keeps running"
    provider.update(cold, values, grown, ["num_cpus", "memory"])
    assert provider.restarts == [cold], "no hot add: shut down, resized, started"
    provider.update(hot, values, {**grown, "memory": 4096}, ["memory"])
    assert provider.restarts == [cold, hot], "a Linux guest with 3 GB must be off to go above 3 GB"
    with session(vcsim.url) as si:
        vm = find_machine(si, hot)
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk_kb(vm)) == (4, 4096, 40 * 1024 * 1024)
        assert (vm.config.annotation, vm.runtime.powerState) == ("bigger", "poweredOn")
    provider.delete(cold)
    assert provider.read(cold) is None
