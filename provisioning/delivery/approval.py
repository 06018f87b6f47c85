"""The auto-approval policy: which planned requests vmprov approves without a person, and what a change does to the
running guest (read from vCenter when it is planned, shown to the approver, and part of the policy).

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


def auto_approvable(vm_request: VMRequest, result: atlantis.AtlantisResult) -> bool:
    """Whether vmprov approves this planned request by itself (see the module)."""
    limits = settings.VMPROV_AUTO_APPROVE
    if needs_person(vm_request.kind) or not limits:
        return False
    if vm_request.kind == RequestKind.CHANGE:
        if not settings.VMPROV_AUTO_APPROVE_CHANGES:
            return False
        # Unknown (None) counts as a restart.
        if vm_request.reboot_impact.get("restarts") is not False and not settings.VMPROV_AUTO_APPROVE_RESTARTS:
            return False
    within = (
        vm_request.num_cpus <= limits.get("num_cpus", 0)
        and vm_request.memory_mb <= limits.get("memory_mb", 0)
        and vm_request.disk_size_gb <= limits.get("disk_size_gb", 0)
    )
    counts = [atlantis.plan_counts(project.output) for project in result.projects]
    return within and counts == [EXPECTED_COUNTS[vm_request.kind]]


def restart_impact(vm_request: VMRequest) -> dict:
    """Whether applying the change restarts the guest, worked out from the VM as vCenter reports it now."""
    try:
        hardware = catalog.vm_hardware(vm_request.vm_moref)
    except (catalog.NotFound, catalog.Unavailable) as error:
        return reboot_impact(None, {}, f"vCenter when the change was planned ({error})")
    wanted = {"num_cpus": vm_request.num_cpus, "memory_mb": vm_request.memory_mb}
    return reboot_impact(hardware, wanted, "vCenter when the change was planned")
