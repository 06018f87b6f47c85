"""The request lifecycle: the one place that says what a request's status means and what may happen next.

It owns the request kinds (a new VM, a change of a delivered VM, its decommission), the statuses and their labels
(per kind where a kind reads them differently), the moves between them, which statuses hold a VM's name (open),
which a person may retry or cancel, which person may do what in which status, which kinds vmprov may approve by
itself, how long each status may go without progress before its job counts as lost, and the ordered steps a page
shows for each kind. Views, admin actions and delivery workers all ask this module; none keeps a rule of its own.

The three kinds share the statuses and their moves: a change or a decommission goes through the same push, plan,
approval, apply and watch as a new VM; what differs is what is pushed, which plan is acceptable and what "done"
means (`delivery.steps` asks the kind).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from provisioning import roles

if TYPE_CHECKING:
    from provisioning.models import VMRequest


class RequestKind(models.TextChoices):
    CREATE = "create", "New VM"
    CHANGE = "change", "Change"
    DECOMMISSION = "decommission", "Decommission"


K = RequestKind
# Kinds that act on a VM vmprov delivered (they point at the request that delivered it).
DAY2_KINDS = frozenset({K.CHANGE, K.DECOMMISSION})
# Kinds vmprov may approve by itself, within the auto-approval policy. A decommission never: a person approves
# every destroy, whatever the settings say.
AUTO_APPROVABLE_KINDS = frozenset({K.CREATE, K.CHANGE})


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

# Where a kind reads a status differently from a new VM (the status itself, and its moves, are the same).
KIND_STATUS_LABELS: dict[str, dict[str, str]] = {
    K.CHANGE: {
        S.APPLIED: "Applied, waiting for vCenter to show the new size",
        S.READY: "Done: vCenter shows the new size",
    },
    K.DECOMMISSION: {
        S.PLANNED: "Destroy planned, waiting for a person's approval",
        S.APPLYING: "Destroying",
        S.APPLIED: "Destroyed, waiting for the VM to leave the inventory",
        S.READY: "Decommissioned",
    },
}


def status_label(status: str, kind: str = K.CREATE) -> str:
    """How a page names `status` for a request of `kind`."""
    return KIND_STATUS_LABELS.get(kind, {}).get(status) or S(status).label


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
# A new VM's request claims its Git directory when its push starts and holds it while the request is open and, once
# delivered (ready), until its decommission finishes: no other new VM may write there. A change or decommission
# claims its VM's directory while it is open: one at a time per VM. Both are database constraints (models).
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
    # Asked of a delivered VM (its create request, ready): a change of its size or notes, or its decommission.
    CHANGE = "change"
    DECOMMISSION = "decommission"


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
    Action.CHANGE: frozenset({S.READY}),
    Action.DECOMMISSION: frozenset({S.READY}),
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
    elif action in (Action.CHANGE, Action.DECOMMISSION):
        return _day2_refusal(action, user, vm_request)
    if vm_request.status not in ACTION_STATUSES[action]:
        status = status_label(vm_request.status, vm_request.kind).lower()
        return f"A request that is {status} cannot be {_PAST[action]}."
    return None


def _day2_refusal(action: Action, user, vm: VMRequest) -> str | None:
    """Why `user` may not ask for a change or the decommission of the VM `vm` delivered (None when they may).
    The database refuses a second open change of one VM too (its directory claim); this says it first, in words."""
    if vm.kind != K.CREATE or vm.status not in ACTION_STATUSES[action]:
        return f"Only a delivered VM can be {_PAST[action]}."
    if vm.decommissioned_at is not None:
        return f"{vm.vm_name} is decommissioned."
    if not roles.acts_for(user, vm):
        return f"Only the VM's requester (or staff) can ask for its {action.value}."
    pending = vm.day2_requests.filter(status__in=OPEN_STATUSES).order_by("id").first()
    if pending is not None:
        what = f"a {pending.get_kind_display().lower()}, {status_label(pending.status, pending.kind).lower()}"
        return f"Request #{pending.pk} ({what}) is still open for {vm.vm_name}: one change at a time."
    return None


_PAST = {
    Action.CANCEL: "cancelled",
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.RETRY: "retried",
    Action.RECHECK: "looked for again",
    Action.MARK_FAILED: "marked as failed",
    Action.CHANGE: "changed",
    Action.DECOMMISSION: "decommissioned",
}


def needs_person(kind: str) -> bool:
    """Whether every request of `kind` waits for a person's approval, whatever the auto-approval settings say."""
    return kind not in AUTO_APPROVABLE_KINDS


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


_SUBMITTED = frozenset({S.SUBMITTED, S.CANCELLED})
_PUSHED = frozenset({S.PUSHING, S.PUSH_FAILED})
_PLANNED = frozenset({S.PLANNING, S.PLAN_FAILED, S.PLANNED, S.REJECTED, S.BRANCH_CHANGED})
_APPLIED = frozenset({S.APPLYING, S.APPLY_FAILED, S.NEEDS_ATTENTION})
_DONE = frozenset({S.APPLIED, S.READY})

STEPS: dict[str, tuple[Step, ...]] = {
    K.CREATE: (
        Step("submitted", "Submitted", _SUBMITTED),
        Step("pushed", "Pushed to Git", _PUSHED),
        Step("planned", "Planned", _PLANNED),
        Step("approved", "Approved", frozenset({S.APPROVED})),
        Step("applied", "Applied", _APPLIED),
        Step("ready", "Ready", _DONE),
    ),
    K.CHANGE: (
        Step("submitted", "Submitted", _SUBMITTED),
        Step("pushed", "Values file pushed", _PUSHED),
        Step("planned", "Planned in place", _PLANNED),
        Step("approved", "Approved", frozenset({S.APPROVED})),
        Step("applied", "Applied", _APPLIED),
        Step("done", "New size in vCenter", _DONE),
    ),
    K.DECOMMISSION: (
        Step("submitted", "Submitted", _SUBMITTED),
        Step("pushed", "Tombstone pushed", _PUSHED),
        Step("planned", "Destroy planned", _PLANNED),
        Step("approved", "Approved by a person", frozenset({S.APPROVED})),
        Step("destroyed", "Destroyed", _APPLIED),
        Step("removed", "Directory removed", _DONE),
    ),
}

# Statuses that end a step badly: the page marks that step failed rather than current.
FAILED_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.BRANCH_CHANGED, S.REJECTED, S.CANCELLED})
_DONE_STATUSES = frozenset({S.READY})


@dataclass(frozen=True)
class StepState:
    step: Step
    state: str  # "done", "current", "failed", "attention" or "todo"


def progress(status: str, kind: str = K.CREATE) -> list[StepState]:
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
