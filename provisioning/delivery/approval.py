"""The auto-approval policy: which planned requests vmprov approves without a person (and, for the approver, why
the others need one), and what a change does to the running guest (read from vCenter when it is planned, shown to
the approver, and part of the policy).

- a new VM: within every configured limit (`VMPROV_AUTO_APPROVE`), and the plan adds exactly this one VM;
- a change: the resulting size within the same limits, the plan changes exactly this VM in place, and the change
  does not restart the guest (`VMPROV_AUTO_APPROVE_RESTARTS` lets restarting changes through;
  `VMPROV_AUTO_APPROVE_CHANGES` turns auto-approval of changes off);
- a decommission: never (`lifecycle.needs_person`); no setting changes that.
"""

from __future__ import annotations

from django.conf import settings

from inventory import catalog
from provisioning import atlantis
from provisioning.lifecycle import RequestKind, needs_person
from provisioning.models import VMRequest
from provisioning.terraform.resize import reboot_impact

AUTO_APPROVAL_REASONS = {
    RequestKind.CREATE: "Auto-approved: below the configured limits and the plan only adds this VM.",
    RequestKind.CHANGE: (
        "Auto-approved: the new size is below the configured limits, the plan only changes this VM in place, and "
        "the guest keeps running."
    ),
}
EXPECTED_COUNTS = {RequestKind.CREATE: (1, 0, 0), RequestKind.CHANGE: (0, 1, 0)}

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


def auto_approval_for_requesters() -> str:
    """What the request form tells people about approval: the limits a new VM is approved within by itself, or that
    every request waits for an approver (`VMPROV_AUTO_APPROVE` unset)."""
    limits = settings.VMPROV_AUTO_APPROVE
    if not limits:
        return "Auto-approval is off: every request waits for an approver."
    sizes = [f"{limits[field]}{unit} {what}" for field, (what, unit) in _LIMITS.items()]
    return (
        f"Approved automatically: up to {', '.join(sizes[:-1])} and {sizes[-1]}. "
        "A request above any of these waits for an approver."
    )


def auto_approvable(vm_request: VMRequest, result: atlantis.AtlantisResult) -> bool:
    """Whether vmprov approves this planned request by itself (see the module)."""
    if needs_person(vm_request.kind) or not settings.VMPROV_AUTO_APPROVE or limits_exceeded(vm_request):
        return False
    if vm_request.kind == RequestKind.CHANGE:
        if not settings.VMPROV_AUTO_APPROVE_CHANGES:
            return False
        # Unknown (None) counts as a restart.
        if vm_request.reboot_impact.get("restarts") is not False and not settings.VMPROV_AUTO_APPROVE_RESTARTS:
            return False
    counts = [atlantis.plan_counts(project.output) for project in result.projects]
    return counts == [EXPECTED_COUNTS[vm_request.kind]]


def why_approval_is_needed(vm_request: VMRequest) -> list[str]:
    """Why a planned request waits for a person (what the approver reads), from the request and its plan."""
    if needs_person(vm_request.kind):
        return ["a decommission is always decided by a person"]
    if not settings.VMPROV_AUTO_APPROVE:
        return ["auto-approval is off: every request is decided by an approver"]
    reasons = limits_exceeded(vm_request)
    expected = EXPECTED_COUNTS[vm_request.kind]
    if atlantis.plan_counts(vm_request.plan_output) != expected:
        planned = vm_request.plan_summary or "no summary line"
        reasons.append(f"the plan does more than {_EXPECTED_WORDS[vm_request.kind]} ({planned})")
    if vm_request.kind == RequestKind.CHANGE:
        if not settings.VMPROV_AUTO_APPROVE_CHANGES:
            reasons.append("auto-approval of changes is off (VMPROV_AUTO_APPROVE_CHANGES)")
        elif vm_request.reboot_impact.get("restarts") is not False and not settings.VMPROV_AUTO_APPROVE_RESTARTS:
            reasons.append("the change may restart the guest")
    if not reasons:
        # Within today's limits and the expected plan: the limits changed since it was planned.
        reasons.append("it was planned under other auto-approval limits than today's")
    return reasons


_EXPECTED_WORDS = {RequestKind.CREATE: "add this one VM", RequestKind.CHANGE: "change this one VM in place"}


def restart_impact(vm_request: VMRequest) -> dict:
    """Whether applying the change restarts the guest, worked out from the VM as vCenter reports it now."""
    try:
        hardware = catalog.vm_hardware(vm_request.vm_moref)
    except (catalog.NotFound, catalog.Unavailable) as error:
        return reboot_impact(None, {}, f"vCenter when the change was planned ({error})")
    wanted = {"num_cpus": vm_request.num_cpus, "memory_mb": vm_request.memory_mb}
    return reboot_impact(hardware, wanted, "vCenter when the change was planned")
