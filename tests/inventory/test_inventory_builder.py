"""The pure snapshot builder, kind by kind, and the names it shows: no vCenter, plain `Entity` records in."""

from types import SimpleNamespace

import pytest

from inventory.builder import Entity, EntityIndex, build_snapshot, machines, placement, resources
from inventory.builder.hardware import provider_unit_number, template_hardware
from inventory.snapshot import Scope, display_name, path_segment


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("prod%2fweb", "prod/web"),
        ("C:%5cdata", "C:\\data"),
        ("50%25 off", "50% off"),
        ("%252f", "%2f"),  # an escaped "%" followed by "2f" stays literal
        ("plain name", "plain name"),
        ('ünïcödé "quoted"', 'ünïcödé "quoted"'),
    ],
)
def test_vcenter_escapes_are_undone_for_display(raw, shown):
    assert display_name(raw) == shown


def test_path_segments_escape_what_vcenter_escapes():
    assert path_segment("a/b\\c%d") == "a%2fb%5cc%25d"
    assert display_name(path_segment("a/b\\c%d")) == "a/b\\c%d"


def test_a_snapshot_is_built_from_escaped_names_and_missing_properties():
    entities = [
        Entity("Folder", "group-d1", {"name": "Datacenters"}),
        Entity("Datacenter", "datacenter-2", {"name": "site%2fa", "parent": "group-d1", "vmFolder": "group-v3"}),
        Entity(
            "Folder",
            "group-v3",
            {"name": "vm", "parent": "datacenter-2", "childType": ["Folder", "VirtualMachine"]},
        ),
        Entity("Folder", "group-v9", {"name": "web%2fapps", "parent": "group-v3", "childType": ["VirtualMachine"]}),
        Entity("Folder", "group-h4", {"name": "host", "parent": "datacenter-2", "childType": ["ComputeResource"]}),
        Entity(
            "ClusterComputeResource",
            "domain-c7",
            # "network" is missing, as with NoPermission on a real vCenter
            {"name": "c%5c1", "parent": "group-h4", "host": ["host-1"], "datastore": ["datastore-1"]},
        ),
        Entity("HostSystem", "host-1", {"name": "esx1", "parent": "domain-c7"}),
        Entity("ResourcePool", "resgroup-8", {"name": "Resources", "parent": "domain-c7", "owner": "domain-c7"}),
        Entity("Datastore", "datastore-1", {"name": "ds 1"}),  # summary.* all missing
        Entity(
            "VirtualMachine",
            "vm-1",
            {"name": "db%252", "parent": "group-v9", "runtime.host": "host-1"},  # no config at all
        ),
    ]
    snapshot = build_snapshot(Scope.everything(), entities)

    assert snapshot.datacenters == [{"id": "datacenter-2", "name": "site/a"}]
    assert snapshot.clusters["datacenter-2"][0]["name"] == "c\\1"
    resources = snapshot.resources["domain-c7"]
    assert resources["networks"] == []
    assert resources["datastores"] == [
        {
            "id": "datastore-1",
            "name": "ds 1",
            "capacity": 0,
            "free_space": 0,
            "accessible": False,
            "maintenance_mode": "normal",
            "type": "",
        }
    ]
    assert {f["path"] for f in snapshot.folders["datacenter-2"]} == {"", "web%2fapps"}
    vm = snapshot.vms["datacenter-2"][0]
    assert vm["name"] == "db%2" and vm["instance_uuid"] == "" and vm["ip_addresses"] == []
    assert vm["uuid"] == ""
    assert vm["cluster_id"] == "domain-c7"
    assert snapshot.templates == {"datacenter-2": []}


def test_template_hardware_reads_disks_nics_and_controller():
    from pyVmomi import vim

    disk = vim.vm.device.VirtualDisk(
        key=2000,
        unitNumber=0,
        capacityInKB=20 * 1024 * 1024 + 1,
        deviceInfo=vim.Description(label="Hard disk 1", summary=""),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(thinProvisioned=True, diskMode="persistent"),
    )
    devices = [vim.vm.device.ParaVirtualSCSIController(key=1000), disk, vim.vm.device.VirtualVmxnet3(key=4000)]
    hardware = template_hardware(devices)
    assert hardware == {
        "disks": [{"label": "Hard disk 1", "unit_number": 0, "size_gb": 21, "thin": True, "eagerly_scrub": False}],
        "nic_types": ["vmxnet3"],
        "scsi_type": "pvscsi",
        "scsi_controller_count": 1,
    }


def scsi_disk(label, controller_key, unit, size_gb=10):
    from pyVmomi import vim

    return vim.vm.device.VirtualDisk(
        key=2000 + controller_key + unit,
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=size_gb * 1024 * 1024,
        deviceInfo=vim.Description(label=label, summary=""),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(thinProvisioned=True, diskMode="persistent"),
    )


