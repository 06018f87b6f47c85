"""Template tags of the request pages: a status as a badge whose colour says how it stands, and text people typed
with its invisible direction controls shown."""

from __future__ import annotations

import re

from django import template
from django.utils.html import format_html

from provisioning import lifecycle
from provisioning.vm_facts import POWER_STATES

register = template.Library()

S = lifecycle.RequestStatus
# Characters that reorder what follows them on screen (Trojan Source): an approver must read what Terraform reads.
DIRECTION_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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


@register.filter
def shown_controls(text: str) -> str:
    """`text` with each direction control written out (`<U+202E>`) instead of reordering the rest of the line."""
    return DIRECTION_CONTROLS.sub(lambda found: f"<U+{ord(found.group()):04X}>", str(text or ""))


@register.filter
def power(state: str) -> str:
    """vCenter's power state in words ("poweredOn" reads "On"), as every page shows it."""
    return POWER_STATES.get(state, state or "—")
