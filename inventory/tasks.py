"""Background jobs of the inventory (django-q2): full and scoped refreshes, and their schedule.

They are the fallback for when no watcher is live (inventory.watcher): while one is, a refresh job collects
nothing, and one asked for from the admin page asks the watcher for a full reload instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from inventory import cache, refresh_locks, watch_store
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.snapshot import Scope

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "inventory: full refresh"


class RefreshFailed(Exception):
    pass


def refresh_scope(scope_label: str, trigger: str = RefreshTrigger.SCHEDULE) -> dict:
    """The job: refresh one scope ("all", "datacenter:<id>", "cluster:<id>")."""
    # Imported here: queueing a refresh (what the catalog does) must not load the vCenter client.
    from inventory.refresh import refresh

    scope = Scope.from_label(scope_label)
    if _watcher_live():
        with contextlib.suppress(cache.CacheUnavailable):
            refresh_locks.clear_refresh_request(scope)
            if trigger == RefreshTrigger.ADMIN:
                watch_store.request_resync()
        return {"scope": scope_label, "outcome": RefreshOutcome.SKIPPED, "reason": "a watcher keeps the cache live"}
    try:
        run = refresh(scope, trigger)
    finally:
        with contextlib.suppress(cache.CacheUnavailable):  # the claim expires on its own
            refresh_locks.clear_refresh_request(scope)
    if run is None:
        return {"scope": scope_label, "outcome": RefreshOutcome.SKIPPED}
    if run.outcome == RefreshOutcome.FAILED:
        # Failing the task puts it on django-q2's "Failed tasks" page as well as on the run.
        raise RefreshFailed(run.error)
    return {"scope": scope_label, "outcome": run.outcome, "run": run.pk, "counts": run.object_counts}


def _watcher_live() -> bool:
    try:
        return cache.watcher_live() is not None
    except cache.CacheUnavailable:
        return False


def refresh_all(trigger: str = RefreshTrigger.SCHEDULE) -> dict:
    return refresh_scope(Scope.everything().label, trigger)


# Per process: when this process last asked Redis to claim a scope's refresh. Until the refresh lands,
# every read of a stale list would otherwise pay one more Redis call to learn it is already queued.
_recent_claims: dict[str, float] = {}
CLAIM_MEMO_SECONDS = 5.0


def enqueue_refresh(scope: Scope, trigger: str) -> bool:
    """Queue a refresh of `scope` unless one was queued moments ago; never waits for vCenter."""
    now = time.monotonic()
    if _recent_claims.get(scope.label, 0.0) > now:
        return False
    _recent_claims[scope.label] = now + CLAIM_MEMO_SECONDS
    if not refresh_locks.claim_refresh_request(scope):
        return False
    queue_refresh(scope, trigger)
    return True


def queue_refresh(scope: Scope, trigger: str, *, requested_by: str = "") -> None:
    """Queue the refresh job of `scope` once the current transaction commits (at once outside one)."""
    reason = f"{trigger} {requested_by}" if requested_by else trigger
    transaction.on_commit(
        lambda: async_task(
            "inventory.tasks.refresh_scope",
            scope.label,
            trigger,
            task_name=f"refresh {scope.label} ({reason})",
            group="inventory",
        )
    )


def register_schedule() -> Schedule | None:
    """The periodic full refresh, registered idempotently (safe to call at every deploy)."""
    minutes = settings.INVENTORY_REFRESH_MINUTES
    if minutes <= 0:
        Schedule.objects.filter(name=SCHEDULE_NAME).delete()
        return None
    schedule, _ = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "inventory.tasks.refresh_all",
            "kwargs": {"trigger": RefreshTrigger.SCHEDULE},
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
        # A new schedule would run at once; the deploy's warm_cache has just filled the cache.
        create_defaults={
            "func": "inventory.tasks.refresh_all",
            "kwargs": {"trigger": RefreshTrigger.SCHEDULE},
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
            "next_run": timezone.now() + timedelta(minutes=minutes),
        },
    )
    return schedule
