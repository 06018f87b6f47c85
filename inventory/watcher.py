"""The inventory watcher: the cache follows vCenter's own change stream, within seconds (`manage.py watch_inventory`).

Any number of replicas may run; one leads. The leader holds a Redis lease (renewed by a keeper thread) whose
token fences every write (see cache.py), so a replica that lost the lease, even one paused for minutes, cannot
write; the others stand by and take over when the leader's lease expires, or at once when it stops cleanly.

The leader, in one vCenter session:
1. reloads: a new feed (its own PropertyCollector and filter, inventory.vsphere_updates) answers everything from
   version "" into a fresh `Mirror`; templates' devices are read apart; the whole inventory is written in one
   fenced script that also drops what vCenter no longer holds (no leftovers), announces a resync and sets the
   live marker;
2. then loops on WaitForUpdatesEx: each answer (following `truncated` pages) is applied to the mirror, the lists
   it touched are rebuilt and written with the VMs delivery waits for, in one fenced script; every answer, even
   an empty one after `maxWaitSeconds`, renews the live marker (while it exists, readers do not refresh).

It reloads again every INVENTORY_WATCH_RECONCILE_HOURS, when someone asks (watch_store.request_resync), and after
InvalidCollectorVersion. A lost session, a vCenter restart or a hung vCenter ends the session: the live marker is
dropped (readers fall back to their own refreshes), and the leader reconnects with a growing backoff and reloads.
Redis failing while updates arrive only stops the writes: the mirror stays current, and everything is rewritten
from it once Redis answers. Readers never wait for the watcher: they read Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings

from inventory import cache, watch_store
from inventory.mirror import Mirror, ObjectChange, Rendered, Touched
from inventory.snapshot import Scope, VCenterError
from inventory.vsphere import VCenterConfig
from inventory.vsphere_updates import UpdateFeed, VCenterConnection, VersionLost, connect

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchOptions:
    """How the watcher paces itself: the INVENTORY_WATCH_* settings, unless a caller brings its own."""

    max_wait: int = 15  # maxWaitSeconds of each WaitForUpdatesEx
    lease_seconds: float = 15.0  # a dead leader is replaced this long after its last renewal
    reconcile_seconds: float = 24 * 3600.0  # a full reload this often
    backoff_max: float = 60.0  # the longest pause between reconnection attempts
    page_size: int = 500  # maxObjectUpdates
    live_margin: float = watch_store.LIVE_MARGIN_SECONDS  # how long the live marker outlives a wait's longest answer

    @classmethod
    def from_settings(cls) -> WatchOptions:
        return cls(
            max_wait=settings.INVENTORY_WATCH_WAIT_SECONDS,
            lease_seconds=settings.INVENTORY_WATCH_LEASE_SECONDS,
            reconcile_seconds=settings.INVENTORY_WATCH_RECONCILE_HOURS * 3600,
            backoff_max=settings.INVENTORY_WATCH_BACKOFF_MAX,
            page_size=settings.VSPHERE_PAGE_SIZE,
        )

    @property
    def live_seconds(self) -> float:
        """How long the live marker outlives the last answer from vCenter."""
        return self.max_wait + self.live_margin


@dataclass
class ReplicaStatus:
    """What one replica says about itself on the admin page (see watch_store.publish_replica_status)."""

    replica: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    leader: bool = False
    connected: bool = False
    live: bool = False
    version: str = ""
    last_update_at: float | None = None  # when the last change from vCenter was written
    heard_at: float | None = None  # when vCenter last answered a wait
    lag_ms: float | None = None  # from vCenter's answer to the cache holding it, for the last change
    reconnects: int = 0
    reconciled_at: float | None = None
    reconcile_seconds: float | None = None
    objects: int = 0
    soap_calls: int = 0
    soap_calls_by_method: dict[str, int] = field(default_factory=dict)
    memory_mb: float = 0.0
    error: str = ""
    updated_at: float = 0.0


class Backoff:
    """Pauses between reconnection attempts: 1, 2, 4 … seconds up to `limit`, each with some jitter."""

    def __init__(self, limit: float, first: float = 1.0) -> None:
        self.limit = limit
        self.first = first
        self.attempts = 0

    def next(self) -> float:
        delay = min(self.limit, self.first * 2**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not a secret

    def reset(self) -> None:
        self.attempts = 0


class LeaseKeeper(threading.Thread):
    """Renews the leader's lease every third of its length, and says the replica's status again (a reload of a
    large inventory outlasts the status's expiry); sets `lost` once the lease is no longer ours."""

    def __init__(self, token: str, seconds: float, publish_status: Callable[[], None]) -> None:
        super().__init__(name="inventory-lease-keeper", daemon=True)
        self.token = token
        self.seconds = seconds
        self.publish_status = publish_status
        self.lost = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.seconds / 3):
            try:
                if not watch_store.renew_lease(self.token, self.seconds):
                    logger.warning("the watcher lease %s expired or was taken over", self.token)
                    self.lost.set()
                    return
            except cache.CacheUnavailable as error:  # tried again next time; the lease may expire meanwhile
                logger.warning("could not renew the watcher lease: %s", error)
            self.publish_status()

    def stop(self) -> None:
        self._done.set()
        self.join()