def test_template_hardware_numbers_disks_across_scsi_controllers_as_the_provider_does():
    """The vsphere provider's disk unit_number is bus-wide: 15 per bus, the controller's own slot (7) skipped."""
    from pyVmomi import vim

    devices = [
        # Listed out of order, as a device list may be; keys are not bus numbers.
        scsi_disk("Hard disk 4", 1001, 0, size_gb=40),
        vim.vm.device.ParaVirtualSCSIController(key=1001, busNumber=1, scsiCtlrUnitNumber=7),
        scsi_disk("Hard disk 3", 1000, 8, size_gb=30),
        scsi_disk("Hard disk 1", 1000, 0, size_gb=10),
        vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0, scsiCtlrUnitNumber=7),
        scsi_disk("Hard disk 5", 1001, 9, size_gb=50),
        scsi_disk("Hard disk 2", 1000, 1, size_gb=20),
    ]
    hardware = template_hardware(devices)
    assert [(d["label"], d["unit_number"], d["size_gb"]) for d in hardware["disks"]] == [
        ("Hard disk 1", 0, 10),
        ("Hard disk 2", 1, 20),
        ("Hard disk 3", 7, 30),  # SCSI0:8: unit 7 is the controller, so the provider counts 8 as 7
        ("Hard disk 4", 15, 40),  # SCSI1:0
        ("Hard disk 5", 23, 50),  # SCSI1:9
    ]
    assert hardware["scsi_controller_count"] == 2


def test_template_hardware_counts_controllers_up_to_the_highest_bus_with_a_disk():
    from pyVmomi import vim

    devices = [
        vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0),
        vim.vm.device.ParaVirtualSCSIController(key=1002, busNumber=2),
        vim.vm.device.ParaVirtualSCSIController(key=1003, busNumber=3),  # no disk on it: not counted
        scsi_disk("Hard disk 1", 1000, 0),
        scsi_disk("Hard disk 2", 1002, 3),
    ]
    hardware = template_hardware(devices)
    assert [d["unit_number"] for d in hardware["disks"]] == [0, 33]
    assert hardware["scsi_controller_count"] == 3


# --- Kind by kind ------------------------------------------------------------------------------


def datacenter_with_cluster(*extra: Entity, cluster_props: dict | None = None) -> EntityIndex:
    """A datacenter "DC" with cluster domain-c1 (host-1) and whatever `extra` adds."""
    return EntityIndex(
        [
            Entity("Datacenter", "datacenter-1", {"name": "DC", "vmFolder": "group-v1"}),
            Entity("Folder", "group-h1", {"name": "host", "parent": "datacenter-1"}),
            Entity("Folder", "group-v1", {"name": "vm", "parent": "datacenter-1", "childType": ["VirtualMachine"]}),
            Entity(
                "ClusterComputeResource",
                "domain-c1",
                {"name": "C1", "parent": "group-h1", "host": ["host-1"], **(cluster_props or {})},
            ),
            Entity("HostSystem", "host-1", {"name": "esx1", "parent": "domain-c1"}),
            *extra,
        ]
    )


def test_uplink_port_groups_are_not_networks_a_vm_can_join():
    index = datacenter_with_cluster(
        Entity("DistributedVirtualPortgroup", "dvportgroup-1", {"name": "VLAN 10", "config.uplink": False}),
        Entity("DistributedVirtualPortgroup", "dvportgroup-2", {"name": "DSwitch-Uplinks", "config.uplink": True}),
        # Older vCenters say so with a system tag only.
        Entity("DistributedVirtualPortgroup", "dvportgroup-3", {"name": "old uplinks", "tag": ["SYSTEM/DVS.UPLINKPG"]}),
        Entity("Network", "network-1", {"name": "VM Network"}),
        Entity("OpaqueNetwork", "network-o1", {"name": "NSX segment"}),
        cluster_props={
            "network": ["network-1", "dvportgroup-2", "dvportgroup-1", "dvportgroup-3", "network-o1", "network-1"]
        },
    )
    cluster = index.get("domain-c1")

    assert resources.networks(index, cluster) == [
        {"id": "network-o1", "name": "NSX segment", "type": "opaque"},
        {"id": "dvportgroup-1", "name": "VLAN 10", "type": "distributed"},
        {"id": "network-1", "name": "VM Network", "type": "standard"},
    ]
    assert not resources.is_uplink(index.get("network-1"))


