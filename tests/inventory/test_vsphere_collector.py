"""The collector against vcsim: correct data, awkward names, scopes, and constant round trips."""

import json

import pytest
from pyVim.task import WaitForTask

from inventory import vsphere
from inventory.snapshot import Scope, VCenterError, VCenterObjectNotFound
from inventory.vsphere import VCenterConfig
from tests.support.vcenter_admin import admin_session, count_entities, create_pool, find, rename, vim

pytestmark = pytest.mark.vcsim


def config_for(vcsim, **overrides) -> VCenterConfig:
    values = {
        "server": vcsim.server,
        "user": vcsim.user,
        "password": vcsim.password,
        "allow_unverified_ssl": True,
        "timeout": 5,
    }
    return VCenterConfig(**{**values, **overrides})


def collect(vcsim, scope=None, **config):
    with vsphere.session(config_for(vcsim, **config)) as session:
        snapshot = vsphere.collect(session, scope or Scope.everything())
    return snapshot, session.counter


AWKWARD = {
    "datacenter": "Zürich / prod",
    "cluster": 'Cluster "blue" 1',
    "pool": "web pool\\β",
    "datastore": "datastore's ✓",
    "portgroup": "VLAN 10 / users",
    "template": "ubuntu 22.04 'golden'",
}


def test_it_reads_every_kind_of_object_with_awkward_names(vcsim_factory):
    renames = {
        "Datastore/LocalDS_0": AWKWARD["datastore"],  # both datacenters': names repeat across datacenters
        "DistributedVirtualPortgroup/DC0_DVPG0": AWKWARD["portgroup"],
    }
    vcsim = vcsim_factory(dc=2, cluster=1, pool=1, vm=2, templates=1, rename=json.dumps(renames))
    with admin_session(vcsim) as si:
        dc_id = rename(si, vim.Datacenter, "DC0", AWKWARD["datacenter"])
        cluster_id = rename(si, vim.ClusterComputeResource, "DC0_C0", AWKWARD["cluster"])
        pool_id = create_pool(find(si, vim.ResourcePool, "DC0_C0_RP1"), AWKWARD["pool"])
        dc0 = find(si, vim.Datacenter, AWKWARD["datacenter"])
        datastore_id = find(si, vim.Datastore, AWKWARD["datastore"], within=dc0)._moId
        portgroup_id = find(si, vim.dvs.DistributedVirtualPortgroup, AWKWARD["portgroup"])._moId
        template_id = rename(si, vim.VirtualMachine, "DC0_C0_RP0_VM0", AWKWARD["template"])
        # The same name in another place: a second "DC1" in its own folder.
        si.RetrieveContent().rootFolder.CreateFolder("site-b").CreateDatacenter("DC1")
        total_vms = count_entities(si, vim.VirtualMachine)

    snapshot, _ = collect(vcsim)

    names = sorted(dc["name"] for dc in snapshot.datacenters)
    assert names == sorted([AWKWARD["datacenter"], "DC1", "DC1"])
    assert len({dc["id"] for dc in snapshot.datacenters}) == 3  # keyed by id, never by name

    clusters = {c["id"]: c for c in snapshot.clusters[dc_id]}
    assert clusters[cluster_id]["name"] == AWKWARD["cluster"]
    assert len(clusters[cluster_id]["hosts"]) == 2

    resources = snapshot.resources[cluster_id]
    assert resources["cluster"] == {"id": cluster_id, "name": AWKWARD["cluster"]}
    assert resources["datacenter_id"] == dc_id
    pools = {p["id"]: p for p in resources["resource_pools"]}
    # In paths, "\" and "/" inside a name are escaped the way vCenter escapes them.
    nested = "Resources/DC0_C0_RP1/web pool%5cβ"
    assert pools[pool_id] == {"id": pool_id, "name": AWKWARD["pool"], "path": nested}
    assert {p["path"] for p in pools.values()} == {"Resources", "Resources/DC0_C0_RP1", nested}

    datastores = {d["id"]: d for d in resources["datastores"]}
    assert datastores[datastore_id]["name"] == AWKWARD["datastore"]
    assert datastores[datastore_id]["capacity"] > datastores[datastore_id]["free_space"] > 0
    assert datastores[datastore_id]["accessible"] is True
    assert datastores[datastore_id]["maintenance_mode"] == "normal"

    networks = {n["id"]: n for n in resources["networks"]}
    assert networks[portgroup_id] == {"id": portgroup_id, "name": AWKWARD["portgroup"], "type": "distributed"}
    assert sorted(n["type"] for n in networks.values()) == ["distributed", "standard"]
    assert not any("Uplinks" in n["name"] for n in networks.values()), "uplink port groups are left out"
    assert len(networks) == len(resources["networks"]), "each network once"

    templates = {t["id"]: t for t in snapshot.templates[dc_id]}
    template = templates[template_id]
    assert template["name"] == AWKWARD["template"]
    assert template["guest_id"] == "ubuntu64Guest"
    assert len(template["uuid"]) == 36
    assert template["num_cpus"] >= 1 and template["memory_mb"] >= 32
    assert template["disks"] and all(d["size_gb"] >= 1 and isinstance(d["thin"], bool) for d in template["disks"])
    assert template["nic_types"] == ["e1000"]
    assert template["datacenter_id"] == dc_id

    vms = snapshot.vms[dc_id]
    assert vms and all(vm["instance_uuid"] and vm["ip_addresses"] for vm in vms)
    assert all(vm["cluster_id"] == cluster_id for vm in vms)
    assert sum(len(v) for v in snapshot.vms.values()) + sum(len(t) for t in snapshot.templates.values()) == total_vms

    root_folders = [f for f in snapshot.folders[dc_id] if f["path"] == ""]
    assert len(root_folders) == 1


