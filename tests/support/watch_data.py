"""A small vCenter as the watcher's update stream would report it: plain `ObjectChange`s, built by hand.

One datacenter (DC0) with a VM folder tree, one cluster of two hosts with a root pool and a child pool, a
datastore and a network the cluster lists, a second cluster with its own host, a VM on each host and a template.
"""

from inventory.mirror import ENTER, LEAVE, MODIFY, ObjectChange


def enter(kind: str, object_id: str, **props) -> ObjectChange:
    """An enter; property paths are written with "__" for "." (config__uuid is config.uuid)."""
    return ObjectChange(kind, object_id, ENTER, {name.replace("__", "."): value for name, value in props.items()})


def modify(kind: str, object_id: str, removed: tuple[str, ...] = (), **props) -> ObjectChange:
    values = {name.replace("__", "."): value for name, value in props.items()}
    return ObjectChange(kind, object_id, MODIFY, values, list(removed))


def leave(kind: str, object_id: str) -> ObjectChange:
    return ObjectChange(kind, object_id, LEAVE)


def vm(
    object_id: str, name: str, host: str, *, folder: str = "group-v3", template: bool = False, **props
) -> ObjectChange:
    return enter(
        "VirtualMachine",
        object_id,
        name=name,
        parent=folder,
        runtime__host=host,
        config__template=template,
        config__uuid=f"uuid-{object_id}",
        config__instanceUuid=f"instance-{object_id}",
        config__guestId="ubuntu64Guest",
        config__hardware__numCPU=2,
        config__hardware__memoryMB=2048,
        runtime__powerState="poweredOff" if template else "poweredOn",
        **props,
    )


def small_vcenter() -> list[ObjectChange]:
    return [
        enter("Folder", "group-d1", name="Datacenters", childType=["Folder", "Datacenter"]),
        enter("Datacenter", "datacenter-2", name="DC0", parent="group-d1", vmFolder="group-v3"),
        enter("Folder", "group-v3", name="vm", parent="datacenter-2", childType=["Folder", "VirtualMachine"]),
        enter("Folder", "group-v9", name="web", parent="group-v3", childType=["Folder", "VirtualMachine"]),
        enter("Folder", "group-h4", name="host", parent="datacenter-2", childType=["Folder", "ComputeResource"]),
        enter("Folder", "group-s5", name="datastore", parent="datacenter-2", childType=["Folder", "Datastore"]),
        enter("Folder", "group-n6", name="network", parent="datacenter-2", childType=["Folder", "Network"]),
        enter(
            "ClusterComputeResource",
            "domain-c7",
            name="C0",
            parent="group-h4",
            host=["host-10", "host-11"],
            datastore=["datastore-20"],
            network=["network-30"],
            resourcePool="resgroup-8",
        ),
        enter(
            "ClusterComputeResource",
            "domain-c70",
            name="C1",
            parent="group-h4",
            host=["host-12"],
            datastore=["datastore-20"],
            network=[],
            resourcePool="resgroup-80",
        ),
        *(
            enter(
                "HostSystem",
                host,
                name=f"esx{n}",
                parent=cluster,
                runtime__connectionState="connected",
                runtime__inMaintenanceMode=False,
            )
            for n, (host, cluster) in enumerate(
                [("host-10", "domain-c7"), ("host-11", "domain-c7"), ("host-12", "domain-c70")]
            )
        ),
        enter("ResourcePool", "resgroup-8", name="Resources", parent="domain-c7", owner="domain-c7"),
        enter("ResourcePool", "resgroup-81", name="web", parent="resgroup-8", owner="domain-c7"),
        enter("ResourcePool", "resgroup-80", name="Resources", parent="domain-c70", owner="domain-c70"),
        enter(
            "Datastore",
            "datastore-20",
            name="ds0",
            parent="group-s5",
            summary__capacity=500,
            summary__freeSpace=200,
            summary__accessible=True,
            summary__maintenanceMode="normal",
            summary__type="VMFS",
        ),
        enter("Network", "network-30", name="VM Network", parent="group-n6"),
        vm("vm-100", "web01", "host-10"),
        vm("vm-101", "db01", "host-12", folder="group-v9"),
        vm("vm-102", "ubuntu", "host-11", template=True, config__hardware__device=[], config__firmware="efi"),
    ]
