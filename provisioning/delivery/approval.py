"""The auto-approval policy: which planned requests vmprov approves without a person, and why the others need one."""

from __future__ import annotations

from django.conf import settings

from provisioning import atlantis
from provisioning.models import VMRequest

AUTO_APPROVAL_REASON = "Auto-approved: below the configured limits and the plan only adds this VM."

# What each limit measures, for people: (setting suffix, unit).
_LIMITS = {"num_cpus": ("CPUs", ""), "memory_mb": ("memory", " MB"), "disk_size_gb": ("disk", " GB")}


def limits_exceeded(vm_request: VMRequest) -> list[str]:
    """Which auto-approval limits (`VMPROV_AUTO_APPROVE`) the request goes past, one sentence each."""
    limits = settings.VMPROV_AUTO_APPROVE
    if not limits:
        return []
    exceeded = []
    for field, (what, unit) in _LIMITS.items():
        asked, limit = getattr(vm_request, field), limits.get(field, 0)
        if asked > limit:
            exceeded.append(f"{asked}{unit} {what} is above the auto-approval limit of {limit}{unit}")
    return exceeded


def auto_approvable(vm_request: VMRequest, result: atlantis.AtlantisResult) -> bool:
    """Within every configured limit (`VMPROV_AUTO_APPROVE`), and the plan adds exactly this one VM."""
    if not settings.VMPROV_AUTO_APPROVE or limits_exceeded(vm_request):
        return False
    counts = [atlantis.plan_counts(project.output) for project in result.projects]
    return counts == [(1, 0, 0)]


def why_approval_is_needed(vm_request: VMRequest) -> list[str]:
    """Why a planned request waits for a person (what the approver reads), from the request and its plan."""
    if not settings.VMPROV_AUTO_APPROVE:
        return ["auto-approval is off: every request is decided by an approver"]
    reasons = limits_exceeded(vm_request)
    counts = atlantis.plan_counts(vm_request.plan_output)
    if counts != (1, 0, 0):
        planned = vm_request.plan_summary or "no summary line"
        reasons.append(f"the plan does more than add this one VM ({planned})")
    if not reasons:
        # Within today's limits and only an addition: the limits changed since it was planned.
        reasons.append("it was planned under other auto-approval limits than today's")
    return reasons
