"""The Redis layout of the inventory cache: every key, its TTL, reading and writing the lists, and the circuit
breaker. The watcher's own writes are `inventory.watch_store`; the refresh locks `inventory.refresh_locks`.

Keys (all under `vmprov:inventory:`), each a hash whose fields are managed object
ids and whose values are JSON objects, plus a `_meta` field (when and by which
refresh it was fetched) and, after a failed refresh, an `_error` field:

    datacenters                       datacenter id -> {id, name}
    dc:<datacenter id>:clusters       cluster id -> {id, name, datacenter_id, hosts}
    dc:<datacenter id>:templates      template id -> {id, name, uuid, guest_id, ...}   (longer TTL)
    dc:<datacenter id>:vms            VM id -> {id, name, uuid, instance_uuid, ip_addresses, ...}
    dc:<datacenter id>:folders        folder id -> {id, name, path}
    cluster:<cluster id>:resources    "pool:<id>" / "datastore:<id>" / "network:<id>" -> {...}

A refresh writes each hash under a temporary key, sets its expiry, and RENAMEs
all of them over the live keys in one MULTI/EXEC: readers see the old scope or
the new one, never a mix. Values are JSON, never pickle: whoever can write to
Redis must not be able to run code here.

While a watcher is live (see below) a refresh's swap is refused (`WatcherLive`):
the watcher's lists are newer than any collection that started before it.

The watcher (inventory.watcher) keeps the same lists current from vCenter's
updates, and these keys of its own:

    watcher:fence                     a counter: INCR at every new lease, so no two leases share a token
    watcher:lease                     the leading replica's token "<n>:<replica id>", expiring after
                                      INVENTORY_WATCH_LEASE_SECONDS unless renewed; every watcher write is a
                                      Lua script that first compares it with the writer's token (fencing):
                                      a replica that lost the lease cannot write, even one paused for minutes
    watcher:live                      JSON {replica, since, last_update_at, heard_at}, present while the leader
                                      applies vCenter's updates; it expires INVENTORY_WATCH_WAIT_SECONDS + 10 s
                                      after the leader last heard from vCenter. Readers fetch it with each list
                                      (one round trip): while it is present nobody else collects.
    watcher:replica:<replica id>      JSON status of one replica (leader or standby), expiring after a minute
    watcher:resync                    "1": someone asked the leader for a full reload from vCenter
    events                            a stream (about the last 1,000 entries), one field `event`, JSON:
                                      {"type": "vm", "id", "name", "datacenter_id", "cluster_id", "uuid"} when
                                      a VM entered or changed name, UUID or placement; {"type": "resync"} after
                                      a full reload. Written in the same script as the lists, so a reader who
                                      sees an event finds the cache already holding it.

Every call goes through a circuit breaker: after one connection error or timeout,
calls fail at once with `CacheUnavailable` for a few seconds instead of each
waiting for its own socket timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django_redis import get_redis_connection

from inventory.snapshot import Scope, Snapshot

logger = logging.getLogger(__name__)

PREFIX = "vmprov:inventory:"
META = "_meta"
ERROR = "_error"
RESOURCE_KINDS = {"pool": "resource_pools", "datastore": "datastores", "network": "networks"}


class CacheUnavailable(Exception):
    """Redis cannot be reached; the message is for people."""


class WatcherLive(Exception):
    """A refresh's write was refused: a watcher keeps the cache live, with newer data than the refresh collected."""


class Fenced(Exception):
    """A watcher write was refused: the writer's lease is no longer the current one."""


# --- Keys --------------------------------------------------------------------------------------


def datacenters_key() -> str:
    return f"{PREFIX}datacenters"


def datacenter_key(datacenter_id: str, kind: str) -> str:
    assert kind in {"clusters", "templates", "vms", "folders"}
    return f"{PREFIX}dc:{datacenter_id}:{kind}"


def resources_key(cluster_id: str) -> str:
    return f"{PREFIX}cluster:{cluster_id}:resources"


def _lock_key(scope: Scope) -> str:
    return f"{PREFIX}lock:{scope.label}"


def _pending_key(scope: Scope) -> str:
    return f"{PREFIX}pending:{scope.label}"


def watcher_key(name: str) -> str:
    assert name in {"fence", "lease", "live", "resync"}
    return f"{PREFIX}watcher:{name}"


def replica_key(replica: str) -> str:
    return f"{PREFIX}watcher:replica:{replica}"


def events_key() -> str:
    return f"{PREFIX}events"


def ttl_for(key: str) -> int:
    return settings.INVENTORY_TEMPLATE_TTL if key.endswith(":templates") else settings.INVENTORY_TTL


# --- Circuit breaker ---------------------------------------------------------------------------


