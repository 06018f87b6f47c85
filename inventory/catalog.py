"""The inventory's one door for the rest of vmprov: cache-first reads (what the request form, the API and the pages
about delivered VMs ask for), the look-ups delivery makes (`find_vm` and `listed_vm` for a new VM, `refresh_vm` for one
it resized or destroyed, `vm_hardware` read from vCenter now) and the stream of VM arrivals it listens to
(`wait_for_changes`).

A read answers from Redis whenever Redis holds the list, however old: past the
soft age it still answers at once and queues a background refresh. Only a cold
miss (the list is not cached at all) waits for vCenter, and concurrent cold
misses wait for one collection (single flight) for a bounded time.

While a watcher is live (inventory.watcher: the cache follows vCenter's updates
within seconds) nothing here collects: lists are current, so soft-age refreshes
stop, a list missing is a list vCenter does not have, and `find_vm` reads the
cache. Each answer says which it is: `live` with `last_update_at`, or a snapshot
as of `fetched_at`.

Callers catch this module's errors only: `NotFound`, `Ambiguous` and `Unavailable`
(which also stands for "Redis cannot be reached"). The vCenter client is imported
only when a collection runs, so reading the catalog never loads pyVmomi.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.utils import timezone

from inventory import cache, refresh_locks, tasks, watch_store
from inventory.cache import CachedHash
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.models import RefreshRun
from inventory.snapshot import Scope, VCenterError, VCenterObjectNotFound, is_managed_object_id

logger = logging.getLogger(__name__)

_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


class NotFound(Exception):
    """The datacenter or cluster asked for is not in the vSphere inventory."""


class Ambiguous(Exception):
    """More than one object has the name asked for; `ids` lists them."""

    def __init__(self, message: str, ids: list[str]):
        super().__init__(message)
        self.ids = ids


class Unavailable(Exception):
    """The list is not cached and cannot be collected now; the message is for people."""

    def __init__(self, message: str, retry_after: int = 10):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Listing:
    """Objects from the cache and how fresh they are.

    `fetched_at`: when the list was last read from vCenter (collected, or changed by the watcher); `stale`: past
    the soft age (or its last refresh failed) and a refresh is queued; `live`: a watcher keeps it current, and
    `last_update_at` is when the watcher last wrote a change from vCenter.
    """

    items: list[dict]
    fetched_at: float
    stale: bool
    refresh_error: dict | None = None
    live: bool = False
    last_update_at: float | None = None

    def by_id(self) -> dict[str, dict]:
        return {item["id"]: item for item in self.items}


def _cache_read(read: Callable[_Params, _Result]) -> Callable[_Params, _Result]:
    """A public read: Redis being unreachable reaches the caller as `Unavailable`, like vCenter being unreachable."""

    @functools.wraps(read)
    def wrapper(*args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
        try:
            return read(*args, **kwargs)
        except cache.CacheUnavailable as error:
            raise Unavailable(str(error), retry_after=5) from None

    return wrapper


def _refresh(scope: Scope, trigger: str, wait: float = 0) -> RefreshRun | None:
    """Collect `scope` from vCenter now (see refresh.refresh). Imported here: pyVmomi loads only when one runs."""
    from inventory.refresh import refresh

    return refresh(scope, trigger, wait=wait)


def _sorted(items: dict[str, dict]) -> list[dict]:
    return sorted(items.values(), key=lambda item: (item.get("path") or item.get("name", ""), item["id"]))


def _listing(cached: CachedHash, stale: bool) -> Listing:
    return Listing(
        items=_sorted(cached.items),
        fetched_at=cached.fetched_at,
        stale=stale,
        refresh_error=cached.error,
        live=cached.live is not None,
        last_update_at=(cached.live or {}).get("last_update_at"),
    )


def _revalidate(cached: CachedHash, scope: Scope) -> bool:
    """Log the hit; past the soft age, queue a refresh (once per burst), unless a watcher keeps the list live.
    Returns whether it is stale."""
    age = cached.age()
    if cached.live is not None:
        logger.info("inventory cache hit key=%s age=%.0fs live", cached.key, age)
        return False
    stale = age > settings.INVENTORY_SOFT_AGE or cached.error is not None
    logger.info("inventory cache %s key=%s age=%.0fs", "stale" if stale else "hit", cached.key, age)
    if stale:
        try:
            tasks.enqueue_refresh(scope, RefreshTrigger.STALE_READ)
        except cache.CacheUnavailable as error:
            logger.warning("could not queue a refresh of %s: %s", scope.label, error)
    return stale


def _fill(key: str, scope: Scope) -> CachedHash | None:
    """Cold miss: collect `scope` now, or wait (bounded) for the collection already running.

    While a watcher is live the cache holds every list vCenter has: nothing is collected."""
    if cache.watcher_live() is not None:
        logger.info("inventory cache miss key=%s while a watcher is live: not in vCenter", key)
        return cache.read_hash(key)
    logger.info("inventory cache miss key=%s: collecting %s", key, scope.label)
    deadline = time.monotonic() + settings.INVENTORY_COLD_WAIT
    run = _refresh(scope, RefreshTrigger.COLD_MISS)
    if run is not None:
        _raise_unless_collected(run)
        return cache.read_hash(key)
    # Another request or worker is collecting this scope: wait for its result.
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cached = cache.read_hash(key)
        if cached is not None:
            return cached
        if not refresh_locks.refresh_running(scope):
            cached = cache.read_hash(key)
            if cached is None:
                # A run is saved before its lock is released, so the latest run is the one we waited for.
                latest = RefreshRun.objects.filter(scope=scope.label).first()
                if latest is not None:
                    _raise_unless_collected(latest)
            return cached
    raise Unavailable(
        "The vSphere inventory is still being collected from vCenter; try again in a few seconds.",
        retry_after=5,
    )


def _raise_unless_collected(run: RefreshRun) -> None:
    """A collection that found the scope gone is a 404; one that could not read vCenter is a 503."""
    if run.outcome == RefreshOutcome.NOT_FOUND:
        raise NotFound(run.error)
    if run.outcome == RefreshOutcome.FAILED:
        raise Unavailable(f"The vSphere inventory is not cached yet and vCenter cannot be read: {run.error}")


def _well_formed(object_id: str, what: str) -> str:
    """`object_id` when it can be a managed object id; else NotFound before any cache or vCenter call."""
    if not is_managed_object_id(object_id):
        raise NotFound(f"{what} {object_id[:40]!r}{'…' if len(object_id) > 40 else ''} is not in the vSphere inventory")
    return object_id


def _require(cached: CachedHash | None, what: str) -> CachedHash:
    if cached is None:
        raise NotFound(f"{what} is not in the vSphere inventory")
    return cached


# --- Public reads ------------------------------------------------------------------------------


@_cache_read
def datacenters() -> Listing:
    key = cache.datacenters_key()
    cached = cache.read_hash(key)
    if cached is None:
        return _listing(_require(_fill(key, Scope.everything()), "no datacenter"), stale=False)
    return _listing(cached, _revalidate(cached, Scope.everything()))


@_cache_read
def datacenter(datacenter_id: str) -> dict:
    found = datacenters().by_id().get(_well_formed(datacenter_id, "datacenter"))
    if found is None:
        raise NotFound(f"datacenter {datacenter_id} is not in the vSphere inventory")
    return found


@_cache_read
def datacenter_named(name: str) -> dict:
    matches = [dc for dc in datacenters().items if dc["name"] == name]
    if not matches:
        raise NotFound(f"no datacenter is named {name!r}")
    if len(matches) > 1:
        ids = [dc["id"] for dc in matches]
        raise Ambiguous(f"{len(matches)} datacenters are named {name!r}; ask by id", ids)
    return matches[0]


def _datacenter_list(datacenter_id: str, kind: str) -> Listing:
    _well_formed(datacenter_id, "datacenter")
    key = cache.datacenter_key(datacenter_id, kind)
    scope = Scope.datacenter(datacenter_id)
    cached = cache.read_hash(key)
    if cached is not None:
        # A datacenter that vanished has its keys deleted, so a cached list means it exists.
        return _listing(cached, _revalidate(cached, scope))
    datacenter(datacenter_id)  # 404 for an unknown datacenter, before any vCenter call
    return _listing(_require(_fill(key, scope), f"datacenter {datacenter_id}"), stale=False)


@_cache_read
def clusters(datacenter_id: str) -> Listing:
    return _datacenter_list(datacenter_id, "clusters")


@_cache_read
def templates(datacenter_id: str) -> Listing:
    return _datacenter_list(datacenter_id, "templates")


@_cache_read
def folders(datacenter_id: str) -> Listing:
    return _datacenter_list(datacenter_id, "folders")


@_cache_read
def vms(datacenter_id: str) -> Listing:
    return _datacenter_list(datacenter_id, "vms")


@_cache_read
def vms_by_id(datacenter_id: str, vm_ids: list[str]) -> Listing:
    """Some VMs of a datacenter, by id (those the inventory does not list are left out): a page about a few VMs
    reads those, never the datacenter's whole list. Cache-first, as every read."""
    key = cache.datacenter_key(datacenter_id, "vms")
    cached = cache.read_fields(key, list(vm_ids))
    if cached is None:
        wanted = set(vm_ids)
        listing = _datacenter_list(datacenter_id, "vms")
        return Listing([vm for vm in listing.items if vm["id"] in wanted], listing.fetched_at, listing.stale)
    return _listing(cached, _revalidate(cached, Scope.datacenter(datacenter_id)))


