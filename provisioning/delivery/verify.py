"""After an apply: what each kind of request must find in vCenter before it is done.

- a new VM: listed by the inventory after a refresh of its cluster (by name, and by the UUID Terraform reported),
  with the CPUs, memory and first disk that were approved, read from vCenter now;
- a change: the inventory, refreshed explicitly (vcsim sends no property update for a reconfiguration), lists the
  new CPUs and memory, and vCenter reports the approved CPUs, memory and first disk;
- a decommission: the inventory no longer lists the VM and vCenter has no such VM; then a commit that removes the
  VM's directory is pushed and merged (the request is done only once it is merged).

`outcome()` answers with an `Outcome`: done (with the history line and what to save), not what was approved (a person
looks), or not yet / not known now (`delivery.steps.watch` looks again later).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from inventory import catalog
from provisioning import gitops
from provisioning.delivery.branch_guard import hardware_problem
from provisioning.lifecycle import RequestKind
from provisioning.models import VMRequest

_CREATED_ID = re.compile(r"vsphere_virtual_machine\.\w+: Creation complete after [^\[]*\[id=([0-9a-fA-F-]{36})\]")


@dataclass
class Outcome:
    done: str = ""  # the history line once done
    changes: dict = field(default_factory=dict)  # what the request saves with it
    mismatch: str = ""  # not what was approved: a person must look
    problem: str = ""  # vCenter or Git could not tell now
    waiting: str = ""  # what is not there yet, for the history


def created_vm_uuid(apply_output: str) -> str:
    """The VM Terraform created: the vsphere provider's resource id is the VM's (BIOS) UUID."""
    found = _CREATED_ID.findall(apply_output or "")
    return found[-1].lower() if found else ""


def outcome(vm_request: VMRequest) -> Outcome:
    """What the request's apply led to, for its kind (see the module)."""
    if vm_request.kind == RequestKind.CHANGE:
        return _changed(vm_request)
    if vm_request.kind == RequestKind.DECOMMISSION:
        return _destroyed(vm_request)
    return _created(vm_request)


def _created(vm_request: VMRequest) -> Outcome:
    found = catalog.find_vm(
        vm_request.datacenter_id, vm_request.cluster_id, vm_request.vm_name, created_vm_uuid(vm_request.apply_output)
    )
    waiting = "The VM is not in the inventory yet"
    if found.vm is None:
        return Outcome(problem=found.problem, waiting=waiting)
    vm = found.vm
    checked = _hardware(vm_request, vm)
    if checked.mismatch or checked.problem:
        return Outcome(mismatch=checked.mismatch, problem=checked.problem, waiting=waiting)
    if (vm.get("num_cpus"), vm.get("memory_mb")) != (vm_request.num_cpus, vm_request.memory_mb):
        # vCenter has the approved size, the lists still the template's (the clone's reconfiguration not seen yet:
        # vcsim sends no update for it): without a fresh look the VM's page would show drift that is not there.
        with contextlib.suppress(catalog.Unavailable):
            catalog.ask_for_a_fresh_look()
    return Outcome(
        done=f"VM {vm['name']} is in the inventory as {vm['id']} (instance UUID {vm['instance_uuid']}).",
        changes={"vm_moref": vm["id"], "vm_instance_uuid": vm["instance_uuid"]},
    )


