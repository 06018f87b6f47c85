"""One refresh of a scope: single flight, collection from vCenter, atomic write, and its record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.utils import timezone

from inventory import cache, refresh_locks, vsphere
from inventory.choices import RefreshOutcome
from inventory.models import RefreshRun
from inventory.snapshot import Scope, VCenterError, VCenterObjectNotFound
from inventory.vsphere import VCenterConfig

logger = logging.getLogger(__name__)


def refresh(
    scope: Scope,
    trigger: str,
    *,
    wait: float = 0,
    config: VCenterConfig | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> RefreshRun | None:
    """Collect `scope` from vCenter into the cache; None when another refresh of it holds the lock.

    Concurrent triggers for the same scope run one collection: the others get None
    at once (or after `wait` seconds). A failure keeps the last good data alive
    and is recorded on the cache and on the returned run.
    """
    started = time.monotonic()
    try:
        with refresh_locks.refresh_lock(scope, blocking_timeout=wait) as acquired:
            if not acquired:
                logger.info("refresh %s (%s) skipped: another one is running", scope.label, trigger)
                return None
            return _collect_and_store(scope, trigger, config, progress, started)
    except cache.CacheUnavailable as error:
        # No lock without Redis: nothing was collected, but the attempt is recorded.
        return RefreshRun.objects.create(
            trigger=trigger,
            scope=scope.label,
            started_at=timezone.now(),
            duration_ms=round((time.monotonic() - started) * 1000),
            outcome=RefreshOutcome.FAILED,
            error=str(error),
        )


def _collect_and_store(
    scope: Scope,
    trigger: str,
    config: VCenterConfig | None,
    progress: Callable[[str], None],
    started: float,
) -> RefreshRun:
    run = RefreshRun.objects.create(trigger=trigger, scope=scope.label, started_at=timezone.now())
    counter = None
    try:
        with vsphere.session(config) as session:
            counter = session.counter
            progress(f"connected; collecting {scope.label}")
            snapshot = vsphere.collect(session, scope)
        progress(f"collected {sum(snapshot.counts().values())} objects; writing the cache")
        cache.write_snapshot(snapshot)
    except cache.WatcherLive as error:
        run.outcome = RefreshOutcome.SKIPPED
        run.error = f"Not written: {error}."
        logger.info("refresh %s not written: %s", scope.label, error)
    except VCenterObjectNotFound as error:
        run.outcome = RefreshOutcome.NOT_FOUND
        run.error = str(error)
        try:
            cache.forget_scope(scope)
        except cache.CacheUnavailable as cache_error:
            run.error += f"\nIts cached lists could not be removed: {cache_error}"
    except (VCenterError, cache.CacheUnavailable) as error:
        run.outcome = RefreshOutcome.FAILED
        run.error = str(error)
        if isinstance(error, VCenterError):
            try:
                kept = cache.record_failure(scope, str(error))
                logger.warning("refresh %s failed; kept %d cached lists alive: %s", scope.label, kept, error)
            except cache.CacheUnavailable as cache_error:
                run.error += f"\nThe cache could not be updated either: {cache_error}"
        else:
            logger.error("refresh %s could not write the cache: %s", scope.label, error)
    except Exception as error:
        # A bug or an error nobody foresaw: the run must not stay "running" for ever, and the task must fail.
        run.outcome = RefreshOutcome.FAILED
        run.error = _unexpected(error, config)
        _finish(run, counter, started)
        logger.exception("refresh %s failed unexpectedly", scope.label)
        raise
    else:
        run.outcome = RefreshOutcome.SUCCEEDED
        run.object_counts = snapshot.counts()
        logger.info("refresh %s succeeded: %s", scope.label, run.object_counts)
    _finish(run, counter, started)
    return run


def _finish(run: RefreshRun, counter: vsphere.SoapCallCounter | None, started: float) -> None:
    run.soap_calls = counter.calls if counter else 0
    run.duration_ms = round((time.monotonic() - started) * 1000)
    run.save()


def _unexpected(error: Exception, config: VCenterConfig | None) -> str:
    """An unforeseen error as "Type: message", without the vCenter password should the message hold it."""
    text = f"unexpected error: {type(error).__name__}: {vsphere.describe_fault(error)}"
    password = (config or VCenterConfig.from_settings()).password
    return text.replace(password, "********") if password else text
