"""Who may do what with VM requests: the one place that defines the roles.

Requesters see and act on their own requests. Members of the approvers group (and superusers) approve or
reject other people's planned requests and see every request, as staff do. Staff retry failed deliveries and
resolve requests that need attention.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q

APPROVERS_GROUP = "approvers"


def is_approver(user) -> bool:
    return bool(user.is_active and (user.is_superuser or user.groups.filter(name=APPROVERS_GROUP).exists()))


def sees_all_requests(user) -> bool:
    return bool(user.is_staff or is_approver(user))


def acts_for(user, vm_request) -> bool:
    """The requester (or staff) may cancel the request."""
    return vm_request.requester_id == user.pk or bool(user.is_staff)


def staff_emails() -> list[str]:
    """Everyone who settles requests that need attention (active staff with an address)."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(set(staff.values_list("email", flat=True)))


def approver_emails(except_user_id: int) -> list[str]:
    approvers = get_user_model().objects.filter(Q(groups__name=APPROVERS_GROUP) | Q(is_superuser=True), is_active=True)
    return sorted({user.email for user in approvers.exclude(pk=except_user_id) if user.email})
