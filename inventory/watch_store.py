"""The watcher's side of the inventory's Redis: its lease with a fencing token, the fenced Lua writes that apply
vCenter's changes (a reader sees each key before or after, never half), the live marker readers look at, each
replica's status, and the stream of VM arrivals delivery listens to. The keys are in `inventory.cache`'s layout;
the watcher (`inventory.watcher`) is the only writer here.

A watcher write changes a list whole (DEL + HSET) or some of its objects (HSET/HDEL), renews the key's TTL and
clears its `_error`, all in one script: a reader sees a list before or after, never half. A partial change to a key
that is not there (Redis restarted, the key expired) writes nothing and names the key, and the watcher rewrites
everything from its mirror.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import redis
from django.conf import settings

from inventory import cache
from inventory.cache import (
    META,
    Fenced,
    _encode,
    _gone_keys,
    _known_children,
    _resource_fields,
    _stage,
    events_key,
    replica_key,
    resources_key,
    snapshot_hashes,
    ttl_for,
    watcher_key,
)
from inventory.snapshot import Scope, Snapshot

EVENTS_KEPT = 1000
LIVE_MARGIN_SECONDS = 10
REPLICA_STATUS_SECONDS = 60

_ACQUIRE_LEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
"""

_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

# KEYS: lease, live, resync. ARGV: token, live marker ('' drops it), its TTL in ms.
# Returns whether someone asked for a full reload (and takes the request).
_HEARTBEAT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
if ARGV[2] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return redis.call('DEL', KEYS[3])
"""

# KEYS: lease, live, events, then one inventory key per change. ARGV: token, the changes (JSON list, one per key:
# {partial, drop, set: [field, json, ...], remove: [field, ...], meta, ttl}), the events (JSON list of strings),
# live marker, its TTL in ms, how many events to keep.
_APPLY_CHANGES = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
local changes = cjson.decode(ARGV[2])
local missing = {}
for i, change in ipairs(changes) do
  if change.partial and redis.call('EXISTS', KEYS[i + 3]) == 0 then missing[#missing + 1] = KEYS[i + 3] end
end
if #missing > 0 then return missing end
for i, change in ipairs(changes) do
  local key = KEYS[i + 3]
  if change.drop then
    redis.call('DEL', key)
  else
    if not change.partial then redis.call('DEL', key) end
    if #change.remove > 0 then redis.call('HDEL', key, unpack(change.remove)) end
    for first = 1, #change.set, 1000 do
      redis.call('HSET', key, unpack(change.set, first, math.min(first + 999, #change.set)))
    end
    redis.call('HDEL', key, '_error')
    redis.call('HSET', key, '_meta', change.meta)
    redis.call('EXPIRE', key, change.ttl)
  end
end
for _, event in ipairs(cjson.decode(ARGV[3])) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'event', event)
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end
return {}
"""

# KEYS: lease, live, events, then ARGV[2] pairs (temporary key, key), then the keys to delete.
# ARGV: token, number of pairs, the resync event, live marker, its TTL in ms, how many events to keep.
_REPLACE_ALL = """
local pairs_count = tonumber(ARGV[2])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  for i = 0, pairs_count - 1 do redis.call('DEL', KEYS[4 + 2 * i]) end
  return redis.error_reply('FENCED')
end
for i = 0, pairs_count - 1 do redis.call('RENAME', KEYS[4 + 2 * i], KEYS[5 + 2 * i]) end
for j = 4 + 2 * pairs_count, #KEYS do redis.call('DEL', KEYS[j]) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'event', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
return 1
"""


def _fenced(call):
    """Run a watcher script; its FENCED error becomes `Fenced`."""
    try:
        return call()
    except redis.ResponseError as error:
        if "FENCED" in str(error):
            raise Fenced("this replica's lease is no longer the current one") from None
        raise


def acquire_lease(replica: str, seconds: float) -> str | None:
    """The lease's token when this replica now leads; None while another replica's lease is alive."""
    with cache.breaker.guard():
        token = cache._client().register_script(_ACQUIRE_LEASE)(
            keys=[watcher_key("lease"), watcher_key("fence")], args=[replica, int(seconds * 1000)]
        )
    return token.decode() if token else None


def renew_lease(token: str, seconds: float) -> bool:
    """Extend the lease while it is still `token`; False once it expired or another replica holds it."""
    with cache.breaker.guard():
        return bool(
            cache._client().register_script(_RENEW_LEASE)(
                keys=[watcher_key("lease")], args=[token, int(seconds * 1000)]
            )
        )


def release_lease(token: str) -> None:
    """Give the lease up (and the live marker with it) so a standby takes over at once."""
    with cache.breaker.guard():
        cache._client().register_script(_RELEASE_LEASE)(keys=[watcher_key("lease"), watcher_key("live")], args=[token])


def lease_holder() -> str | None:
    with cache.breaker.guard():
        token = cache._client().get(watcher_key("lease"))
    return token.decode() if token else None


def heartbeat(token: str, live: dict | None, seconds: float) -> bool:
    """Renew (or, with None, drop) the live marker under the lease; returns whether a full reload was asked for."""
    with cache.breaker.guard():
        return bool(
            _fenced(
                lambda: cache._client().register_script(_HEARTBEAT)(
                    keys=[watcher_key("lease"), watcher_key("live"), watcher_key("resync")],
                    args=[token, _encode(live) if live else "", int(seconds * 1000)],
                )
            )
        )


