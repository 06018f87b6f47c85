"""What people do with a request: approve, reject, cancel, retry, settle one that needs attention; and what they ask
of a VM vmprov delivered: a change of its size or notes, or its decommission.

Each action asks `provisioning.lifecycle` whether this person may do it in this status, then moves the request
with a conditional transition: two people (or a person and a worker) never both win. A refusal is a
`NotAllowed` whose message is written for the person who asked.
"""

from __future__ import annotations

from django.conf import settings

from inventory import catalog
from provisioning import gitops, machines, notify, submission
from provisioning.delivery.queue import enqueue
from provisioning.lifecycle import Action, RequestKind, RequestStatus, needs_person, refusal
from provisioning.models import TransitionRefused, VMRequest
from provisioning.terraform.resize import reboot_impact

S = RequestStatus


class NotAllowed(Exception):
    """A person may not do this to this request; the message says why."""


def _check(action: Action, by, vm_request: VMRequest) -> None:
    if (reason := refusal(action, by, vm_request)) is not None:
        raise NotAllowed(reason)


PLAN_CHANGED = "The plan changed since the page was loaded: review the new one. Nothing was done."


def _move(vm_request: VMRequest, to: str, by, message: str, expected: dict | None = None, **changes) -> None:
    """A person's move: a refused transition (someone moved the request first) becomes a message for them."""
    try:
        vm_request.transition(to, by=by, message=message, expected=expected, **changes)
    except TransitionRefused as error:
        if expected and VMRequest.objects.filter(pk=vm_request.pk, status=vm_request.status).exists():
            raise NotAllowed(PLAN_CHANGED) from None
        raise NotAllowed(f"Nothing was done: {error}.") from None


def _same_plan(vm_request: VMRequest, seen_plan: str) -> dict:
    """The decision holds only for the plan the person saw: the row must still carry its digest."""
    if seen_plan != vm_request.plan_digest:
        raise NotAllowed(PLAN_CHANGED)
    return {"plan_digest": seen_plan}


def _require_reason(reason: str, what: str) -> None:
    if not reason.strip():
        raise NotAllowed(what)


def approve(vm_request: VMRequest, by, reason: str, *, seen_plan: str) -> None:
    """Approve the plan `seen_plan` (its digest) of a planned request (`by` None: the auto-approval policy).
    Nobody approves their own request, and nobody approves a plan they did not see."""
    if by is not None:
        _check(Action.APPROVE, by, vm_request)
        _require_reason(reason, "Say why the request is approved.")
    elif needs_person(vm_request.kind):
        raise NotAllowed(f"A {vm_request.get_kind_display().lower()} is approved by a person, never by vmprov itself.")
    expected = _same_plan(vm_request, seen_plan)
    who = by.get_username() if by else "vmprov"
    _move(vm_request, S.APPROVED, by, f"Approved by {who}: {reason}".strip(), expected=expected, approved_by=by)
    enqueue("apply", vm_request.pk)
    notify.to_requester(vm_request, "approved", f"{who} approved the request: {reason}\nvmprov applies it now.")


def reject(vm_request: VMRequest, by, reason: str, *, seen_plan: str) -> None:
    """Reject the plan `seen_plan` (its digest) of a planned request."""
    _check(Action.REJECT, by, vm_request)
    _require_reason(reason, "Say why the request is rejected.")
    expected = _same_plan(vm_request, seen_plan)
    _move(vm_request, S.REJECTED, by, f"Rejected by {by.get_username()}: {reason}", expected=expected)
    notify.to_requester(vm_request, "rejected", f"{by.get_username()} rejected the request: {reason}")
    _delete_branch(vm_request)


def cancel(vm_request: VMRequest, by) -> None:
    """The requester (or staff) withdraws a request that is not approved yet."""
    _check(Action.CANCEL, by, vm_request)
    who = "the requester" if by.pk == vm_request.requester_id else by.get_username()
    approvers_were_asked = vm_request.status == S.PLANNED
    _move(vm_request, S.CANCELLED, by, f"Cancelled by {who}.")
    notify.cancelled(vm_request, by, approvers_were_asked=approvers_were_asked)
    _delete_branch(vm_request)


