"""What every page's navigation shows about the person: whether they see every request, whether they approve,
and how many requests wait for their decision (a template context processor)."""

from __future__ import annotations

from django.http import HttpRequest

from provisioning import inbox, roles


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    is_approver = roles.is_approver(user)
    return {
        "nav_sees_all": roles.sees_all_requests(user),
        "nav_is_approver": is_approver,
        "nav_inbox_count": len(inbox.waiting_for(user)) if is_approver else 0,
    }
