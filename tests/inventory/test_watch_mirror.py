"""The watcher's mirror on its own: what each kind of change touches, and that lists written from updates are the
lists a full collection would write (pure: no vCenter, no Redis)."""

import json

from inventory import cache
from inventory.builder import build_snapshot
from inventory.mirror import Mirror
from inventory.snapshot import Scope
from inventory.watcher import key_changes
from tests.support.watch_data import enter, leave, modify, small_vcenter, vm


def loaded() -> Mirror:
    mirror = Mirror()
    mirror.apply(small_vcenter())
    mirror.render_everything()
    return mirror


class CacheModel:
    """The cache as the watcher's writes leave it: key -> {field: object}, and each key's `_meta` (without times)."""

    def __init__(self, mirror: Mirror):
        self.keys = {}
        self.write_everything(mirror)

    def write_everything(self, mirror: Mirror):
        self.keys = self.decoded(cache.snapshot_hashes(mirror.render_everything().everything, 0.0))

    @staticmethod
    def decoded(hashes: dict) -> dict:
        return {key: {f: json.loads(v) for f, v in fields.items() if f != cache.META} for key, fields in hashes.items()}

    def apply(self, mirror: Mirror, touched) -> list[dict]:
        rendered = mirror.render(touched)
        if rendered.everything is not None:
            self.write_everything(mirror)
            return []
        for change in key_changes(rendered, 0.0):
            if change.drop:
                self.keys.pop(change.key, None)
                continue
            fields = self.keys.setdefault(change.key, {}) if change.partial else {}
            for removed in change.removed:
                fields.pop(removed, None)
            fields.update({f: json.loads(v) for f, v in change.fields.items()})
            self.keys[change.key] = fields
        return rendered.arrived

    def matches_a_full_collection(self, mirror: Mirror) -> bool:
        full = self.decoded(cache.snapshot_hashes(build_snapshot(Scope.everything(), mirror.index.entities()), 0.0))
        return self.keys == full


def test_the_mirror_renders_what_a_full_collection_builds():
    mirror = loaded()

    assert mirror.render_everything().everything == build_snapshot(Scope.everything(), mirror.index.entities())
    assert mirror.placed == {
        "vm-100": ("datacenter-2", "vms"),
        "vm-101": ("datacenter-2", "vms"),
        "vm-102": ("datacenter-2", "templates"),
    }


def test_a_vm_that_enters_is_written_alone_and_announced():
    mirror = loaded()

    touched = mirror.apply([vm("vm-200", "web02", "host-11")])
    rendered = mirror.render(touched)

    assert touched.machines == {"vm-200"} and not touched.resources and not touched.cluster_lists
    changes = rendered.machines[("datacenter-2", "vms")]
    assert [entry["name"] for entry in changes.upserted] == ["web02"] and changes.removed == []
    assert changes.upserted[0]["cluster_id"] == "domain-c7"
    assert [entry["id"] for entry in rendered.arrived] == ["vm-200"]


def test_a_rename_is_announced_a_power_change_only_rewritten():
    mirror = loaded()

    renamed = mirror.render(mirror.apply([modify("VirtualMachine", "vm-100", name="web01-old")]))
    powered = mirror.render(mirror.apply([modify("VirtualMachine", "vm-100", runtime__powerState="poweredOff")]))

    assert renamed.machines[("datacenter-2", "vms")].upserted[0]["name"] == "web01-old"
    assert [entry["name"] for entry in renamed.arrived] == ["web01-old"]
    assert powered.machines[("datacenter-2", "vms")].upserted[0]["power_state"] == "poweredOff"
    assert powered.arrived == []


def test_a_vm_that_leaves_is_removed_from_its_list():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([leave("VirtualMachine", "vm-100")]))

    assert rendered.machines == {("datacenter-2", "vms"): rendered.machines[("datacenter-2", "vms")]}
    assert rendered.machines[("datacenter-2", "vms")].removed == ["vm-100"]
    assert rendered.machines[("datacenter-2", "vms")].upserted == []
    assert "vm-100" not in mirror.placed and mirror.index.get("vm-100") is None