def _changed(vm_request: VMRequest) -> Outcome:
    found = catalog.refresh_vm(vm_request.datacenter_id, vm_request.vm_moref, vm_request.cluster_id)
    waiting = "The inventory does not show the new size yet"
    if found.vm is None:
        if found.problem:
            return Outcome(problem=found.problem, waiting=waiting)
        return Outcome(mismatch=f"VM {vm_request.vm_moref} is no longer in the inventory after its change.")
    vm = found.vm
    listed = (vm.get("num_cpus"), vm.get("memory_mb"))
    if listed != (vm_request.num_cpus, vm_request.memory_mb):
        with contextlib.suppress(catalog.Unavailable):  # asked again at the next check
            catalog.ask_for_a_fresh_look()
        return Outcome(
            problem=f"the inventory lists {listed[0]} CPUs and {listed[1]} MB (refreshed {vm['id']})", waiting=waiting
        )
    checked = _hardware(vm_request, vm)
    if checked.mismatch or checked.problem:
        return Outcome(mismatch=checked.mismatch, problem=checked.problem, waiting=waiting)
    return Outcome(
        done=(
            f"vCenter shows the new size of {vm['name']}: {vm_request.num_cpus} CPU, {vm_request.memory_mb} MB, "
            f"{vm_request.disk_size_gb} GB."
        )
    )


def _hardware(vm_request: VMRequest, vm: dict) -> Outcome:
    try:
        hardware = catalog.vm_hardware(vm["id"])
    except (catalog.NotFound, catalog.Unavailable) as error:
        return Outcome(problem=f"VM {vm['id']} could not be checked in vCenter: {error}")
    mismatch = hardware_problem(vm_request, hardware)
    if mismatch is None:
        return Outcome()
    return Outcome(
        mismatch=(
            f"VM {vm['name']} ({vm['id']}) is not what was approved: {mismatch}. It is not marked done; a person must "
            "look (someone may have applied other values, or resized it in vCenter)."
        )
    )


def _destroyed(vm_request: VMRequest) -> Outcome:
    waiting = "The VM is still in the inventory"
    found = catalog.refresh_vm(vm_request.datacenter_id, vm_request.vm_moref, vm_request.cluster_id)
    if found.vm is not None or found.problem:
        return Outcome(problem=found.problem, waiting=waiting)
    try:
        catalog.vm_hardware(vm_request.vm_moref)
    except catalog.NotFound:
        pass
    except catalog.Unavailable as error:
        return Outcome(
            problem=f"vCenter could not confirm that {vm_request.vm_moref} is gone: {error}", waiting=waiting
        )
    else:
        return Outcome(problem=f"vCenter still has {vm_request.vm_moref}", waiting=waiting)
    return _remove_directory(vm_request)


def _remove_directory(vm_request: VMRequest) -> Outcome:
    """The VM is gone: a commit removes its directory on the request's branch, and is merged into the base branch."""
    waiting = "The VM is gone; its directory is not removed yet"
    try:
        removal = gitops.push_removal(
            branch=vm_request.branch,
            directory=vm_request.directory,
            message=(
                f"vmprov: remove {vm_request.directory}, {vm_request.vm_name} is decommissioned "
                f"(request #{vm_request.pk})\n\nThe VM is gone from vCenter; its state holds nothing any more.\n"
            ),
        )
        if gitops.branch_head(vm_request.branch) is None:
            # Nothing was pushed: neither the base branch nor a branch left from an earlier attempt holds it.
            merge = gitops.MergeResult(True, removal.commit, "it was not on the base branch any more")
        else:
            merge = gitops.merge_and_delete(
                vm_request.branch, f"vmprov: {vm_request.vm_name} is decommissioned (request #{vm_request.pk})"
            )
    except gitops.GitError as error:
        return Outcome(problem=f"the directory could not be removed: {error}", waiting=waiting)
    if not merge.merged:
        return Outcome(
            mismatch=(
                f"The VM is gone from vCenter, and a commit removing {vm_request.directory} is on {vm_request.branch}, "
                f"but {merge.message}. Once it is merged, staff ask vmprov to look again."
            )
        )
    pushed = f"commit {removal.commit[:12]}" if removal.pushed else "nothing left to remove"
    return Outcome(
        done=(
            f"VM {vm_request.vm_name} ({vm_request.vm_moref}) is gone from vCenter; {vm_request.directory} is removed "
            f"({pushed}, {merge.message}). Its name and address are free again."
        )
    )