def test_vm_records_carry_the_bios_uuid_that_terraform_reports_as_the_resource_id(vcenter):
    """Delivery finds the VM Terraform created by `[id=<uuid>]`: the vsphere provider's id is config.uuid."""
    with admin_session(vcenter) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        expected = {vm._moId: (vm.config.uuid, vm.config.instanceUuid) for vm in view.view if not vm.config.template}
        view.DestroyView()

    snapshot, _ = collect(vcenter)

    vms = [vm for group in snapshot.vms.values() for vm in group]
    assert vms and {vm["id"]: (vm["uuid"], vm["instance_uuid"]) for vm in vms} == expected
    assert all(len(vm["uuid"]) == 36 and vm["uuid"] != vm["instance_uuid"] for vm in vms)
    assert len({vm["uuid"] for vm in vms}) == len(vms)


def test_round_trips_do_not_grow_with_the_inventory(vcsim_factory):
    small = vcsim_factory(dc=1, cluster=1, cluster_host=1, pool=1, vm=1)
    large = vcsim_factory(dc=3, cluster=3, cluster_host=3, pool=3, vm=4, pg=3, templates=3)

    small_snapshot, small_calls = collect(small)
    large_snapshot, large_calls = collect(large)

    assert sum(large_snapshot.counts().values()) > 10 * sum(small_snapshot.counts().values())
    assert large_calls.calls == small_calls.calls
    assert large_calls.by_method == small_calls.by_method
    assert "Fetch" not in large_calls.by_method  # no attribute walking


def test_a_datacenter_scope_reads_only_that_datacenter(vcenter):
    with admin_session(vcenter) as si:
        dc1 = find(si, vim.Datacenter, "DC1")._moId
    snapshot, _ = collect(vcenter, Scope.datacenter(dc1))
    assert [dc["id"] for dc in snapshot.datacenters] == [dc1]
    assert set(snapshot.clusters) == set(snapshot.templates) == set(snapshot.vms) == {dc1}
    assert all(r["datacenter_id"] == dc1 for r in snapshot.resources.values())


def test_a_cluster_scope_finds_its_datacenter_datastores_and_networks(vcenter):
    with admin_session(vcenter) as si:
        cluster = find(si, vim.ClusterComputeResource, "DC1_C0")._moId
        dc1 = find(si, vim.Datacenter, "DC1")._moId
    snapshot, _ = collect(vcenter, Scope.cluster(cluster))
    assert list(snapshot.resources) == [cluster]
    resources = snapshot.resources[cluster]
    assert resources["datacenter_id"] == dc1
    assert resources["datastores"] and resources["networks"] and resources["resource_pools"]
    assert [c["id"] for c in snapshot.clusters[dc1]] == [cluster]


def test_an_unknown_cluster_is_reported_as_not_found(vcenter):
    with pytest.raises(VCenterObjectNotFound):
        collect(vcenter, Scope.cluster("domain-c404"))


def test_a_wrong_password_is_a_clear_error_without_the_password(vcenter):
    with pytest.raises(VCenterError) as raised:
        collect(vcenter, password="not-the-password")
    assert "rejected the login" in str(raised.value)
    assert "not-the-password" not in str(raised.value)


def test_a_self_signed_certificate_is_refused_unless_allowed(vcenter):
    with pytest.raises(VCenterError) as raised:
        collect(vcenter, allow_unverified_ssl=False)
    assert "VSPHERE_ALLOW_UNVERIFIED_SSL" in str(raised.value)


def test_nothing_listening_is_a_clear_error(vcenter):
    from devtools.ports import free_port

    with pytest.raises(VCenterError) as raised:
        collect(vcenter, server=f"127.0.0.1:{free_port()}")
    assert "cannot reach vCenter" in str(raised.value)


def test_vm_records_carry_what_a_vm_page_shows_and_one_vm_is_read_with_its_disks(vcenter):
    """Host, cluster and datastore names, the guest's host name and the hot add flags come with every VM record;
    one VM's disks (too costly to read for every VM) come from `machine_hardware`, read now."""
    with admin_session(vcenter) as si:
        vm = find(si, vim.VirtualMachine, "DC0_C0_RP0_VM1")
        spec = vim.vm.ConfigSpec(cpuHotAddEnabled=True, memoryHotAddEnabled=True, numCPUs=2, memoryMB=2048)
        WaitForTask(vm.ReconfigVM_Task(spec=spec))
        expected = {
            "host_name": vm.runtime.host.name,
            "cluster_name": vm.runtime.host.parent.name,
            "guest_hostname": vm.guest.hostName or "",
            "datastore_names": sorted(datastore.name for datastore in vm.datastore),
        }
        vm_id = vm._moId

    snapshot, _ = collect(vcenter)

    [record] = [item for group in snapshot.vms.values() for item in group if item["id"] == vm_id]
    assert {key: record[key] for key in expected} == expected
    assert record["host_name"] and record["cluster_name"] == "DC0_C0" and record["datastore_names"]
    assert (record["cpu_hot_add_enabled"], record["cpu_hot_remove_enabled"], record["memory_hot_add_enabled"]) == (
        True,
        False,
        True,
    )
    assert (record["num_cpus"], record["memory_mb"], record["power_state"]) == (2, 2048, "poweredOn")
    hardware = vsphere.machine_hardware(vm_id)
    assert (hardware["num_cpus"], hardware["memory_mb"], hardware["power_state"]) == (2, 2048, "poweredOn")
    assert (hardware["cpu_hot_add_enabled"], hardware["memory_hot_add_enabled"]) == (True, True)
    assert hardware["disks"] and hardware["disks"][0]["size_gb"] >= 1
    with pytest.raises(VCenterObjectNotFound):
        vsphere.machine_hardware("vm-does-not-exist")
