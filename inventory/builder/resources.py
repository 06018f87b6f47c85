"""A cluster's resources: its resource pools, and the datastores and networks its hosts reach."""

from __future__ import annotations

from inventory.builder.entities import Entity, EntityIndex

_NETWORK_TYPES = {
    "Network": "standard",
    "DistributedVirtualPortgroup": "distributed",
    "OpaqueNetwork": "opaque",
}
_UPLINK_TAG = "SYSTEM/DVS.UPLINKPG"


def cluster_resources(index: EntityIndex) -> dict[str, dict]:
    """Cluster id -> {cluster, datacenter_id, resource_pools, datastores, networks}, for every cluster in a
    datacenter."""
    pools = resource_pools(index)
    resources = {}
    for cluster in index.of_kind("ClusterComputeResource"):
        found = one_cluster_resources(index, cluster, pools)
        if found is not None:
            resources[cluster.id] = found
    return resources


def one_cluster_resources(index: EntityIndex, cluster: Entity, pools: dict[str, list[dict]]) -> dict | None:
    """One cluster's entry of `cluster_resources` (None outside any datacenter); `pools` is `resource_pools()`."""
    datacenter_id = index.datacenter_of(cluster)
    if datacenter_id is None:
        return None
    return {
        "cluster": {"id": cluster.id, "name": index.name(cluster)},
        "datacenter_id": datacenter_id,
        "resource_pools": pools.get(cluster.id, []),
        "datastores": datastores(index, cluster),
        "networks": networks(index, cluster),
    }


def resource_pools(index: EntityIndex) -> dict[str, list[dict]]:
    """Owner id -> its resource pools, each with its path from the root pool ("Resources/web")."""
    by_owner: dict[str, list[dict]] = {}
    for pool in index.of_kind("ResourcePool"):
        owner = pool.ref("owner")
        if owner is None:
            continue
        path = index.path(pool, {"ResourcePool", "VirtualApp"})
        by_owner.setdefault(owner, []).append({"id": pool.id, "name": index.name(pool), "path": path})
    return by_owner


def datastores(index: EntityIndex, cluster: Entity) -> list[dict]:
    """The datastores a cluster lists, by name; unset summary properties read as empty."""
    found = []
    for datastore in map(index.get, dict.fromkeys(cluster.refs("datastore"))):
        if datastore is None:
            continue
        found.append(
            {
                "id": datastore.id,
                "name": index.name(datastore),
                "capacity": int(datastore.props.get("summary.capacity") or 0),
                "free_space": int(datastore.props.get("summary.freeSpace") or 0),
                "accessible": bool(datastore.props.get("summary.accessible")),
                "maintenance_mode": str(datastore.props.get("summary.maintenanceMode") or "normal"),
                "type": str(datastore.props.get("summary.type") or ""),
            }
        )
    return sorted(found, key=lambda d: (d["name"], d["id"]))


def networks(index: EntityIndex, cluster: Entity) -> list[dict]:
    """The networks a cluster lists that a VM can join (uplink port groups are not), by name."""
    found = []
    for network in map(index.get, dict.fromkeys(cluster.refs("network"))):
        if network is None or is_uplink(network):
            continue
        found.append(
            {"id": network.id, "name": index.name(network), "type": _NETWORK_TYPES.get(network.kind, "standard")}
        )
    return sorted(found, key=lambda n: (n["name"], n["id"]))


def is_uplink(network: Entity) -> bool:
    """A distributed switch's uplink port group: `config.uplink` says so, or (older vCenters) its system tag."""
    return bool(network.props.get("config.uplink")) or _UPLINK_TAG in (network.props.get("tag") or [])