Connect = Callable[[], AbstractContextManager[VCenterConnection]]


class Watcher:
    """One replica: stands by, or leads and keeps the cache current (`run`)."""

    def __init__(
        self,
        config: VCenterConfig | None = None,
        options: WatchOptions | None = None,
        *,
        replica: str | None = None,
        connect_vcenter: Connect | None = None,
    ) -> None:
        self.options = options or WatchOptions.from_settings()
        config = config or VCenterConfig.from_settings()
        self.connect_vcenter = connect_vcenter or (lambda: connect(config, self.options.max_wait))
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.status = ReplicaStatus(self.replica)
        self.mirror = Mirror()
        self.unwritten = False  # the mirror holds changes Redis does not: rewrite everything when it answers
        self.reload_due = 0.0
        self.reload_asked = False
        self.live_since: float | None = None
        self._earlier_calls: Counter[str] = Counter()  # SOAP calls of the sessions before the current one

    # --- Leading or standing by ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: lead when the lease is free, else stand by."""
        logger.info("inventory watcher %s starting", self.replica)
        try:
            while not stop.is_set():
                token = self._take_lease()
                if token is None:
                    stop.wait(self.options.lease_seconds / 3)
                    continue
                self._lead(token, stop)
        finally:
            self.status.leader = self.status.connected = self.status.live = False
            self._publish_status()
            logger.info("inventory watcher %s stopped", self.replica)

    def _take_lease(self) -> str | None:
        try:
            token = watch_store.acquire_lease(self.replica, self.options.lease_seconds)
        except cache.CacheUnavailable as error:
            self.status.error = str(error)
            return None
        if token is not None:
            logger.info("inventory watcher %s leads (lease %s)", self.replica, token)
        self.status.leader = token is not None
        self._publish_status()
        return token

    def _lead(self, token: str, stop: threading.Event) -> None:
        keeper = LeaseKeeper(token, self.options.lease_seconds, self._publish_status)
        keeper.start()
        backoff = Backoff(self.options.backoff_max)
        try:
            while not (stop.is_set() or keeper.lost.is_set()):
                try:
                    self._follow(token, stop, keeper.lost, backoff)
                except cache.Fenced:
                    raise
                except (VCenterError, cache.CacheUnavailable) as error:
                    pause = self._lost(token, backoff, error)
                    logger.warning("inventory watcher lost vCenter or Redis (%s); again in %.1f s", error, pause)
                    if stop.wait(pause):
                        break
                except Exception as error:  # a bug must not end the watcher: readers would fall back for good
                    pause = self._lost(token, backoff, error)
                    logger.exception("inventory watcher failed unexpectedly; reloading in %.1f s", pause)
                    if stop.wait(pause):
                        break
        except cache.Fenced as error:
            logger.warning("inventory watcher %s stops leading: %s", self.replica, error)
        finally:
            keeper.stop()
            self.status.leader = self.status.connected = self.status.live = False
            self.live_since = None
            try:
                watch_store.release_lease(token)
            except cache.CacheUnavailable as error:
                logger.warning("could not release the watcher lease (it expires on its own): %s", error)

    def _lost(self, token: str, backoff: Backoff, error: Exception) -> float:
        """Note a broken session and drop the live marker (readers fall back); returns the pause before the next."""
        self.status.reconnects += 1
        self.status.error = f"{type(error).__name__}: {error}" if not isinstance(error, VCenterError) else str(error)
        self._drop_live(token)
        return backoff.next()

    # --- Following vCenter -----------------------------------------------------------------------

    def _follow(self, token: str, stop: threading.Event, lost: threading.Event, backoff: Backoff) -> None:
        """One session: reload, then apply updates until stopped, the lease is lost, or something breaks."""
        with self.connect_vcenter() as connection:
            self.status.connected = True
            feed = self._reload(connection, token)
            backoff.reset()
            try:
                while not (stop.is_set() or lost.is_set()):
                    if self.reload_asked or time.monotonic() >= self.reload_due:
                        self._keep_live_through_reload(token)
                        feed.close()
                        feed = self._reload(connection, token)
                    try:
                        changes = self._next_changes(feed)
                    except VersionLost as error:
                        logger.warning("inventory watcher reloads: %s", error)
                        feed.close()
                        feed = self._reload(connection, token)
                        continue
                    heard = time.monotonic()
                    self.status.heard_at = time.time()
                    if changes:
                        self._apply(feed, changes, token, heard)
                    if self.unwritten:
                        self._write_everything(token)
                    self._heartbeat(token, connection)
                if stop.is_set():
                    feed.close()
            finally:
                self._earlier_calls.update(connection.soap_calls_by_method)
                self.status.connected = self.status.live = False

    def _reload(self, connection: VCenterConnection, token: str) -> UpdateFeed:
        """A new feed from version "", a fresh mirror from its answers, everything written at once."""
        started = time.monotonic()
        self.reload_asked = False
        feed = connection.open_feed()
        mirror = Mirror()
        version = ""
        while True:
            batch = feed.wait(version, self.options.max_wait, self.options.page_size)
            if batch is None:
                break
            self._apply_to(mirror, feed, batch.changes, track=False)
            version = batch.version
            if not batch.truncated:
                break
        self._read_template_details(mirror, feed, mirror.templates_without_details())
        self.mirror = mirror
        self.status.version = version
        self.status.objects = len(mirror)
        self.live_since = self.live_since or time.time()
        self.status.last_update_at = time.time()
        self._write_everything(token)
        self.reload_due = time.monotonic() + self.options.reconcile_seconds
        self.status.reconciled_at = time.time()
        self.status.reconcile_seconds = round(time.monotonic() - started, 3)
        self.status.error = ""
        self._report(connection)
        logger.info(
            "inventory watcher reloaded %d objects in %.2f s (version %s)",
            len(mirror),
            self.status.reconcile_seconds,
            version,
        )
        return feed

    def _next_changes(self, feed: UpdateFeed) -> list[ObjectChange]:
        """One wait's changes; a truncated answer is followed at once (its version is good for one call)."""
        changes: list[ObjectChange] = []
        version = self.status.version
        while True:
            batch = feed.wait(version, self.options.max_wait, self.options.page_size)
            if batch is None:
                break
            changes += batch.changes
            version = batch.version
            if not batch.truncated:
                break
        self.status.version = version
        return changes

    def _apply_to(self, mirror: Mirror, feed: UpdateFeed, changes: list[ObjectChange], track: bool = True) -> Touched:
        touched = mirror.apply(changes, track=track)
        unreadable = [change for change in changes if change.refetch]
        if unreadable:
            touched = touched | mirror.apply(feed.read_objects(unreadable), track=track)
        return touched

    def _read_template_details(self, mirror: Mirror, feed: UpdateFeed, template_ids: list[str]) -> None:
        if template_ids:
            for template_id, details in feed.template_details(template_ids).items():
                mirror.add_details(template_id, details)

    def _apply(self, feed: UpdateFeed, changes: list[ObjectChange], token: str, heard: float) -> None:
        touched = self._apply_to(self.mirror, feed, changes)
        self._read_template_details(self.mirror, feed, self.mirror.templates_without_details(touched.machines))
        self.status.objects = len(self.mirror)
        if not touched or self.unwritten:
            return  # nothing the cache shows changed; or the whole rewrite to come carries it
        rendered = self.mirror.render(touched)
        if rendered.everything is not None:
            self._write_everything(token)
        else:
            self._write(token, rendered)
        self.status.lag_ms = round((time.monotonic() - heard) * 1000, 1)
        self.status.last_update_at = time.time()

    # --- Writing ---------------------------------------------------------------------------------

    def _write(self, token: str, rendered: Rendered) -> None:
        changes = key_changes(rendered, time.time())
        events = [vm_event(entry) for entry in rendered.arrived]
        try:
            missing = watch_store.apply_changes(token, changes, events, self._live_marker(), self.options.live_seconds)
        except cache.CacheUnavailable as error:
            logger.warning("inventory watcher could not write (everything is rewritten once Redis answers): %s", error)
            self.unwritten = True
            return
        if missing:
            logger.warning("inventory watcher found %s missing in Redis: rewriting everything", ", ".join(missing))
            self._write_everything(token)

    def _write_everything(self, token: str) -> None:
        snapshot = self.mirror.render_everything().everything
        try:
            watch_store.replace_everything(token, snapshot, self._live_marker(), self.options.live_seconds, time.time())
        except cache.CacheUnavailable as error:
            logger.warning("inventory watcher could not write the inventory (tried again after each wait): %s", error)
            self.unwritten = True
            return
        self.unwritten = False

    def _heartbeat(self, token: str, connection: VCenterConnection) -> None:
        try:
            if watch_store.heartbeat(token, None if self.unwritten else self._live_marker(), self.options.live_seconds):
                logger.info("inventory watcher: a full reload was asked for")
                self.reload_asked = True
        except cache.CacheUnavailable as error:
            self.status.error = str(error)
            self._report(connection, live=False)
        else:
            self._report(connection)

    def _report(self, connection: VCenterConnection, live: bool = True) -> None:
        self.status.live = live and not self.unwritten
        calls = self._earlier_calls + Counter(connection.soap_calls_by_method)
        self.status.soap_calls = sum(calls.values())
        self.status.soap_calls_by_method = dict(sorted(calls.items()))
        self._publish_status()

    def _keep_live_through_reload(self, token: str) -> None:
        """A reload of a healthy session takes about as long as the last one did: the lists stay what they were
        until it replaces them, so the live marker is made to last that long (twice, to be safe)."""
        if not self.unwritten:
            extra = 2 * (self.status.reconcile_seconds or 0)
            with contextlib.suppress(cache.CacheUnavailable):
                watch_store.heartbeat(token, self._live_marker(), self.options.live_seconds + extra)

    def _drop_live(self, token: str) -> None:
        with contextlib.suppress(cache.CacheUnavailable):  # the marker expires on its own
            watch_store.heartbeat(token, None, self.options.live_seconds)

    def _live_marker(self) -> dict[str, Any]:
        return {
            "replica": self.replica,
            "since": self.live_since,
            "last_update_at": self.status.last_update_at,
            "heard_at": self.status.heard_at or time.time(),
        }

    def _publish_status(self) -> None:
        self.status.updated_at = time.time()
        self.status.memory_mb = _resident_mb()
        with contextlib.suppress(cache.CacheUnavailable):  # said again after the next wait
            watch_store.publish_replica_status(self.replica, asdict(self.status))