def test_resource_pools_carry_their_path_and_only_a_clusters_own_pools_are_kept():
    index = datacenter_with_cluster(
        Entity("ResourcePool", "resgroup-1", {"name": "Resources", "parent": "domain-c1", "owner": "domain-c1"}),
        Entity("ResourcePool", "resgroup-2", {"name": "web/apps", "parent": "resgroup-1", "owner": "domain-c1"}),
        Entity("VirtualApp", "resgroup-v3", {"name": "shop", "parent": "resgroup-2", "owner": "domain-c1"}),
        Entity("ResourcePool", "resgroup-4", {"name": "in vapp", "parent": "resgroup-v3", "owner": "domain-c1"}),
        # A standalone host's pool: its owner is no cluster.
        Entity("ResourcePool", "resgroup-9", {"name": "Resources", "parent": "domain-s9", "owner": "domain-s9"}),
    )

    pools = resources.cluster_resources(index)["domain-c1"]["resource_pools"]

    assert [(p["id"], p["path"]) for p in pools] == [
        ("resgroup-1", "Resources"),
        ("resgroup-4", "Resources/web%2fapps/shop/in vapp"),  # a vApp is in the path, not in the list
        ("resgroup-2", "Resources/web%2fapps"),
    ]
    assert set(resources.cluster_resources(index)) == {"domain-c1"}


def test_datastores_are_listed_once_by_name_with_their_summary():
    index = datacenter_with_cluster(
        Entity(
            "Datastore",
            "datastore-2",
            {
                "name": "b",
                "summary.capacity": 100,
                "summary.freeSpace": 40,
                "summary.accessible": True,
                "summary.maintenanceMode": "inMaintenance",
                "summary.type": "NFS",
            },
        ),
        Entity("Datastore", "datastore-1", {"name": "a"}),
        cluster_props={"datastore": ["datastore-2", "datastore-1", "datastore-2", "datastore-gone"]},
    )

    found = resources.datastores(index, index.get("domain-c1"))

    assert [d["id"] for d in found] == ["datastore-1", "datastore-2"]
    assert found[1] == {
        "id": "datastore-2",
        "name": "b",
        "capacity": 100,
        "free_space": 40,
        "accessible": True,
        "maintenance_mode": "inMaintenance",
        "type": "NFS",
    }


def test_clusters_list_their_hosts_state_and_clusters_outside_a_datacenter_are_left_out():
    index = datacenter_with_cluster(
        Entity("ClusterComputeResource", "domain-c2", {"name": "orphan", "parent": "group-gone"}),
    )
    index.get("host-1").props.update({"runtime.connectionState": "connected", "runtime.inMaintenanceMode": True})

    assert placement.clusters(index) == {
        "datacenter-1": [
            {
                "id": "domain-c1",
                "name": "C1",
                "datacenter_id": "datacenter-1",
                "hosts": [{"id": "host-1", "name": "esx1", "connection_state": "connected", "maintenance_mode": True}],
            }
        ]
    }


def test_vm_folders_have_paths_below_the_datacenters_vm_folder_and_host_folders_are_not_listed():
    index = datacenter_with_cluster(
        Entity("Folder", "group-v2", {"name": "web", "parent": "group-v1", "childType": ["Folder", "VirtualMachine"]}),
        Entity("Folder", "group-v3", {"name": "a%2fb", "parent": "group-v2", "childType": ["VirtualMachine"]}),
    )

    assert placement.folders(index) == {
        "datacenter-1": [
            {"id": "group-v3", "name": "a/b", "path": "web/a%2fb"},
            {"id": "group-v1", "name": "vm", "path": ""},
            {"id": "group-v2", "name": "web", "path": "web"},
        ]
    }


def test_a_vm_in_a_vapp_finds_its_datacenter_and_cluster_through_its_host():
    index = datacenter_with_cluster(
        # A vApp's VM has no parent folder.
        Entity("VirtualMachine", "vm-7", {"name": "in-vapp", "runtime.host": "host-1", "config.uuid": "U-1"}),
        Entity("VirtualMachine", "vm-8", {"name": "nowhere"}),  # no folder, no host: no datacenter
    )

    assert machines.vms(index) == {
        "datacenter-1": [
            {
                "id": "vm-7",
                "name": "in-vapp",
                "datacenter_id": "datacenter-1",
                "host_id": "host-1",
                "cluster_id": "domain-c1",
                "folder_id": None,
                "host_name": "esx1",
                "cluster_name": "C1",
                "uuid": "U-1",
                "instance_uuid": "",
                "power_state": "",
                "num_cpus": None,
                "memory_mb": None,
                "cpu_hot_add_enabled": False,
                "cpu_hot_remove_enabled": False,
                "memory_hot_add_enabled": False,
                "guest_hostname": "",
                "ip_addresses": [],
                "datastore_ids": [],
                "datastore_names": [],
            }
        ]
    }