def test_a_vm_that_arrives_without_its_uuid_is_listed_then_completed():
    """A VM being cloned enters before vCenter knows its UUID (ManageIQ skipped such VMs): list it, then complete it."""
    mirror = loaded()
    partial = vm("vm-200", "web02", "host-11")
    del partial.values["config.uuid"], partial.values["config.template"]

    first = mirror.render(mirror.apply([partial]))
    second = mirror.render(mirror.apply([modify("VirtualMachine", "vm-200", config__uuid="4210-new")]))

    assert first.machines[("datacenter-2", "vms")].upserted[0]["uuid"] == ""
    assert second.machines[("datacenter-2", "vms")].upserted[0]["uuid"] == "4210-new"
    assert [entry["uuid"] for entry in second.arrived] == ["4210-new"], "the UUID delivery matches on is announced"


def test_a_vm_placed_nowhere_yet_is_listed_once_it_is():
    mirror = loaded()
    unplaced = enter("VirtualMachine", "vm-200", name="web02")

    first = mirror.render(mirror.apply([unplaced]))
    second = mirror.render(
        mirror.apply([modify("VirtualMachine", "vm-200", parent="group-v3", runtime__host="host-10")])
    )

    assert first.machines == {} and first.arrived == []
    assert [entry["id"] for entry in second.machines[("datacenter-2", "vms")].upserted] == ["vm-200"]


def test_properties_vcenter_stops_reporting_are_unset():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([modify("VirtualMachine", "vm-100", removed=("runtime.powerState",))]))

    assert rendered.machines[("datacenter-2", "vms")].upserted[0]["power_state"] == ""


def test_a_vm_marked_as_template_moves_to_the_templates_and_needs_its_devices():
    mirror = loaded()

    touched = mirror.apply([modify("VirtualMachine", "vm-100", config__template=True)])

    assert mirror.templates_without_details() == ["vm-100"]
    mirror.add_details("vm-100", {"config.hardware.device": [], "config.firmware": "bios"})
    rendered = mirror.render(touched)
    assert rendered.machines[("datacenter-2", "vms")].removed == ["vm-100"]
    assert rendered.machines[("datacenter-2", "templates")].upserted[0]["id"] == "vm-100"
    assert mirror.templates_without_details() == []


def test_a_renamed_cluster_rewrites_its_datacenters_cluster_list_and_its_resources_not_its_vms():
    mirror = loaded()

    touched = mirror.apply([modify("ClusterComputeResource", "domain-c7", name="C0-renamed")])
    rendered = mirror.render(touched)

    assert touched.machines == set()
    assert {c["id"]: c["name"] for c in rendered.cluster_lists["datacenter-2"]} == {
        "domain-c7": "C0-renamed",
        "domain-c70": "C1",
    }
    assert set(rendered.resources) == {"domain-c7"}
    assert rendered.resources["domain-c7"]["cluster"] == {"id": "domain-c7", "name": "C0-renamed"}


def test_a_datastore_change_rewrites_the_resources_of_every_cluster_that_lists_it():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([modify("Datastore", "datastore-20", summary__freeSpace=10)]))

    assert set(rendered.resources) == {"domain-c7", "domain-c70"}
    assert rendered.resources["domain-c70"]["datastores"][0]["free_space"] == 10
    assert rendered.machines == {} and rendered.cluster_lists == {}


