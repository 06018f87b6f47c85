"""Where a VM goes: datacenters, their clusters (with hosts) and their VM folders."""

from __future__ import annotations

from inventory.builder.entities import EntityIndex


def datacenters(index: EntityIndex) -> list[dict]:
    return [{"id": datacenter.id, "name": index.name(datacenter)} for datacenter in index.of_kind("Datacenter")]


def clusters(index: EntityIndex) -> dict[str, list[dict]]:
    """Datacenter id -> its clusters, each with its hosts' state. A cluster outside any datacenter is left out."""
    by_datacenter: dict[str, list[dict]] = {}
    for cluster in index.of_kind("ClusterComputeResource"):
        datacenter_id = index.datacenter_of(cluster)
        if datacenter_id is None:
            continue
        hosts = [host for host in map(index.get, cluster.refs("host")) if host is not None]
        by_datacenter.setdefault(datacenter_id, []).append(
            {
                "id": cluster.id,
                "name": index.name(cluster),
                "datacenter_id": datacenter_id,
                "hosts": [
                    {
                        "id": host.id,
                        "name": index.name(host),
                        "connection_state": str(host.props.get("runtime.connectionState") or ""),
                        "maintenance_mode": bool(host.props.get("runtime.inMaintenanceMode")),
                    }
                    for host in sorted(hosts, key=index.name)
                ],
            }
        )
    return by_datacenter


def folders(index: EntityIndex) -> dict[str, list[dict]]:
    """Datacenter id -> its VM folders, each with its path below the datacenter's root VM folder ("" for the root)."""
    vm_roots = {datacenter.id: datacenter.ref("vmFolder") for datacenter in index.of_kind("Datacenter")}
    by_datacenter: dict[str, list[dict]] = {}
    for folder in index.of_kind("Folder"):
        if "VirtualMachine" not in (folder.props.get("childType") or []):
            continue
        datacenter_id = index.datacenter_of(folder)
        if datacenter_id is None:
            continue
        path = index.path(folder, {"Folder"}, stop_at=vm_roots.get(datacenter_id))
        by_datacenter.setdefault(datacenter_id, []).append({"id": folder.id, "name": index.name(folder), "path": path})
    return by_datacenter