def key_changes(rendered: Rendered, fetched_at: float) -> list[watch_store.KeyChange]:
    """The cache writes for what the mirror rendered (everything but a whole reload)."""

    def meta(scope: Scope) -> dict:
        return {"fetched_at": fetched_at, "scope": scope.label, "source": "watcher"}

    changes = []
    if rendered.datacenters is not None:
        changes.append(watch_store.list_change(cache.datacenters_key(), rendered.datacenters, meta(Scope.everything())))
    for kind, lists in (("clusters", rendered.cluster_lists), ("folders", rendered.folder_lists)):
        for datacenter_id, items in lists.items():
            key = cache.datacenter_key(datacenter_id, kind)
            changes.append(watch_store.list_change(key, items, meta(Scope.datacenter(datacenter_id))))
    for cluster_id, resources in rendered.resources.items():
        if resources is None:
            changes.append(watch_store.KeyChange(cache.resources_key(cluster_id), drop=True))
        else:
            changes.append(watch_store.resources_change(cluster_id, resources, meta(Scope.cluster(cluster_id))))
    for (datacenter_id, kind), machines in rendered.machines.items():
        key = cache.datacenter_key(datacenter_id, kind)
        scope_meta = meta(Scope.datacenter(datacenter_id))
        changes.append(watch_store.objects_change(key, machines.upserted, machines.removed, scope_meta))
    return changes


