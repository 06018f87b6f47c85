"""Template tags of the request pages: a status as a badge whose colour says how it stands."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from provisioning import lifecycle

register = template.Library()

S = lifecycle.RequestStatus


def status_tone(status: str) -> str:
    """How a status stands, for its colour: ok, waiting (for a person), attention, failed, closed or working."""
    if status == S.READY:
        return "ok"
    if status == S.PLANNED:
        return "waiting"
    if status == S.NEEDS_ATTENTION:
        return "attention"
    if status in (S.REJECTED, S.CANCELLED):
        return "closed"
    if status in lifecycle.FAILED_STATUSES:
        return "failed"
    return "working"


@register.simple_tag
def status_badge(status: str, kind: str = lifecycle.RequestKind.CREATE) -> str:
    """The status as a badge, worded for the request's kind (a ready decommission reads "Decommissioned")."""
    return format_html(
        '<span class="badge badge-{}">{}</span>', status_tone(status), lifecycle.status_label(status, kind)
    )
