"""What resizing a VM in place does to its guest, by the rules of the vsphere provider (~> 2.4) and vSphere.

- CPUs and memory change in place. A running guest takes more CPUs only with CPU hot add, fewer CPUs only with CPU
  hot remove, more memory only with memory hot add, each already on before the change; otherwise the provider shuts
  the guest down (forced after `shutdown_wait_timeout`, 3 minutes, as `force_power_off` defaults to true), changes
  the VM and powers it on again.
- Memory is never taken from a running guest: less memory always restarts it.
- A Linux guest with 3 GB or less must be off to go above 3 GB, hot add or not (vmprov delivers Linux guests only:
  the request form refuses Windows templates).
- Turning the hot add flags on or off restarts the guest too; a change never does (it edits the values file only).
- Disks only grow ("virtual disks cannot be shrunk"), and grow while the guest runs.
- A VM that is powered off restarts nothing.

The plan does not say any of this: vmprov works it out from what vCenter reports of the VM, and shows it to the
requester and the approver. Plain data in, plain data out: no models, no vCenter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# vSphere: a Linux guest with this much memory or less cannot be hot-added above it.
LINUX_HOT_ADD_LIMIT_MB = 3072
# The provider's default shutdown_wait_timeout, in minutes, before it powers the VM off.
SHUTDOWN_WAIT_MINUTES = 3

_RESTART = f"the provider shuts the guest down (forced after {SHUTDOWN_WAIT_MINUTES} minutes), resizes it, starts it"


def restart_reasons(vm: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Why changing `vm` (num_cpus, memory_mb, power_state and the hot add flags, as vCenter reports them) to
    `wanted` (num_cpus, memory_mb) restarts its guest; empty when it does not. A flag vCenter did not report counts
    as off."""
    if vm.get("power_state") == "poweredOff":
        return []
    reasons = []
    cpus, new_cpus = vm.get("num_cpus"), wanted.get("num_cpus")
    if cpus is not None and new_cpus is not None:
        if new_cpus > cpus and not vm.get("cpu_hot_add_enabled"):
            reasons.append(f"{cpus} → {new_cpus} CPUs without CPU hot add: {_RESTART}")
        elif new_cpus < cpus and not vm.get("cpu_hot_remove_enabled"):
            reasons.append(f"{cpus} → {new_cpus} CPUs without CPU hot remove: {_RESTART}")
    memory, new_memory = vm.get("memory_mb"), wanted.get("memory_mb")
    if memory is not None and new_memory is not None:
        if new_memory < memory:
            reasons.append(f"{memory} → {new_memory} MB: memory is never taken from a running guest; {_RESTART}")
        elif new_memory > memory and not vm.get("memory_hot_add_enabled"):
            reasons.append(f"{memory} → {new_memory} MB without memory hot add: {_RESTART}")
        elif memory <= LINUX_HOT_ADD_LIMIT_MB < new_memory:
            reasons.append(
                f"{memory} → {new_memory} MB: a Linux guest with {LINUX_HOT_ADD_LIMIT_MB} MB or less must be off to go "
                f"above {LINUX_HOT_ADD_LIMIT_MB} MB; {_RESTART}"
            )
    return reasons


def reboot_impact(vm: Mapping[str, Any] | None, wanted: Mapping[str, Any], read_from: str) -> dict[str, Any]:
    """What a change does to the running guest, for the request row and its page: `restarts` (None when vCenter's
    view of the VM is unknown: treat it as a restart), `reasons`, `read_from` (where the VM's facts came from) and
    the facts themselves."""
    if not vm or vm.get("num_cpus") is None or vm.get("memory_mb") is None:
        return {
            "restarts": None,
            "reasons": ["what vCenter reports of the VM is unknown, so a restart cannot be ruled out"],
            "read_from": read_from,
        }
    facts = {
        key: vm.get(key)
        for key in (
            "num_cpus",
            "memory_mb",
            "power_state",
            "cpu_hot_add_enabled",
            "cpu_hot_remove_enabled",
            "memory_hot_add_enabled",
        )
    }
    reasons = restart_reasons(vm, wanted)
    return {"restarts": bool(reasons), "reasons": reasons, "read_from": read_from, "vm": facts}


def shrink_problem(current_gb: int | None, wanted_gb: int) -> str | None:
    """Why the first disk cannot become `wanted_gb` (None when it can): disks only grow."""
    if current_gb is not None and wanted_gb < current_gb:
        return f"the disk is {current_gb} GB and virtual disks cannot be shrunk: ask for {current_gb} GB or more"
    return None
