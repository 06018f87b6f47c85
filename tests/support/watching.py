"""A watcher running in a thread of the test, paced for tests, and a wait for what it should bring about."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from inventory import cache
from inventory.watcher import Watcher, WatchOptions

# One wait per second, a dead leader replaced after 5 s, reconnection attempts at most a second apart, and the
# live marker gone 3 s after vCenter last answered.
FAST = WatchOptions(max_wait=1, lease_seconds=5, backoff_max=1, live_margin=2)


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> float:
    """Poll `condition` every 20 ms until it holds; returns how long that took, fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - started


@contextmanager
def watching(options: WatchOptions = FAST, replica: str = "test-watcher") -> Iterator[Watcher]:
    """A watcher on vmprov's vCenter and Redis settings, live before the block starts, stopped after it."""
    watcher = Watcher(options=options, replica=replica)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), name=f"watcher-{replica}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: cache.watcher_live() is not None, 30, "the watcher went live")
        yield watcher
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the watcher stopped"
