"""The inventory's vocabulary: what one refresh covers (`Scope`), what it brings back (`Snapshot`), how vCenter
names read (`display_name`, `path_segment`), and the errors a refresh reports.

Plain Python only, no pyVmomi: the cache, the catalog and the request form speak these words without loading
the vSphere SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class VCenterError(Exception):
    """vCenter could not be reached or answered with a fault; the message is for people."""


class VCenterObjectNotFound(VCenterError):
    """The datacenter or cluster a scoped refresh asked for does not exist (any more)."""


# A datacenter's or cluster's managed object id as vCenter writes them ("datacenter-2", "domain-c7",
# "ha-datacenter"): anything else cannot name one, so nothing asks vCenter (or records a refresh) for it.
_MANAGED_OBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,79}")


def is_managed_object_id(value: str) -> bool:
    return bool(_MANAGED_OBJECT_ID.fullmatch(value))


@dataclass(frozen=True)
class Scope:
    """What one refresh covers: everything, one datacenter or one cluster (by a well-formed managed object id)."""

    kind: str  # "all" | "datacenter" | "cluster"
    id: str = ""

    ALL = "all"
    DATACENTER = "datacenter"
    CLUSTER = "cluster"

    def __post_init__(self) -> None:
        if self.kind not in {self.ALL, self.DATACENTER, self.CLUSTER}:
            raise ValueError(f"unknown scope kind {self.kind!r}")
        if (self.kind == self.ALL) != (not self.id):
            raise ValueError("a datacenter or cluster scope needs an id; the full scope has none")
        if self.id and not is_managed_object_id(self.id):
            raise ValueError(f"{self.id[:40]!r} is not a managed object id")

    @classmethod
    def everything(cls) -> Scope:
        return cls(cls.ALL)

    @classmethod
    def datacenter(cls, datacenter_id: str) -> Scope:
        return cls(cls.DATACENTER, datacenter_id)

    @classmethod
    def cluster(cls, cluster_id: str) -> Scope:
        return cls(cls.CLUSTER, cluster_id)

    @property
    def label(self) -> str:
        return self.kind if self.kind == self.ALL else f"{self.kind}:{self.id}"

    @classmethod
    def from_label(cls, label: str) -> Scope:
        kind, _, scope_id = label.partition(":")
        return cls(kind, scope_id)


@dataclass
class Snapshot:
    """One scope's inventory as plain data. Lists are keyed by the owner's managed object id."""

    scope: Scope
    datacenters: list[dict] = field(default_factory=list)
    clusters: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> clusters
    resources: dict[str, dict] = field(default_factory=dict)  # cluster id -> pools, datastores, networks
    templates: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> templates
    vms: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> VMs
    folders: dict[str, list[dict]] = field(default_factory=dict)  # datacenter id -> VM folders

    def counts(self) -> dict[str, int]:
        def total(groups: dict[str, list[dict]]) -> int:
            return sum(len(items) for items in groups.values())

        return {
            "datacenters": len(self.datacenters),
            "clusters": total(self.clusters),
            "resource_pools": sum(len(r["resource_pools"]) for r in self.resources.values()),
            "datastores": len({d["id"] for r in self.resources.values() for d in r["datastores"]}),
            "networks": len({n["id"] for r in self.resources.values() for n in r["networks"]}),
            "folders": total(self.folders),
            "templates": total(self.templates),
            "vms": total(self.vms),
        }


# --- Names -------------------------------------------------------------------------------------

_VCENTER_ESCAPE = re.compile(r"%(2[fF]|5[cC]|25)")
_UNESCAPED = {"2f": "/", "5c": "\\", "25": "%"}


def display_name(raw: str) -> str:
    """A name as people typed it: vCenter returns `/`, `\\` and `%` as %2f, %5c and %25."""
    return _VCENTER_ESCAPE.sub(lambda m: _UNESCAPED[m.group(1).lower()], raw)


def path_segment(name: str) -> str:
    """A display name escaped for an inventory path (the form vCenter and Terraform expect)."""
    return name.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")