def redis_location() -> str:
    """Where Redis is, without any password the URL may hold."""
    parts = urlsplit(settings.CACHES["default"]["LOCATION"])
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class CircuitBreaker:
    def __init__(self) -> None:
        self._open_until = 0.0
        self._reason = ""
        self._lock = threading.Lock()

    @contextmanager
    def guard(self) -> Iterator[None]:
        now = time.monotonic()
        if now < self._open_until:
            raise CacheUnavailable(
                f"the inventory cache (Redis at {redis_location()}) is unavailable: {self._reason}; "
                f"retrying in {self._open_until - now:.0f} s"
            )
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
            with self._lock:
                self._reason = str(error) or type(error).__name__
                self._open_until = time.monotonic() + settings.INVENTORY_REDIS_BREAKER_SECONDS
            logger.error("Redis unavailable, failing fast for %ss: %s", settings.INVENTORY_REDIS_BREAKER_SECONDS, error)
            raise CacheUnavailable(
                f"the inventory cache (Redis at {redis_location()}) is unavailable: {self._reason}"
            ) from None


breaker = CircuitBreaker()


def _client() -> redis.Redis:
    return get_redis_connection("default")


def ping() -> None:
    with breaker.guard():
        _client().ping()


# --- Reading -----------------------------------------------------------------------------------


@dataclass
class CachedHash:
    """One cached hash: its objects, when they were fetched, and the last refresh error if any."""

    key: str
    items: dict[str, dict]
    meta: dict[str, Any]
    error: dict[str, Any] | None
    live: dict[str, Any] | None = None  # the watcher's live marker, when a watcher keeps the cache current

    @property
    def fetched_at(self) -> float:
        return float(self.meta.get("fetched_at", 0))

    def age(self) -> float:
        return max(0.0, time.time() - self.fetched_at)


def read_hash(key: str) -> CachedHash | None:
    """One hash with its freshness, and whether a watcher keeps it live (same round trip); None when not cached."""
    with breaker.guard():
        pipe = _client().pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.get(watcher_key("live"))
        raw, live = pipe.execute()
    if not raw:
        return None
    fields = {k.decode(): json.loads(v) for k, v in raw.items()}
    meta = fields.pop(META, {})
    error = fields.pop(ERROR, None)
    return CachedHash(key=key, items=fields, meta=meta, error=error, live=json.loads(live) if live else None)


def watcher_live() -> dict[str, Any] | None:
    """The live marker while a watcher applies vCenter's updates (see the key layout); None otherwise."""
    with breaker.guard():
        live = _client().get(watcher_key("live"))
    return json.loads(live) if live else None


def read_fields(key: str, fields: list[str]) -> CachedHash | None:
    """Some objects of one hash (HMGET: a VM's page never reads a datacenter's every VM), with its freshness; None
    when the hash is not cached. Objects the hash does not hold are left out."""
    with breaker.guard():
        raw = _client().hmget(key, [META, ERROR, *fields])
    if raw[0] is None:
        return None
    meta, error = json.loads(raw[0]), json.loads(raw[1]) if raw[1] is not None else None
    items = {field: json.loads(value) for field, value in zip(fields, raw[2:], strict=True) if value is not None}
    return CachedHash(key=key, items=items, meta=meta, error=error)


def cluster_is_unknown(cluster_id: str) -> bool:
    """True only when the cache holds every datacenter's cluster list and none lists this cluster.

    One round trip after the datacenters read; False when any list is missing (it may be there).
    """
    datacenters = read_hash(datacenters_key())
    if datacenters is None:
        return False
    with breaker.guard():
        pipe = _client().pipeline(transaction=False)
        for datacenter_id in datacenters.items:
            pipe.exists(datacenter_key(datacenter_id, "clusters"))
            pipe.hexists(datacenter_key(datacenter_id, "clusters"), cluster_id)
        replies = pipe.execute()
    lists_present, listed = replies[0::2], replies[1::2]
    return all(lists_present) and not any(listed)


def resources_from(cached: CachedHash) -> dict[str, list[dict]]:
    """Split a cluster's resources hash into resource pools, datastores and networks (sorted by name)."""
    grouped: dict[str, list[dict]] = {name: [] for name in RESOURCE_KINDS.values()}
    for field, value in cached.items.items():
        kind = field.split(":", 1)[0]
        if kind in RESOURCE_KINDS:
            grouped[RESOURCE_KINDS[kind]].append(value)
    for items in grouped.values():
        items.sort(key=lambda item: (item.get("path") or item["name"], item["id"]))
    return grouped


# --- Writing -----------------------------------------------------------------------------------


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _hash_fields(items: list[dict], meta: dict, field_of=lambda item: item["id"]) -> dict[str, str]:
    fields = {field_of(item): _encode(item) for item in items}
    fields[META] = _encode(meta)
    return fields