TEMPLATES_OK = "ok"
TEMPLATES_LOADING = "loading"


@dataclass
class ClusterResources:
    cluster: dict
    datacenter_id: str
    resource_pools: list[dict]
    datastores: list[dict]
    networks: list[dict]
    templates: Listing
    fetched_at: float
    stale: bool
    refresh_error: dict | None
    templates_status: str = TEMPLATES_OK
    live: bool = False
    last_update_at: float | None = None


@_cache_read
def cluster_resources(cluster_id: str, *, wait_for_templates: bool = True) -> ClusterResources:
    """A cluster's pools, datastores and networks, and its datacenter's templates.

    With `wait_for_templates=False` (the request form's API) templates that are not cached
    never hold up the rest: they come back empty, "loading", and a refresh is queued.
    Validating a request keeps the default: it checks the chosen template against the list.
    """
    key = cache.resources_key(_well_formed(cluster_id, "cluster"))
    cached = cache.read_hash(key)
    if cached is None:
        _require_listed_cluster(cluster_id)
        cached = _require(_fill(key, Scope.cluster(cluster_id)), f"cluster {cluster_id}")
        stale = False
    else:
        stale = _revalidate(cached, Scope.cluster(cluster_id))
    datacenter_id = cached.meta["datacenter_id"]
    grouped = cache.resources_from(cached)
    if wait_for_templates:
        template_listing, templates_status = templates(datacenter_id), TEMPLATES_OK
    else:
        template_listing, templates_status = _cached_templates(datacenter_id, cached.fetched_at)
    return ClusterResources(
        cluster=cached.meta["cluster"],
        datacenter_id=datacenter_id,
        templates=template_listing,
        templates_status=templates_status,
        fetched_at=cached.fetched_at,
        stale=stale,
        refresh_error=cached.error,
        live=cached.live is not None,
        last_update_at=(cached.live or {}).get("last_update_at"),
        **grouped,
    )


