"""An approver's inbox: the planned requests a person may decide now (lifecycle.allowed_actions says who may)."""

from __future__ import annotations

from provisioning import lifecycle, roles
from provisioning.models import VMRequest


def waiting_for(user) -> list[VMRequest]:
    """Requests waiting for `user`'s decision, the longest-waiting first; empty for people who are not approvers."""
    if not roles.is_approver(user):
        return []
    planned = (
        VMRequest.objects.filter(status__in=lifecycle.ACTION_STATUSES[lifecycle.Action.APPROVE])
        .exclude(requester=user)
        .select_related("requester")
        .order_by("updated_at", "id")
    )
    return [r for r in planned if lifecycle.refusal(lifecycle.Action.APPROVE, user, r) is None]