def request_resync() -> None:
    """Ask the leading watcher to reload everything from vCenter (it looks after its current wait)."""
    with cache.breaker.guard():
        cache._client().set(watcher_key("resync"), "1")


@dataclass
class KeyChange:
    """What the watcher changes in one cached key.

    The whole hash (`fields`, `partial=False`), some of its fields (`fields` set and `removed` deleted,
    `partial=True`), or the key itself gone (`drop`). `meta` is the key's new `_meta`.
    """

    key: str
    fields: dict[str, str] = dataclass_field(default_factory=dict)
    removed: list[str] = dataclass_field(default_factory=list)
    meta: dict[str, Any] = dataclass_field(default_factory=dict)
    partial: bool = False
    drop: bool = False


def list_change(key: str, items: list[dict], meta: dict) -> KeyChange:
    """A whole list, as its hash holds it."""
    return KeyChange(key, {item["id"]: _encode(item) for item in items}, meta=meta)


def resources_change(cluster_id: str, resources: dict, meta: dict) -> KeyChange:
    """A cluster's whole resources hash (pools, datastores, networks; the cluster and its datacenter in `_meta`)."""
    fields = _resource_fields(resources, meta)
    return KeyChange(resources_key(cluster_id), fields, meta=json.loads(fields.pop(META)))


def objects_change(key: str, upserted: list[dict], removed: list[str], meta: dict) -> KeyChange:
    """Some objects of a list: `upserted` written over their fields, `removed` ids deleted."""
    return KeyChange(key, {item["id"]: _encode(item) for item in upserted}, removed, meta, partial=True)


def apply_changes(
    token: str, changes: list[KeyChange], events: list[dict], live: dict, live_seconds: float
) -> list[str]:
    """Write the watcher's changes, its events and its live marker in one fenced script.

    Returns the keys a partial change found missing; then nothing was written. Raises `Fenced`.
    """
    encoded = [
        {
            "partial": change.partial,
            "drop": change.drop,
            "set": [item for pair in change.fields.items() for item in pair],
            "remove": change.removed,
            "meta": _encode(change.meta),
            "ttl": ttl_for(change.key),
        }
        for change in changes
    ]
    with cache.breaker.guard():
        missing = _fenced(
            lambda: cache._client().register_script(_APPLY_CHANGES)(
                keys=[watcher_key("lease"), watcher_key("live"), events_key(), *(c.key for c in changes)],
                args=[
                    token,
                    _encode(encoded),
                    _encode([_encode(event) for event in events]),
                    _encode(live),
                    int(live_seconds * 1000),
                    EVENTS_KEPT,
                ],
            )
        )
    return [key.decode() for key in missing]


def replace_everything(token: str, snapshot: Snapshot, live: dict, live_seconds: float, fetched_at: float) -> list[str]:
    """Replace the whole inventory (a full-scope snapshot) in one fenced script, drop every key it no longer
    holds, announce a resync and set the live marker. Returns the keys written. Raises `Fenced`."""
    assert snapshot.scope.kind == Scope.ALL
    hashes = snapshot_hashes(snapshot, fetched_at)
    for fields in hashes.values():
        fields[META] = _encode({**json.loads(fields[META]), "source": "watcher"})
    with cache.breaker.guard():
        client = cache._client()
        old_datacenters, old_clusters = _known_children(client, snapshot.scope)
        temp_keys = _stage(client, hashes)
        gone = _gone_keys(snapshot, old_datacenters, old_clusters)
        _fenced(
            lambda: client.register_script(_REPLACE_ALL)(
                keys=[
                    watcher_key("lease"),
                    watcher_key("live"),
                    events_key(),
                    *(k for key, temp in temp_keys.items() for k in (temp, key)),
                    *gone,
                ],
                args=[
                    token,
                    len(temp_keys),
                    _encode({"type": "resync"}),
                    _encode(live),
                    int(live_seconds * 1000),
                    EVENTS_KEPT,
                ],
            )
        )
    return list(hashes)


def publish_replica_status(replica: str, status: dict) -> None:
    """One replica's status for the admin page; it expires if the replica stops saying it."""
    with cache.breaker.guard():
        cache._client().set(replica_key(replica), _encode(status), ex=REPLICA_STATUS_SECONDS)


def replica_statuses() -> list[dict]:
    """Every watcher replica that reported in the last minute, the leader first."""
    with cache.breaker.guard():
        client = cache._client()
        keys = list(client.scan_iter(match=replica_key("*"), count=1000))
        values = client.mget(keys) if keys else []
    statuses = [json.loads(value) for value in values if value]
    return sorted(statuses, key=lambda status: (not status.get("leader"), status.get("replica", "")))


def last_event_id() -> str:
    """The id of the newest event ("0-0" when there is none): where a new reader starts."""
    with cache.breaker.guard():
        newest = cache._client().xrevrange(events_key(), count=1)
    return newest[0][0].decode() if newest else "0-0"


def read_events(after: str, wait: float) -> list[tuple[str, dict]]:
    """The events after id `after`, waiting up to `wait` seconds for one (kept below the socket timeout)."""
    socket_timeout = settings.CACHES["default"]["OPTIONS"].get("SOCKET_TIMEOUT") or 1.0
    block_ms = max(1, int(min(wait, socket_timeout * 0.8) * 1000))
    with cache.breaker.guard():
        replies = cache._client().xread({events_key(): after}, count=500, block=block_ms)
    return [
        (entry_id.decode(), json.loads(fields[b"event"]))
        for _stream, entries in replies or []
        for entry_id, fields in entries
    ]