def _require_listed_cluster(cluster_id: str) -> None:
    """NotFound unless some datacenter's cluster list holds `cluster_id`: only a listed cluster is collected.

    A datacenter whose cluster list is not cached is collected first, at most once per soft age (its latest
    refresh run says when it was tried): any number of made-up ids costs one bounded collection per datacenter.
    """
    if cache.cluster_is_unknown(cluster_id):
        raise NotFound(f"cluster {cluster_id} is not in the vSphere inventory")
    unread = []
    for datacenter_id in datacenters().by_id():
        key = cache.datacenter_key(datacenter_id, "clusters")
        listed = cache.read_hash(key)
        if listed is None and not _tried_lately(Scope.datacenter(datacenter_id)):
            try:
                listed = _fill(key, Scope.datacenter(datacenter_id))
            except NotFound:
                continue  # the datacenter is gone from vCenter: it holds no cluster
        if listed is None:
            unread.append(datacenter_id)
        elif cluster_id in listed.items:
            return
    if unread:
        raise Unavailable(
            f"The clusters of datacenter {', '.join(unread)} could not be read from vCenter lately; try again later.",
            retry_after=settings.INVENTORY_SOFT_AGE,
        )
    raise NotFound(f"cluster {cluster_id} is not in the vSphere inventory")