def _resource_fields(resources: dict, meta: dict) -> dict[str, str]:
    fields = {}
    for prefix, group in RESOURCE_KINDS.items():
        for item in resources[group]:
            fields[f"{prefix}:{item['id']}"] = _encode(item)
    fields[META] = _encode({**meta, "cluster": resources["cluster"], "datacenter_id": resources["datacenter_id"]})
    return fields


def snapshot_hashes(snapshot: Snapshot, fetched_at: float) -> dict[str, dict[str, str]]:
    """Every hash a snapshot replaces, as key -> fields (pure; tests call it directly)."""
    meta = {"fetched_at": fetched_at, "scope": snapshot.scope.label}
    hashes: dict[str, dict[str, str]] = {}
    if snapshot.scope.kind == Scope.ALL:
        hashes[datacenters_key()] = _hash_fields(snapshot.datacenters, meta)
    if snapshot.scope.kind in {Scope.ALL, Scope.DATACENTER}:
        for kind in ("clusters", "templates", "vms", "folders"):
            for datacenter_id, items in getattr(snapshot, kind).items():
                hashes[datacenter_key(datacenter_id, kind)] = _hash_fields(items, meta)
    for cluster_id, resources in snapshot.resources.items():
        hashes[resources_key(cluster_id)] = _resource_fields(resources, meta)
    return hashes


def _known_children(client: redis.Redis, scope: Scope) -> tuple[list[str], list[str]]:
    """The datacenter and cluster ids the cache holds now within a scope."""
    if scope.kind == Scope.ALL:
        datacenter_ids = [k.decode() for k in client.hkeys(datacenters_key()) if k.decode() not in {META, ERROR}]
    elif scope.kind == Scope.DATACENTER:
        datacenter_ids = [scope.id]
    else:
        return [], [scope.id]
    pipe = client.pipeline(transaction=False)
    for datacenter_id in datacenter_ids:
        pipe.hkeys(datacenter_key(datacenter_id, "clusters"))
    cluster_ids = [
        field.decode() for fields in pipe.execute() for field in fields if field.decode() not in {META, ERROR}
    ]
    return datacenter_ids, cluster_ids


def _stage(client: redis.Redis, hashes: dict[str, dict[str, str]]) -> dict[str, str]:
    """Write each hash under a temporary key (with its expiry); returns key -> temporary key."""
    token = uuid.uuid4().hex
    staged = client.pipeline(transaction=False)
    temp_keys = {}
    for n, (key, fields) in enumerate(hashes.items()):
        temp = f"{PREFIX}tmp:{token}:{n}"
        temp_keys[key] = temp
        staged.hset(temp, mapping=fields)
        staged.expire(temp, ttl_for(key))
    staged.execute()
    return temp_keys


def _gone_keys(snapshot: Snapshot, old_datacenters: list[str], old_clusters: list[str]) -> list[str]:
    """The cached keys of datacenters and clusters the snapshot's scope no longer holds."""
    gone = []
    if snapshot.scope.kind in {Scope.ALL, Scope.DATACENTER}:
        kept_datacenters = {d["id"] for d in snapshot.datacenters}
        for datacenter_id in old_datacenters:
            if datacenter_id not in kept_datacenters:
                gone += [datacenter_key(datacenter_id, k) for k in ("clusters", "templates", "vms", "folders")]
        gone += [resources_key(c) for c in old_clusters if c not in snapshot.resources]
    return gone


def write_snapshot(snapshot: Snapshot, fetched_at: float | None = None) -> list[str]:
    """Replace the snapshot's scope in the cache atomically; return the keys written.

    Raises `WatcherLive` (and writes nothing) when a watcher is live: its lists are newer.
    """
    fetched_at = fetched_at or time.time()
    hashes = snapshot_hashes(snapshot, fetched_at)
    live = watcher_key("live")
    with breaker.guard():
        client = _client()
        old_datacenters, old_clusters = _known_children(client, snapshot.scope)
        temp_keys = _stage(client, hashes)
        gone = _gone_keys(snapshot, old_datacenters, old_clusters)
        with client.pipeline(transaction=True) as swap:
            try:
                swap.watch(live)
                if swap.exists(live):
                    raise WatcherLive("a watcher keeps the inventory live; this refresh's data is older")
                swap.multi()
                for key, temp in temp_keys.items():
                    swap.rename(temp, key)
                if gone:
                    swap.delete(*gone)
                swap.execute()
            except (WatcherLive, redis.WatchError):
                client.delete(*temp_keys.values())
                raise WatcherLive("a watcher went live during this refresh; its data is newer") from None

        if snapshot.scope.kind == Scope.CLUSTER:
            _merge_cluster(client, snapshot, fetched_at)
    return list(hashes)