def test_a_vm_record_names_its_host_cluster_and_datastores_and_carries_its_hot_add_flags():
    index = datacenter_with_cluster(
        Entity("Datastore", "datastore-1", {"name": "ssd%2f1"}),
        Entity(
            "VirtualMachine",
            "vm-9",
            {
                "name": "web01",
                "parent": "group-v1",
                "runtime.host": "host-1",
                "runtime.powerState": "poweredOn",
                "config.hardware.numCPU": 2,
                "config.hardware.memoryMB": 2048,
                "config.cpuHotAddEnabled": True,
                "config.memoryHotAddEnabled": True,
                "guest.hostName": "web01.example.com",
                # A datastore the collection did not bring is named by nothing: left out of the names.
                "datastore": ["datastore-1", "datastore-gone"],
            },
        ),
    )
    [vm] = machines.vms(index)["datacenter-1"]
    assert (vm["host_name"], vm["cluster_name"], vm["guest_hostname"]) == ("esx1", "C1", "web01.example.com")
    assert (vm["num_cpus"], vm["memory_mb"], vm["power_state"]) == (2, 2048, "poweredOn")
    assert (vm["cpu_hot_add_enabled"], vm["cpu_hot_remove_enabled"], vm["memory_hot_add_enabled"]) == (
        True,
        False,
        True,
    )
    assert (vm["datastore_ids"], vm["datastore_names"]) == (["datastore-1", "datastore-gone"], ["ssd/1"])


def test_guest_addresses_join_the_primary_address_and_every_nics():
    props = {"guest.ipAddress": "10.0.0.5", "guest.net": ["10.0.0.5", "fe80::1", "", "10.0.1.5"]}
    assert machines.guest_addresses(props) == ["10.0.0.5", "10.0.1.5", "fe80::1"]
    assert machines.guest_addresses({}) == []


class VirtualDisk(SimpleNamespace):
    """A device is told by its class name: the builder needs no pyVmomi object."""


class VirtualE1000e(SimpleNamespace):
    pass


def test_templates_carry_their_hardware_and_are_not_vms():
    disk = VirtualDisk(unitNumber=0, capacityInKB=1024 * 1024, deviceInfo=None, backing=None)
    index = datacenter_with_cluster(
        Entity(
            "VirtualMachine",
            "vm-9",
            {
                "name": "golden",
                "parent": "group-v1",
                "runtime.host": "host-1",
                "config.template": True,
                "config.guestId": "ubuntu64Guest",
                "config.hardware.numCPU": 2,
                "config.hardware.memoryMB": 2048,
                "config.hardware.device": [disk, VirtualE1000e()],
            },
        ),
    )

    assert machines.vms(index) == {}
    template = machines.templates(index)["datacenter-1"][0]
    assert (
        template["name"] == "golden" and template["cluster_id"] == "domain-c1" and template["folder_id"] == "group-v1"
    )
    assert (template["guest_id"], template["num_cpus"], template["memory_mb"], template["firmware"]) == (
        "ubuntu64Guest",
        2,
        2048,
        "bios",
    )
    assert template["disks"] == [
        {"label": "disk0", "unit_number": 0, "size_gb": 1, "thin": False, "eagerly_scrub": False}
    ]
    assert (template["nic_types"], template["scsi_type"], template["scsi_controller_count"]) == (
        ["e1000e"],
        "pvscsi",
        1,
    )


def test_an_object_listed_twice_is_merged():
    index = EntityIndex(
        [Entity("Network", "network-1", {"name": "VM Network"}), Entity("Network", "network-1", {"tag": []})]
    )
    assert index.get("network-1").props == {"name": "VM Network", "tag": []}


@pytest.mark.parametrize(
    ("scope", "lists"),
    [
        (Scope.everything(), {}),
        (Scope.datacenter("datacenter-9"), {"datacenter-9": []}),
        (Scope.cluster("domain-c9"), {}),
    ],
)
def test_a_datacenter_in_scope_has_every_list_even_when_empty(scope, lists):
    snapshot = build_snapshot(scope, [])
    assert snapshot.clusters == snapshot.templates == snapshot.vms == snapshot.folders == lists
    assert snapshot.datacenters == [] and snapshot.resources == {}


@pytest.mark.parametrize(
    ("scsi_unit", "bus", "slot", "unit_number"),
    [
        (0, 0, None, 0),
        (6, 0, None, 6),
        (8, 0, None, 7),
        (0, 1, None, 15),
        (9, 1, None, 23),
        (3, 0, 2, 2),
        (None, 0, None, None),
    ],
)
def test_provider_unit_numbers_skip_the_controllers_slot_and_count_15_per_bus(scsi_unit, bus, slot, unit_number):
    assert provider_unit_number(scsi_unit, bus, slot) == unit_number
