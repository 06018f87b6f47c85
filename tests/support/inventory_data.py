"""A small inventory snapshot, built by hand, for tests that need cached data without vcsim."""

from inventory.snapshot import Scope, Snapshot


def sample_snapshot(generation: str = "a", scope: Scope | None = None) -> Snapshot:
    """Two datacenters (one named with a slash), a cluster each; `generation` tags every object."""
    snapshot = Snapshot(scope=scope or Scope.everything())
    for n, (dc_id, dc_name) in enumerate([("datacenter-2", "DC0"), ("datacenter-3", "Zürich / prod")]):
        cluster_id = f"domain-c{n + 7}"
        snapshot.datacenters.append({"id": dc_id, "name": dc_name, "generation": generation})
        snapshot.clusters[dc_id] = [
            {"id": cluster_id, "name": f"cluster {n}", "datacenter_id": dc_id, "hosts": [], "generation": generation}
        ]
        snapshot.resources[cluster_id] = {
            "cluster": {"id": cluster_id, "name": f"cluster {n}"},
            "datacenter_id": dc_id,
            "resource_pools": [
                {"id": f"resgroup-{n}1", "name": "Resources", "path": "Resources", "generation": generation},
                {"id": f"resgroup-{n}2", "name": "web", "path": "Resources/web", "generation": generation},
            ],
            "datastores": [
                {
                    "id": f"datastore-{n}1",
                    "name": "ds-fast",
                    "capacity": 500 * 2**30,
                    "free_space": 200 * 2**30,
                    "accessible": True,
                    "maintenance_mode": "normal",
                    "type": "VMFS",
                    "generation": generation,
                },
                {
                    "id": f"datastore-{n}2",
                    "name": "ds-down",
                    "capacity": 500 * 2**30,
                    "free_space": 400 * 2**30,
                    "accessible": False,
                    "maintenance_mode": "normal",
                    "type": "NFS",
                    "generation": generation,
                },
                {
                    "id": f"datastore-{n}3",
                    "name": "ds-maint",
                    "capacity": 500 * 2**30,
                    "free_space": 450 * 2**30,
                    "accessible": True,
                    "maintenance_mode": "inMaintenance",
                    "type": "VMFS",
                    "generation": generation,
                },
            ],
            "networks": [
                {"id": f"dvportgroup-{n}1", "name": "VLAN 10", "type": "distributed", "generation": generation},
                {"id": f"network-{n}2", "name": "VM Network", "type": "standard", "generation": generation},
            ],
        }
        snapshot.templates[dc_id] = [
            {
                "id": f"vm-t{n}",
                "name": "ubuntu-22.04",
                "datacenter_id": dc_id,
                "uuid": f"4210a5c4-0000-0000-0000-00000000000{n}",
                "guest_id": "ubuntu64Guest",
                "num_cpus": 2,
                "memory_mb": 2048,
                "firmware": "efi",
                "disks": [
                    {"label": "Hard disk 1", "unit_number": 0, "size_gb": 20, "thin": True, "eagerly_scrub": False}
                ],
                "nic_types": ["vmxnet3"],
                "scsi_type": "pvscsi",
                "scsi_controller_count": 1,
                "generation": generation,
            }
        ]
        snapshot.vms[dc_id] = [
            {
                "id": f"vm-{n}00",
                "name": "db01",
                "datacenter_id": dc_id,
                "cluster_id": cluster_id,
                "uuid": f"4230b6d5-0000-0000-0000-00000000000{n}",
                "instance_uuid": f"5010a5c4-0000-0000-0000-00000000000{n}",
                "ip_addresses": [f"10.0.{n}.5"],
                "folder_id": f"group-v{n}",
                "power_state": "poweredOn",
                "generation": generation,
            }
        ]
        snapshot.folders[dc_id] = [
            {"id": f"group-v{n}", "name": "vm", "path": "", "generation": generation},
            {"id": f"group-v{n}9", "name": "web", "path": "web", "generation": generation},
        ]
    return snapshot
