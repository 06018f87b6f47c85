"""The auto-approval policy: which planned requests vmprov approves without a person."""

from __future__ import annotations

from django.conf import settings

from provisioning import atlantis
from provisioning.models import VMRequest

AUTO_APPROVAL_REASON = "Auto-approved: below the configured limits and the plan only adds this VM."


def auto_approvable(vm_request: VMRequest, result: atlantis.AtlantisResult) -> bool:
    """Within every configured limit (`VMPROV_AUTO_APPROVE`), and the plan adds exactly this one VM."""
    limits = settings.VMPROV_AUTO_APPROVE
    if not limits:
        return False
    within = (
        vm_request.num_cpus <= limits.get("num_cpus", 0)
        and vm_request.memory_mb <= limits.get("memory_mb", 0)
        and vm_request.disk_size_gb <= limits.get("disk_size_gb", 0)
    )
    counts = [atlantis.plan_counts(project.output) for project in result.projects]
    return within and counts == [(1, 0, 0)]