def _tried_lately(scope: Scope) -> bool:
    """Whether a collection of `scope` finished within the soft age (whatever its outcome)."""
    since = timezone.now() - timedelta(seconds=settings.INVENTORY_SOFT_AGE)
    finished = RefreshRun.objects.filter(scope=scope.label, started_at__gte=since)
    return finished.exclude(outcome=RefreshOutcome.RUNNING).exists()


def _cached_templates(datacenter_id: str, fetched_at: float) -> tuple[Listing, str]:
    """A datacenter's templates from the cache only; when missing, queue its collection and say "loading"."""
    key = cache.datacenter_key(datacenter_id, "templates")
    scope = Scope.datacenter(datacenter_id)
    cached = cache.read_hash(key)
    if cached is not None:
        return _listing(cached, _revalidate(cached, scope)), TEMPLATES_OK
    if cache.watcher_live() is not None:
        return Listing(items=[], fetched_at=fetched_at, stale=False, live=True), TEMPLATES_OK
    logger.info("inventory cache miss key=%s: queueing a refresh of %s", key, scope.label)
    try:
        tasks.enqueue_refresh(scope, RefreshTrigger.COLD_MISS)
    except cache.CacheUnavailable as error:
        logger.warning("could not queue a refresh of %s: %s", scope.label, error)
    return Listing(items=[], fetched_at=fetched_at, stale=False), TEMPLATES_LOADING


# --- Delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VMLookup:
    """A delivered VM as the inventory shows it (None when not, or not exactly once), and why it may be missing."""

    vm: dict | None
    problem: str = ""


def find_vm(datacenter_id: str, cluster_id: str, name: str, uuid: str = "") -> VMLookup:
    """The VM named `name` in cluster `cluster_id`, looked up after a fresh refresh of that cluster (none while a
    watcher is live: the cache is as fresh as a refresh would make it).

    `uuid` (the BIOS UUID Terraform reports as the VM's id), when given, must match too, in any case. `problem`
    says why the refresh failed, or else why the list could not be read; a VM found in the list after a failed
    refresh is still found.
    """
    try:
        live = cache.watcher_live() is not None
    except cache.CacheUnavailable:
        live = False
    run = None if live else _refresh(Scope.cluster(cluster_id), RefreshTrigger.DELIVERY, wait=30)
    problem = run.error if run is not None and run.outcome != RefreshOutcome.SUCCEEDED else ""
    try:
        return VMLookup(listed_vm(datacenter_id, cluster_id, name, uuid), problem)
    except (NotFound, Unavailable) as error:
        return VMLookup(None, problem or str(error))


