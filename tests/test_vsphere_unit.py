"""Pure parts of the collector: paging, names, and building a snapshot from partial results."""

import socket
import threading
import time
from types import SimpleNamespace

import pytest

from inventory import vsphere
from inventory.vsphere import Entity, Scope, VCenterConfig, VCenterError, build_snapshot, display_name


class FakeRef:
    def __init__(self, mo_id):
        self._moId = mo_id


def content(mo_id, **props):
    return SimpleNamespace(
        obj=FakeRef(mo_id), propSet=[SimpleNamespace(name=k, val=v) for k, v in props.items()], missingSet=[]
    )


class PagingCollector:
    """Hands out objects `page` at a time with tokens, as a real vCenter does."""

    def __init__(self, objects, page):
        self.pages = [objects[i : i + page] for i in range(0, len(objects), page)]
        self.calls = []

    def _page(self, index):
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return SimpleNamespace(objects=self.pages[index], token=token)

    def RetrievePropertiesEx(self, specs, options):
        self.calls.append(("RetrievePropertiesEx", options.maxObjects))
        return self._page(0)

    def ContinueRetrievePropertiesEx(self, token):
        self.calls.append(("ContinueRetrievePropertiesEx", token))
        return self._page(int(token))


def fake_session(collector, page_size):
    session = vsphere.Session(service_instance=None, counter=vsphere.SoapCallCounter(), page_size=page_size)
    session._content = SimpleNamespace(propertyCollector=collector)
    return session


def test_retrieve_follows_every_page_token():
    objects = [content(f"vm-{i}", name=f"vm {i}") for i in range(10)]
    collector = PagingCollector(objects, page=3)

    entities = list(vsphere.retrieve(fake_session(collector, 3), spec=None))

    assert [e.id for e in entities] == [f"vm-{i}" for i in range(10)]
    assert collector.calls == [
        ("RetrievePropertiesEx", 3),
        ("ContinueRetrievePropertiesEx", "1"),
        ("ContinueRetrievePropertiesEx", "2"),
        ("ContinueRetrievePropertiesEx", "3"),
    ]


def test_retrieve_makes_one_call_when_everything_fits_a_page():
    collector = PagingCollector([content("vm-1", name="a")], page=100)
    assert len(list(vsphere.retrieve(fake_session(collector, 100), spec=None))) == 1
    assert len(collector.calls) == 1


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
    assert vsphere.path_segment("a/b\\c%d") == "a%2fb%5cc%25d"
    assert display_name(vsphere.path_segment("a/b\\c%d")) == "a/b\\c%d"


def ref(mo_id):
    return FakeRef(mo_id)


def test_a_snapshot_is_built_from_escaped_names_and_missing_properties():
    entities = [
        Entity("Folder", "group-d1", {"name": "Datacenters"}),
        Entity(
            "Datacenter", "datacenter-2", {"name": "site%2fa", "parent": ref("group-d1"), "vmFolder": ref("group-v3")}
        ),
        Entity(
            "Folder",
            "group-v3",
            {"name": "vm", "parent": ref("datacenter-2"), "childType": ["Folder", "VirtualMachine"]},
        ),
        Entity(
            "Folder", "group-v9", {"name": "web%2fapps", "parent": ref("group-v3"), "childType": ["VirtualMachine"]}
        ),
        Entity("Folder", "group-h4", {"name": "host", "parent": ref("datacenter-2"), "childType": ["ComputeResource"]}),
        Entity(
            "ClusterComputeResource",
            "domain-c7",
            # "network" is missing, as with NoPermission on a real vCenter
            {"name": "c%5c1", "parent": ref("group-h4"), "host": [ref("host-1")], "datastore": [ref("datastore-1")]},
        ),
        Entity("HostSystem", "host-1", {"name": "esx1", "parent": ref("domain-c7")}),
        Entity(
            "ResourcePool", "resgroup-8", {"name": "Resources", "parent": ref("domain-c7"), "owner": ref("domain-c7")}
        ),
        Entity("Datastore", "datastore-1", {"name": "ds 1"}),  # summary.* all missing
        Entity(
            "VirtualMachine",
            "vm-1",
            {"name": "db%252", "parent": ref("group-v9"), "runtime.host": ref("host-1")},  # no config at all
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
    hardware = vsphere.template_hardware(devices)
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
    hardware = vsphere.template_hardware(devices)
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
    hardware = vsphere.template_hardware(devices)
    assert [d["unit_number"] for d in hardware["disks"]] == [0, 33]
    assert hardware["scsi_controller_count"] == 3


def test_a_hung_vcenter_fails_within_the_timeout():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers
    port = server.getsockname()[1]
    config = VCenterConfig(
        server=f"127.0.0.1:{port}", user="u", password="secret-pw", allow_unverified_ssl=True, timeout=1
    )
    started = time.monotonic()
    result = {}

    def attempt():
        try:
            with vsphere.session(config):
                pass
        except VCenterError as error:
            result["error"] = error

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    server.close()
    assert not worker.is_alive(), "connecting to a hung vCenter must not hang"
    assert time.monotonic() - started < 5
    assert "cannot reach vCenter" in str(result["error"])
    assert "secret-pw" not in str(result["error"])


def test_a_missing_server_setting_says_so():
    with pytest.raises(VCenterError, match="VSPHERE_SERVER is not set"):
        VCenterConfig(server="", user="", password="").host_and_port()


def test_the_config_never_shows_the_password():
    assert "hunter2" not in repr(VCenterConfig(server="vc", user="u", password="hunter2"))