def _merge_cluster(client: redis.Redis, snapshot: Snapshot, fetched_at: float) -> None:
    """A cluster refresh updates the cluster's entry and its VMs in its datacenter's hashes."""
    cluster_id = snapshot.scope.id
    for datacenter_id, clusters in snapshot.clusters.items():
        clusters_key = datacenter_key(datacenter_id, "clusters")
        vms_key = datacenter_key(datacenter_id, "vms")
        new_vms = {vm["id"]: _encode(vm) for vm in snapshot.vms.get(datacenter_id, [])}
        with client.pipeline(transaction=True) as pipe:
            for _attempt in range(5):
                try:
                    pipe.watch(clusters_key, vms_key, watcher_key("live"))
                    if pipe.exists(watcher_key("live")):
                        pipe.unwatch()
                        raise WatcherLive("a watcher went live during this refresh; its data is newer")
                    if not pipe.exists(vms_key) or not pipe.exists(clusters_key):
                        pipe.unwatch()
                        return  # the datacenter is not cached: its own refresh will fill it
                    stale = [
                        field
                        for field, value in pipe.hgetall(vms_key).items()
                        if field.decode() not in {META, ERROR}
                        and json.loads(value).get("cluster_id") == cluster_id
                        and field.decode() not in new_vms
                    ]
                    pipe.multi()
                    for cluster in clusters:
                        pipe.hset(clusters_key, cluster["id"], _encode(cluster))
                    if stale:
                        pipe.hdel(vms_key, *stale)
                    if new_vms:
                        pipe.hset(vms_key, mapping=new_vms)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        logger.warning(
            "cluster %s: its datacenter's VM list changed during 5 merges; left for the next refresh",
            cluster_id,
        )


def keys_of_scope(scope: Scope) -> list[str]:
    """The cached keys a scope covers now."""
    with breaker.guard():
        client = _client()
        datacenter_ids, cluster_ids = _known_children(client, scope)
    keys = [datacenters_key()] if scope.kind == Scope.ALL else []
    for datacenter_id in datacenter_ids:
        keys += [datacenter_key(datacenter_id, k) for k in ("clusters", "templates", "vms", "folders")]
    keys += [resources_key(c) for c in cluster_ids]
    return keys


def forget_scope(scope: Scope) -> None:
    """vCenter says the scope no longer exists: drop its cached lists."""
    keys = keys_of_scope(scope)
    with breaker.guard():
        pipe = _client().pipeline(transaction=True)
        if keys:
            pipe.delete(*keys)
        if scope.kind == Scope.DATACENTER:
            pipe.hdel(datacenters_key(), scope.id)
        pipe.execute()


# Only a live key is touched: one that expired meanwhile must not come back holding just an error.
_KEEP_ALIVE_WITH_ERROR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def record_failure(scope: Scope, message: str, failed_at: float | None = None) -> int:
    """A failed refresh keeps the last good data alive for another TTL and notes the error on it.

    Returns how many cached keys were kept.
    """
    error = _encode({"at": failed_at or time.time(), "message": message})
    keys = keys_of_scope(scope)
    with breaker.guard():
        keep = _client().register_script(_KEEP_ALIVE_WITH_ERROR)
        pipe = _client().pipeline(transaction=False)
        for key in keys:
            keep(keys=[key], args=[ERROR, error, ttl_for(key)], client=pipe)
        present = [key for key, kept in zip(keys, pipe.execute(), strict=True) if kept]
    return len(present)


# --- Overview (admin) --------------------------------------------------------------------------


@dataclass
class ScopeSummary:
    key: str
    objects: int
    fetched_at: float
    ttl: int
    error: dict | None


def overview() -> list[ScopeSummary]:
    """Every cached hash with its object count, age and TTL left."""
    keys = keys_of_scope(Scope.everything())
    with breaker.guard():
        pipe = _client().pipeline(transaction=False)
        for key in keys:
            pipe.hlen(key)
            pipe.ttl(key)
            pipe.hmget(key, [META, ERROR])
        replies = pipe.execute()
    summaries = []
    for i, key in enumerate(keys):
        length, ttl, (meta, error) = replies[3 * i : 3 * i + 3]
        if not length:
            continue
        summaries.append(
            ScopeSummary(
                key=key.removeprefix(PREFIX),
                objects=length - (meta is not None) - (error is not None),
                fetched_at=float(json.loads(meta).get("fetched_at", 0)) if meta else 0.0,
                ttl=ttl,
                error=json.loads(error) if error else None,
            )
        )
    return summaries