def listed_vm(datacenter_id: str, cluster_id: str, name: str, uuid: str = "") -> dict | None:
    """The VM named `name` in cluster `cluster_id` as the catalog lists it now (no refresh first), or None when not
    listed exactly once; `uuid`, when given, must match too. Raises NotFound or Unavailable."""
    listed = vms(datacenter_id).items
    matches = [vm for vm in listed if vm["name"] == name and vm.get("cluster_id") == cluster_id]
    if uuid:
        matches = [vm for vm in matches if vm.get("uuid", uuid).lower() == uuid.lower()]
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class InventoryChange:
    """What the watcher announced: a VM arrived or changed name, UUID or placement (`vm`), or everything was
    reloaded (`resync`, `vm` None)."""

    kind: str  # "vm" | "resync"
    vm: dict | None = None


def wait_for_changes(after: str | None, wait: float) -> tuple[str, list[InventoryChange]]:
    """The changes announced after position `after` (None: from now on), waiting up to about `wait` seconds for
    one; returns the position to ask from next. Raises Unavailable when Redis cannot be reached."""
    try:
        position = watch_store.last_event_id() if after is None else after
        changes = []
        for entry_id, event in watch_store.read_events(position, wait):
            position = entry_id
            if event.get("type") == "vm":
                changes.append(InventoryChange("vm", {k: v for k, v in event.items() if k != "type"}))
            elif event.get("type") == "resync":
                changes.append(InventoryChange("resync"))
    except cache.CacheUnavailable as error:
        raise Unavailable(str(error), retry_after=5) from None
    return position, changes


def refresh_vm(datacenter_id: str, vm_id: str, cluster_id: str) -> VMLookup:
    """The VM `vm_id` after a fresh refresh of the cluster the inventory last saw it in (`cluster_id` when it has
    not seen it): what delivery reads after resizing or destroying a delivered VM. Without a watcher the refresh is
    explicit; while a watcher is live it keeps the lists (a collection would not be written) and delivery calls
    `ask_for_a_fresh_look` when they lag. `vm` None with no `problem`: the inventory does not list it."""
    try:
        seen = vms_by_id(datacenter_id, [vm_id]).items
    except (NotFound, Unavailable):
        seen = []
    scope = Scope.cluster((seen[0].get("cluster_id") if seen else None) or cluster_id)
    if _watcher_is_live():
        problem = ""  # the watcher keeps the lists current; a collection would not be written
    else:
        run = _refresh(scope, RefreshTrigger.DELIVERY, wait=30)
        if run is None:
            problem = f"a refresh of {scope.label} was still running after 30 s"
        else:
            problem = run.error if run.outcome != RefreshOutcome.SUCCEEDED else ""
    try:
        found = vms_by_id(datacenter_id, [vm_id]).items
    except (NotFound, Unavailable) as error:
        return VMLookup(None, problem or str(error))
    return VMLookup(found[0] if found else None, problem)


def _watcher_is_live() -> bool:
    try:
        return cache.watcher_live() is not None
    except cache.CacheUnavailable:
        return False


@_cache_read
def ask_for_a_fresh_look() -> None:
    """The lists lag behind vCenter (a resize not listed yet; vcsim sends no update for it): a live watcher is asked
    to read vCenter again. Without one the next `refresh_vm` collects anyway."""
    if _watcher_is_live():
        watch_store.request_resync()


def vm_hardware(vm_id: str) -> dict:
    """A VM's CPUs, memory, disks, hot add flags and power state read from vCenter now (not from the cache):
    `num_cpus`, `memory_mb`, `disks` (each with `size_gb` and the provider's `unit_number`), `cpu_hot_add_enabled`,
    `cpu_hot_remove_enabled`, `memory_hot_add_enabled`, `power_state`. Raises NotFound or Unavailable."""
    from inventory import vsphere  # loads pyVmomi: only a process that talks to vCenter pays for it

    try:
        return vsphere.machine_hardware(vm_id)
    except VCenterObjectNotFound as error:
        raise NotFound(str(error)) from None
    except VCenterError as error:
        raise Unavailable(f"vCenter could not be read: {error}") from None


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")
