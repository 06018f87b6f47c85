"""vmprov's per-repository lock around every Atlantis call: a django-redis lock, held across processes and hosts.

Why: up to v0.44 every API call without a PR number uses PR 0, so all of them share one working directory and one
lock key on the Atlantis side, and each run's unlock releases the others' locks. Calls for the same repository must
never overlap, so each one is made under this lock:

- Without Redis there is no call: Atlantis must never see two at once, so Redis being down means "busy, try again
  later", never "send anyway".
- The lock outlives the longest call (connect, send, the command's timeout) by ATLANTIS_LOCK_MARGIN, so the lock of a
  worker that died mid-call still covers Atlantis's work.
- When a request was sent and its answer lost (timeout, dropped connection), Atlantis may still be working in that
  shared directory: the caller leaves the lock to expire on its own instead of releasing it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import LockError, RedisError

from provisioning.atlantis.config import AtlantisConfig, AtlantisConfigError

logger = logging.getLogger(__name__)


class RepositoryBusy(Exception):
    """The lock was not had (another call for the repository, or Redis down): nothing was sent. For people."""


class HeldLock:
    """The repository's lock while a call holds it."""

    def __init__(self) -> None:
        self.left_to_expire = False

    def leave_to_expire(self) -> None:
        """Do not release the lock at the end of the call: Atlantis may still be working for it."""
        self.left_to_expire = True


def lock_name(repo: str) -> str:
    """The name of `repo`'s lock in the default cache."""
    return "atlantis:" + repo


def lock_key(repo: str) -> str:
    """The Redis key of `repo`'s lock (cache.lock() builds the same with make_key)."""
    from django.core.cache import cache

    return cache.make_key(lock_name(repo))


@contextmanager
def repository_lock(config: AtlantisConfig, longest_call: float) -> Iterator[HeldLock]:
    """Hold the lock of the configured repository around a call that takes at most `longest_call` seconds, waiting
    up to ATLANTIS_LOCK_WAIT for it. Raises RepositoryBusy when it is not had; releases it at the end unless the
    call left it to expire."""
    from django.core.cache import cache

    if not hasattr(cache, "lock"):
        raise AtlantisConfigError("the default cache must be django-redis: Atlantis calls are serialized by its lock")
    try:
        lock = cache.lock(
            lock_name(config.repo), timeout=longest_call + config.lock_margin, blocking_timeout=config.lock_wait
        )
        acquired = lock.acquire()
    except (RedisError, OSError) as error:
        logger.error("atlantis: Redis is unavailable for the lock on %s: %s", config.repo, error)
        raise RepositoryBusy(
            f"Redis is unavailable ({type(error).__name__}), and vmprov does not call Atlantis without its "
            f"per-repository lock; nothing was sent to Atlantis. Try again once Redis is back."
        ) from None
    if not acquired:
        raise RepositoryBusy(
            f"Another Atlantis call for {config.repo} is running (waited {config.lock_wait:.0f} s for it); "
            "nothing was sent to Atlantis. Try again later."
        )
    held = HeldLock()
    try:
        yield held
    finally:
        if not held.left_to_expire:
            try:
                lock.release()
            except (LockError, RedisError) as error:
                logger.warning("could not release the Atlantis lock for %s: %s", config.repo, error)