def vm_event(entry: dict) -> dict:
    """What delivery needs to know of a VM that arrived or changed identity."""
    return {
        "type": "vm",
        "id": entry["id"],
        "name": entry["name"],
        "datacenter_id": entry["datacenter_id"],
        "cluster_id": entry.get("cluster_id"),
        "uuid": entry.get("uuid", ""),
    }


def _resident_mb() -> float:
    """This process's resident memory (Linux), 0 elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError):
        return 0.0


def settings_problems() -> list[str]:
    """What is wrong with the INVENTORY_WATCH_* settings, for a system check; never raises."""
    problems = []

    def positive(name: str, whole: bool = False) -> float | None:
        value = getattr(settings, name, None)
        kinds = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
            problems.append(f"{name} must be a positive {'whole ' if whole else ''}number, not {value!r}")
            return None
        return value

    positive("INVENTORY_WATCH_WAIT_SECONDS", whole=True)
    positive("INVENTORY_WATCH_LEASE_SECONDS")
    positive("INVENTORY_WATCH_BACKOFF_MAX")
    hours = positive("INVENTORY_WATCH_RECONCILE_HOURS")
    ttl = getattr(settings, "INVENTORY_TTL", 0)
    if hours is not None and isinstance(ttl, int) and hours * 3600 >= ttl:
        problems.append(
            f"INVENTORY_WATCH_RECONCILE_HOURS ({hours:g} h) must be below INVENTORY_TTL ({ttl} s): lists nothing "
            "changed would expire before the watcher's reload rewrites them"
        )
    return problems