def test_a_host_moved_to_another_cluster_takes_its_vms_placement_along():
    mirror = loaded()

    touched = mirror.apply(
        [
            modify("ClusterComputeResource", "domain-c7", host=["host-10"]),
            modify("ClusterComputeResource", "domain-c70", host=["host-11", "host-12"]),
            modify("HostSystem", "host-11", parent="domain-c70"),
        ]
    )
    rendered = mirror.render(touched)

    assert {"vm-102"} <= touched.machines  # the template on host-11
    template = rendered.machines[("datacenter-2", "templates")].upserted[0]
    assert (template["id"], template["cluster_id"]) == ("vm-102", "domain-c70")
    assert {h["id"] for c in rendered.cluster_lists["datacenter-2"] if c["id"] == "domain-c70" for h in c["hosts"]} == {
        "host-11",
        "host-12",
    }


def test_a_renamed_folder_rewrites_the_paths_below_it():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([modify("Folder", "group-v9", name="web / prod")]))

    assert {f["id"]: f["path"] for f in rendered.folder_lists["datacenter-2"]} == {
        "group-v3": "",
        "group-v9": "web %2f prod",
    }


def test_a_renamed_pool_rewrites_its_clusters_resources():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([modify("ResourcePool", "resgroup-8", name="Root")]))

    assert {p["id"]: p["path"] for p in rendered.resources["domain-c7"]["resource_pools"]} == {
        "resgroup-8": "Root",
        "resgroup-81": "Root/web",
    }


def test_a_datacenter_rename_rewrites_the_datacenter_list_a_new_datacenter_everything():
    mirror = loaded()

    renamed = mirror.render(mirror.apply([modify("Datacenter", "datacenter-2", name="Zürich")]))
    new = mirror.render(mirror.apply([enter("Datacenter", "datacenter-3", name="DC1", parent="group-d1")]))

    assert renamed.datacenters == [{"id": "datacenter-2", "name": "Zürich"}] and renamed.everything is None
    assert new.everything is not None
    assert [d["name"] for d in new.everything.datacenters] == ["DC1", "Zürich"]


def test_a_cluster_that_leaves_drops_its_resources():
    mirror = loaded()

    rendered = mirror.render(mirror.apply([leave("ClusterComputeResource", "domain-c70")]))

    assert rendered.resources == {"domain-c70": None}
    assert [c["id"] for c in rendered.cluster_lists["datacenter-2"]] == ["domain-c7"]


def test_lists_written_from_updates_equal_a_full_collection_after_every_change():
    mirror = loaded()
    model = CacheModel(mirror)
    story = [
        [vm("vm-200", "web02", "host-11")],
        [modify("VirtualMachine", "vm-200", name="web02-renamed", runtime__powerState="poweredOff")],
        [modify("VirtualMachine", "vm-101", parent="group-v3")],
        [modify("ClusterComputeResource", "domain-c7", name="C0 / prod", host=["host-10"])],
        [modify("ClusterComputeResource", "domain-c70", host=["host-11", "host-12"])],
        [modify("HostSystem", "host-11", parent="domain-c70", runtime__inMaintenanceMode=True)],
        [modify("Datastore", "datastore-20", name="ds-renamed", summary__accessible=False)],
        [enter("ResourcePool", "resgroup-82", name="db", parent="resgroup-8", owner="domain-c7")],
        [modify("Folder", "group-v9", name="apps")],
        [modify("VirtualMachine", "vm-100", config__template=True, config__hardware__device=[])],
        [leave("VirtualMachine", "vm-101"), leave("ResourcePool", "resgroup-81")],
        [modify("Network", "network-30", name="VLAN 10")],
        [modify("Datacenter", "datacenter-2", name="DC zero")],
        [leave("ClusterComputeResource", "domain-c70"), leave("HostSystem", "host-12")],
        [enter("Datacenter", "datacenter-3", name="DC1", parent="group-d1", vmFolder="group-v31")],
    ]
    announced = []
    for changes in story:
        announced += model.apply(mirror, mirror.apply(changes))
        assert model.matches_a_full_collection(mirror), changes

    assert [entry["name"] for entry in announced] == ["web02", "web02-renamed", "db01"]
