"""Request statuses, their labels, and the state machine: the one place that defines them."""

from django.db import models


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


S = RequestStatus

# from -> the statuses it may move to. Anything else is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.SUBMITTED: frozenset({S.PUSHING, S.CANCELLED, S.PUSH_FAILED}),
    S.PUSHING: frozenset({S.PLANNING, S.PUSH_FAILED}),
    S.PUSH_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.PLANNING: frozenset({S.PLANNED, S.PLAN_FAILED}),
    S.PLAN_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.PLANNED: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.PLANNING}),
    S.APPROVED: frozenset({S.APPLYING, S.PLANNING, S.APPLY_FAILED}),
    # Back to approved or planning only when nothing reached Atlantis (its lock was busy, the branch moved).
    S.APPLYING: frozenset({S.APPLIED, S.APPLY_FAILED, S.NEEDS_ATTENTION, S.APPROVED, S.PLANNING}),
    S.APPLY_FAILED: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.APPLIED: frozenset({S.READY, S.NEEDS_ATTENTION}),
    S.NEEDS_ATTENTION: frozenset({S.READY, S.APPLY_FAILED, S.APPLIED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.READY: frozenset(),
}

# Requests that still hold their VM name (and static IP): one per name per datacenter.
# Failed, rejected and cancelled requests let go of it, so "request again" can reuse it;
# a ready VM is in the inventory, which the form checks too.
CLOSED_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED, S.REJECTED, S.CANCELLED, S.READY})
OPEN_STATUSES = frozenset(set(S) - CLOSED_STATUSES)

# Staff may send these through delivery again.
RETRYABLE_STATUSES = frozenset({S.PUSH_FAILED, S.PLAN_FAILED, S.APPLY_FAILED})

# The requester may cancel until the request is approved.
CANCELLABLE_STATUSES = frozenset({S.SUBMITTED, S.PUSH_FAILED, S.PLANNED, S.PLAN_FAILED, S.APPLY_FAILED})


class IpMode(models.TextChoices):
    DHCP = "dhcp", "DHCP"
    STATIC = "static", "Static IPv4"