def _delete_branch(vm_request: VMRequest) -> None:
    """A rejected or cancelled request's branch goes (VMPROV_GITOPS_DELETE_CLOSED_BRANCHES), unless an apply ran
    from it: then it may be all that describes what the apply left behind."""
    if not (settings.VMPROV_GITOPS_DELETE_CLOSED_BRANCHES and vm_request.pushed_commit) or vm_request.apply_output:
        return
    try:
        vm_request.note(gitops.delete_branch(vm_request.branch, vm_request.pushed_commit))
    except gitops.GitError as error:
        vm_request.note(f"Could not delete branch {vm_request.branch}: {error}")


def retry(vm_request: VMRequest, by) -> None:
    """Staff send a failed request through delivery again: pushed again (idempotent) and planned afresh.

    After a failed (or marked failed) apply, vmprov first looks for the VM in vCenter: an apply may have created
    it, and a second one would create a duplicate."""
    _check(Action.RETRY, by, vm_request)
    if vm_request.status == S.APPLY_FAILED and vm_request.kind == RequestKind.CREATE:
        found = catalog.find_vm(vm_request.datacenter_id, vm_request.cluster_id, vm_request.vm_name)
        if found.vm is not None:
            raise NotAllowed(
                f"VM {vm_request.vm_name} exists in vCenter ({found.vm['id']}): an earlier apply created it, and a "
                "retry would create it twice. Remove it in vCenter first, or keep it and cancel this request."
            )
        if found.problem:
            raise NotAllowed(f"vmprov could not look for the VM in vCenter first ({found.problem}); try again later.")
    # Forget the old plan: approvers must see what Atlantis plans now (e.g. after a half-done apply).
    _move(
        vm_request,
        S.SUBMITTED,
        by,
        f"{by.get_username()} retries the delivery.",
        planned_commit="",
        planned_hash="",
        plan_output="",
        plan_digest="",
    )
    enqueue("push", vm_request.pk)


def recheck(vm_request: VMRequest, by) -> None:
    """Staff ask vmprov to look for the VM of a request that needs attention again."""
    _check(Action.RECHECK, by, vm_request)
    vm_request.note(f"{by.get_username()} asks vmprov to look for the VM again.", by=by)
    enqueue("watch", vm_request.pk, 0)


def mark_failed(vm_request: VMRequest, by, reason: str) -> None:
    """Staff record that the apply of a request that needs attention did not create the VM."""
    _check(Action.MARK_FAILED, by, vm_request)
    _require_reason(reason, "Say what was found (e.g. no VM in vCenter, Atlantis's log shows the apply failed).")
    _move(vm_request, S.APPLY_FAILED, by, f"Marked as failed by {by.get_username()}: {reason}")


# --- A delivered VM ----------------------------------------------------------------------------------------------


def ask_change(vm: VMRequest, by, values: dict) -> VMRequest:
    """The VM's requester (or staff) asks for new `values` (num_cpus, memory_mb, disk_size_gb, notes) of the VM
    that `vm` delivered. The change starts from the values last applied; whether it restarts the guest is worked
    out from the inventory now (and again, from vCenter, when it is planned)."""
    _check(Action.CHANGE, by, vm)
    applied = machines.applied_values(vm)
    change = submission.day2_request(vm, by, RequestKind.CHANGE, values, applied)
    try:
        record = catalog.vms_by_id(vm.datacenter_id, [vm.vm_moref]).by_id().get(vm.vm_moref)
    except (catalog.NotFound, catalog.Unavailable):
        record = None
    change.reboot_impact = reboot_impact(record, values, "the inventory when the change was asked")
    sizes = f"{values['num_cpus']} CPU, {values['memory_mb']} MB, {values['disk_size_gb']} GB"
    return _submit(change, f"Change of {vm.vm_name} asked by {by.get_username()}: {sizes}.")


def ask_decommission(vm: VMRequest, by, reason: str) -> VMRequest:
    """The VM's requester (or staff) asks for the VM that `vm` delivered to be destroyed. A person approves it."""
    _check(Action.DECOMMISSION, by, vm)
    _require_reason(reason, "Say why the VM is no longer needed.")
    applied = machines.applied_values(vm)
    decommission = submission.day2_request(vm, by, RequestKind.DECOMMISSION, applied, applied)
    return _submit(decommission, f"Decommission of {vm.vm_name} asked by {by.get_username()}: {reason}")


def _submit(vm_request: VMRequest, message: str) -> VMRequest:
    try:
        return submission.submit_day2(vm_request, message)
    except submission.ChangeOpen:
        raise NotAllowed(
            f"Another change or decommission of {vm_request.vm_name} was asked a moment ago: one at a time."
        ) from None
