"""The request lifecycle: the one place that says what a request's status means and what may happen next.

It owns the statuses and their labels, the moves between them, which statuses hold a VM's name (open),
which a person may retry or cancel, which person may do what in which status, how long each status may go
without progress before its job counts as lost, and the ordered steps a page shows. Views, admin actions and
delivery workers all ask this module; none keeps a rule of its own.

A request kind (today: create) has its own steps; a new kind adds its steps here and its statuses to the
tables below.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import models

from provisioning import roles


class RequestStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    PUSHING = "pushing", "Pushing to Git"
    PUSH_FAILED = "push_failed", "Push failed"
    PLANNING = "planning", "Planning"
    PLANNED = "planned", "Planned, waiting for approval"
    PLAN_FAILED = "plan_failed", "Plan failed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    APPLYING = "applying", "Applying"
    APPLY_FAILED = "apply_failed", "Apply failed"
    APPLIED = "applied", "Applied, waiting for the VM to appear"
    READY = "ready", "Ready"
    NEEDS_ATTENTION = "needs_attention", "Needs attention (outcome unknown)"
    BRANCH_CHANGED = "branch_changed", "Stopped: its branch changed outside vmprov"


S = RequestStatus

# from -> the statuses it may move to. Anything else is refused (VMRequest.transition asks).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.SUBMITTED: frozenset({S.PUSHING, S.CANCELLED, S.PUSH_FAILED}),
    # Back to submitted when the push job was lost with its worker: the reaper queues a new one.
    S.PUSHING: frozenset({S.PLANNING, S.PUSH_FAILED, S.SUBMITTED}),
    S.PUSH_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.PLANNING: frozenset({S.PLANNED, S.PLAN_FAILED, S.BRANCH_CHANGED}),
    S.PLAN_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.PLANNED: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.PLANNING, S.BRANCH_CHANGED}),
    S.APPROVED: frozenset({S.APPLYING, S.PLANNING, S.APPLY_FAILED}),
    # Back to approved only when nothing reached Atlantis (its lock was busy).
    S.APPLYING: frozenset({S.APPLIED, S.APPLY_FAILED, S.NEEDS_ATTENTION, S.APPROVED, S.BRANCH_CHANGED}),
    S.APPLY_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.APPLIED: frozenset({S.READY, S.NEEDS_ATTENTION}),
    S.NEEDS_ATTENTION: frozenset({S.READY, S.APPLY_FAILED, S.APPLIED}),
    # Somebody else's commit on the request's branch: nothing more is planned or applied until a person decides.
    S.BRANCH_CHANGED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.READY: frozenset(),
}

# Requests that let go of their VM name (and static IP): failed, rejected and cancelled ones, so that
# "request again" can reuse it; a ready VM is in the inventory, which the form checks too.
CLOSED_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.REJECTED, S.CANCELLED, S.READY})
OPEN_STATUSES = frozenset(set(S) - CLOSED_STATUSES)
# A request's Git directory is claimed when its push starts (or at submit) and held while the request is open
# and, once delivered, while its VM lives: no other request may write there (a database constraint).
DIRECTORY_HOLDING_STATUSES = OPEN_STATUSES | {S.READY}
# Statuses nothing moves out of by itself: a page stops following the request there.
SETTLED_STATUSES = frozenset(
    {S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.BRANCH_CHANGED, S.REJECTED, S.CANCELLED, S.READY}
)
FINAL_STATUSES = frozenset(status for status, moves in TRANSITIONS.items() if not moves)

# Staff may send these through delivery again.
# (A retry after a changed branch pushes vmprov's own configuration again, and plans it afresh.)
RETRYABLE_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.BRANCH_CHANGED})
# The requester may cancel until the request is approved.
CANCELLABLE_STATUSES = frozenset(
    {S.SUBMITTED, S.PUSH_FAILED, S.PLANNED, S.PLAN_FAILED, S.APPLY_FAILED, S.BRANCH_CHANGED}
)

# Where a request goes when a delivery step breaks unexpectedly, by the status it was in. An apply in flight
# has an unknown outcome: a person looks; it is never marked failed (or retried) blindly.
FAILED_FROM: dict[str, str] = {
    S.SUBMITTED: S.PUSH_FAILED,
    S.PUSHING: S.PUSH_FAILED,
    S.PLANNING: S.PLAN_FAILED,
    S.APPROVED: S.APPLY_FAILED,
    S.APPLYING: S.NEEDS_ATTENTION,
}

# The delivery step that moves a request on from each status (the reaper requeues it when it was lost).
# An apply in flight is absent on purpose: it is never requeued.
NEXT_STEP: dict[str, str] = {
    S.SUBMITTED: "push",
    S.PUSHING: "push",
    S.PLANNING: "plan",
    S.APPROVED: "apply",
    S.APPLIED: "watch",
}

# A busy Atlantis lock: the same call is made again this much later.
BUSY_RETRY_SECONDS = 60


def stale_after() -> dict[str, timedelta]:
    """How long each working status may go without progress before its job counts as lost with a worker."""
    lock_wait = settings.ATLANTIS_LOCK_WAIT + settings.ATLANTIS_CONNECT_TIMEOUT
    return {
        S.SUBMITTED: timedelta(minutes=10),
        S.PUSHING: timedelta(seconds=3 * settings.VMPROV_GIT_TIMEOUT + 300),
        S.PLANNING: timedelta(seconds=settings.ATLANTIS_PLAN_TIMEOUT + lock_wait + BUSY_RETRY_SECONDS + 300),
        S.APPROVED: timedelta(seconds=lock_wait + BUSY_RETRY_SECONDS + 300),
        S.APPLYING: timedelta(seconds=settings.ATLANTIS_APPLY_TIMEOUT + lock_wait + 600),
        S.APPLIED: timedelta(seconds=settings.VMPROV_READY_CHECKS * settings.VMPROV_READY_CHECK_SECONDS + 600),
    }


# --- What people may do ------------------------------------------------------------------------------------------


class Action(enum.StrEnum):
    CANCEL = "cancel"
    APPROVE = "approve"
    REJECT = "reject"
    RETRY = "retry"
    RECHECK = "recheck"
    MARK_FAILED = "mark_failed"


# The statuses each action starts from.
ACTION_STATUSES: dict[Action, frozenset[str]] = {
    Action.CANCEL: CANCELLABLE_STATUSES,
    Action.APPROVE: frozenset({S.PLANNED}),
    Action.REJECT: frozenset({S.PLANNED}),
    Action.RETRY: RETRYABLE_STATUSES,
    # Settling a request whose apply outcome is unknown: only while it is unknown. An approved or applying
    # request may still create its VM; marking it failed would release its name to somebody else.
    Action.RECHECK: frozenset({S.NEEDS_ATTENTION}),
    Action.MARK_FAILED: frozenset({S.NEEDS_ATTENTION}),
}


def refusal(action: Action, user, vm_request) -> str | None:
    """Why `user` may not do `action` to `vm_request` now, for that person to read; None when they may."""
    if action in (Action.APPROVE, Action.REJECT):
        if not roles.is_approver(user):
            return f"Only members of the approvers group {action.value} requests."
        if user.pk == vm_request.requester_id:
            return "Nobody decides on their own request; cancel it instead."
    elif action is Action.CANCEL and not roles.acts_for(user, vm_request):
        return "Only the requester (or staff) can cancel this request."
    elif action is Action.RETRY and not user.is_staff:
        return "Only staff retry a failed delivery."
    elif action in (Action.RECHECK, Action.MARK_FAILED) and not user.is_staff:
        return "Only staff settle a request that needs attention."
    if vm_request.status not in ACTION_STATUSES[action]:
        status = S(vm_request.status).label.lower()
        return f"A request that is {status} cannot be {_PAST[action]}."
    return None


_PAST = {
    Action.CANCEL: "cancelled",
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.RETRY: "retried",
    Action.RECHECK: "looked for again",
    Action.MARK_FAILED: "marked as failed",
}


def allowed_actions(user, vm_request) -> frozenset[Action]:
    """Everything `user` may do to `vm_request` now (what a page offers)."""
    return frozenset(action for action in Action if refusal(action, user, vm_request) is None)


# --- The steps a page shows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of a request kind, and the statuses in which the request is at that step."""

    name: str
    label: str
    statuses: frozenset[str]


