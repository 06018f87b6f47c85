"""The inventory's refresh locks (single flight: one collection of a scope at a time, kept alive while it runs) and
the de-duplication of queued refreshes (a burst of stale reads queues one). Keys: `inventory.cache`'s layout."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from inventory import cache
from inventory.cache import _lock_key, _pending_key
from inventory.snapshot import Scope

logger = logging.getLogger(__name__)


@contextmanager
def refresh_lock(scope: Scope, blocking_timeout: float = 0) -> Iterator[bool]:
    """Single flight: hold the scope's refresh lock while collecting; yields whether we got it.

    The lock expires after INVENTORY_LOCK_TIMEOUT (a crashed worker cannot hold it
    forever); a thread extends it while the collection runs, however long that is.
    """
    timeout = settings.INVENTORY_LOCK_TIMEOUT
    with cache.breaker.guard():
        lock = cache._client().lock(
            _lock_key(scope),
            timeout=timeout,
            blocking=blocking_timeout > 0,
            blocking_timeout=blocking_timeout or None,
            sleep=0.1,
            thread_local=False,  # the keeper thread extends the lock the caller holds
        )
        acquired = lock.acquire()
    if not acquired:
        yield False
        return
    done = threading.Event()

    def keep_alive() -> None:
        while not done.wait(timeout / 3):
            try:
                lock.reacquire()
            except Exception as error:  # Redis gone: the collection finishes; its write will fail loudly
                logger.warning("could not extend refresh lock for %s: %s", scope.label, error)
                return

    keeper = threading.Thread(target=keep_alive, name=f"lock-keeper-{scope.label}", daemon=True)
    keeper.start()
    try:
        yield True
    finally:
        done.set()
        keeper.join()
        try:
            lock.release()
        except Exception as error:
            logger.warning("could not release refresh lock for %s: %s", scope.label, error)


def refresh_running(scope: Scope) -> bool:
    with cache.breaker.guard():
        return bool(cache._client().exists(_lock_key(scope)))


def claim_refresh_request(scope: Scope, seconds: int = 60) -> bool:
    """True for the first caller in `seconds`: a burst of stale reads enqueues one refresh."""
    with cache.breaker.guard():
        return bool(cache._client().set(_pending_key(scope), "1", nx=True, ex=seconds))


def refresh_requested(scope: Scope) -> bool:
    """Whether a refresh of `scope` is queued and has not started yet (its claim is held)."""
    with cache.breaker.guard():
        return bool(cache._client().exists(_pending_key(scope)))


def clear_refresh_request(scope: Scope) -> None:
    with cache.breaker.guard():
        cache._client().delete(_pending_key(scope))