STEPS: dict[str, tuple[Step, ...]] = {
    "create": (
        Step("submitted", "Submitted", frozenset({S.SUBMITTED, S.CANCELLED})),
        Step("pushed", "Pushed to Git", frozenset({S.PUSHING, S.PUSH_FAILED})),
        Step("planned", "Planned", frozenset({S.PLANNING, S.PLAN_FAILED, S.PLANNED, S.REJECTED, S.BRANCH_CHANGED})),
        Step("approved", "Approved", frozenset({S.APPROVED})),
        Step("applied", "Applied", frozenset({S.APPLYING, S.APPLY_FAILED, S.NEEDS_ATTENTION})),
        Step("ready", "Ready", frozenset({S.APPLIED, S.READY})),
    ),
}

# Statuses that end a step badly: the page marks that step failed rather than current.
FAILED_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.BRANCH_CHANGED, S.REJECTED, S.CANCELLED})
_DONE_STATUSES = frozenset({S.READY})


@dataclass(frozen=True)
class StepState:
    step: Step
    state: str  # "done", "current", "failed", "attention" or "todo"


def progress(status: str, kind: str = "create") -> list[StepState]:
    """The steps of a request of `kind` in `status`, each done, current, failed or still to come."""
    steps = STEPS[kind]
    current = next(index for index, step in enumerate(steps) if status in step.statuses)
    states = []
    for index, step in enumerate(steps):
        if index < current or (index == current and status in _DONE_STATUSES):
            state = "done"
        elif index > current:
            state = "todo"
        elif status in FAILED_STATUSES:
            state = "failed"
        elif status == S.NEEDS_ATTENTION:
            state = "attention"
        else:
            state = "current"
        states.append(StepState(step, state))
    return states
