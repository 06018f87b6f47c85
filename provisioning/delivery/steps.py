"""The delivery steps, one django-q2 job each: push, plan, apply, and watching for what the apply did.

Every kind of request goes through them: a new VM pushes its rendered files; a change or a decommission pushes its
VM's directory as the base branch holds it, edited (`prepare`). A change's or decommission's plan must be the one its
kind expects before anyone may approve it, and its apply must say it did that (`expectations`); a change's restart
impact is read from vCenter when it is planned (`approval`). Watching ends each kind its own way (`verify`).

Every step claims its request with a conditional status update (`VMRequest.transition`), so two workers
never move the same request, and a retried job finds the request already moved on and does nothing. Pushing
and planning are idempotent by configuration hash; an apply is never retried blindly. A step that fails in a
way nobody foresaw still moves its request to a failed state (staff can retry), as `lifecycle.FAILED_FROM` says.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from provisioning import atlantis, gitops, notify
from provisioning.delivery import prepare, verify
from provisioning.delivery.actions import approve
from provisioning.delivery.approval import AUTO_APPROVAL_REASONS, auto_approvable, restart_impact
from provisioning.delivery.branch_guard import (
    BranchChanged,
    BranchGuard,
    changed_branch_message,
    planned_values_problem,
)
from provisioning.delivery.expectations import apply_problem, plan_problem
from provisioning.delivery.queue import enqueue, enqueue_later, later_interval
from provisioning.lifecycle import BUSY_RETRY_SECONDS, FAILED_FROM, RequestKind, RequestStatus
from provisioning.models import ClaimTaken, TransitionRefused, VMRequest

logger = logging.getLogger(__name__)
S = RequestStatus
K = RequestKind


def _load(request_id: int, *statuses: str) -> VMRequest | None:
    vm_request = VMRequest.objects.select_related("requester").get(pk=request_id)
    if vm_request.status not in statuses:
        logger.info("request %s is %s, not %s: nothing to do", request_id, vm_request.status, "/".join(statuses))
        return None
    return vm_request


def step(job: Callable[..., str]) -> Callable[..., str]:
    """A delivery job: a lost race ends it quietly; anything unforeseen fails the request visibly, then the task."""

    @functools.wraps(job)
    def run(request_id: int, *args) -> str:
        try:
            return job(request_id, *args)
        except TransitionRefused as error:
            logger.info("%s of request %s stopped: %s", job.__name__, request_id, error)
            return "raced"
        except Exception as error:
            logger.exception("%s of request %s broke", job.__name__, request_id)
            _fail_unexpectedly(request_id, job.__name__, error)
            raise

    return run


def _fail(vm_request: VMRequest, to: str, message: str, **changes) -> None:
    vm_request.transition(to, message=message, last_error=message, **changes)
    notify.to_requester(vm_request, vm_request.get_status_display().lower(), message)


def _fail_unexpectedly(request_id: int, job_name: str, error: Exception) -> None:
    vm_request = VMRequest.objects.select_related("requester").get(pk=request_id)
    message = f"The {job_name} step broke unexpectedly: {type(error).__name__}: {error}"
    target = FAILED_FROM.get(vm_request.status)
    try:
        if target is not None:
            _fail(vm_request, target, message)
        else:
            vm_request.note(message)
    except TransitionRefused:
        vm_request.note(message)


# --- Push --------------------------------------------------------------------------------------


@step
def push(request_id: int) -> str:
    """Push the request's configuration to its branch. Only a submitted request is pushed, and moving it to
    pushing claims both the push (a second push job finds it pushing and stops) and its Git directory."""
    vm_request = _load(request_id, S.SUBMITTED)
    if vm_request is None:
        return "skipped"
    branch = gitops.request_branch(vm_request.pk, vm_request.vm_name)
    directory = vm_request.directory or gitops.request_directory(
        vm_request.datacenter_name, vm_request.datacenter_id, vm_request.vm_name
    )
    try:
        vm_request.transition(
            S.PUSHING, message=f"Pushing the configuration to {directory} on branch {branch}.", directory=directory
        )
    except ClaimTaken as taken:
        _fail(
            vm_request,
            S.PUSH_FAILED,
            f"Not pushed: {taken}. (If another datacenter's name makes the same directory, set "
            "VMPROV_GITOPS_DIR_PATTERN to include {datacenter_id}.)",
        )
        return "failed"
    if vm_request.kind != K.CREATE:
        try:
            prepare.prepared(vm_request)
        except prepare.CannotPrepare as error:
            _fail(vm_request, S.PUSH_FAILED, f"Not pushed: {error}.")
            return "failed"
    requester = vm_request.requester
    try:
        result = gitops.push_request(
            branch=branch,
            directory=directory,
            files=vm_request.rendered_files,
            author_name=requester.get_full_name() or requester.get_username(),
            author_email=requester.email or f"{requester.get_username()}@{settings.VMPROV_GIT_EMAIL_DOMAIN}",
            message=_commit_message(vm_request),
        )
    except gitops.GitError as error:
        _fail(vm_request, S.PUSH_FAILED, f"The push failed: {error}")
        return "failed"
    vm_request.transition(
        S.PLANNING,
        message=(
            f"Pushed commit {result.commit[:12]} to {branch} ({directory})."
            if result.pushed
            else f"Branch {branch} already holds this configuration (commit {result.commit[:12]}); nothing pushed."
        ),
        branch=branch,
        pushed_commit=result.commit,
        pushed_hash=vm_request.config_hash,
    )
    enqueue("plan", vm_request.pk)
    return "pushed"


def _commit_message(vm_request: VMRequest) -> str:
    what = {
        K.CREATE: f"{vm_request.vm_name} in {vm_request.datacenter_name}",
        K.CHANGE: (
            f"changes {vm_request.vm_name} in {vm_request.datacenter_name}\n\n"
            f"Values file only: {vm_request.num_cpus} CPU, {vm_request.memory_mb} MB, {vm_request.disk_size_gb} GB."
        ),
        K.DECOMMISSION: (
            f"decommissions {vm_request.vm_name} in {vm_request.datacenter_name}\n\n"
            "The VM's resource is removed from its directory, so that Terraform destroys the VM."
        ),
    }[vm_request.kind]
    return (
        f"vmprov: request #{vm_request.pk} {what}\n\n"
        f"Requested by {vm_request.requester.get_username()}.\nVmprov-Config-Hash: {vm_request.config_hash}\n"
    )


# --- Plan --------------------------------------------------------------------------------------


@step
def plan(request_id: int) -> str:
    """Ask Atlantis to plan the request's directory while its branch holds the commit vmprov pushed."""
    vm_request = _load(request_id, S.PLANNING)
    if vm_request is None:
        return "skipped"
    expected = vm_request.pushed_commit
    try:
        head = gitops.branch_head(vm_request.branch)
    except gitops.GitError as error:
        _fail(vm_request, S.PLAN_FAILED, f"Could not read branch {vm_request.branch}: {error}")
        return "failed"
    if head != expected:
        return _stop_changed(vm_request, expected, head, "before the plan")
    already_planned = head == vm_request.planned_commit and vm_request.planned_hash == vm_request.config_hash
    if already_planned and vm_request.plan_output:
        # A retried job: this very commit was planned already.
        vm_request.transition(S.PLANNED, message=f"Commit {head[:12]} was already planned.")
        return "planned"
    result, guard, over = _guarded_call(atlantis.plan, vm_request, expected, S.PLAN_FAILED, "just before the plan")
    if result is None:
        return over
    if result.outcome is atlantis.Outcome.BUSY:
        vm_request.note(f"{result.message} Planning again in {BUSY_RETRY_SECONDS} s.")
        VMRequest.objects.filter(pk=vm_request.pk).update(updated_at=timezone.now())
        enqueue_later("plan", vm_request.pk, BUSY_RETRY_SECONDS)
        return "waiting"
    if guard.changed_during_call:
        # Atlantis may have planned somebody else's commit: that plan is nobody's to approve.
        return _stop_changed(vm_request, expected, guard.head_after, "while Atlantis planned")
    if not result.succeeded:
        _fail(vm_request, S.PLAN_FAILED, f"The plan failed: {result.message}", plan_output=result.output_text())
        return "failed"
    refused = plan_problem(vm_request.kind, result)
    if refused:
        _fail(
            vm_request,
            S.PLAN_FAILED,
            f"Refused before anyone could approve it: {refused}. Nothing was applied; the requester can cancel.",
            plan_output=result.output_text(),
        )
        return "refused"
    impact = restart_impact(vm_request) if vm_request.kind == K.CHANGE else vm_request.reboot_impact
    vm_request.transition(
        S.PLANNED,
        message=f"Atlantis planned commit {head[:12]}: {result.summary()}{_impact_note(vm_request.kind, impact)}",
        planned_commit=head,
        planned_hash=vm_request.config_hash,
        plan_output=result.output_text(),
        plan_digest=VMRequest.digest_of_plan(head, result.output_text()),
        reboot_impact=impact,
        last_error="",
    )
    if auto_approvable(vm_request, result):
        problem = planned_values_problem(vm_request)
        if problem is None:
            approve(vm_request, None, AUTO_APPROVAL_REASONS[vm_request.kind], seen_plan=vm_request.plan_digest)
            return "planned"
        vm_request.transition(
            S.BRANCH_CHANGED,
            message=f"Not auto-approved: {problem}. Nothing more is planned or applied until a person decides.",
            last_error=problem,
        )
        notify.to_requester(vm_request, "stopped", problem)
        return "stopped"
    notify.plan_ready(vm_request)
    return "planned"


def _impact_note(kind: str, impact: dict) -> str:
    """The restart impact in a history line (a change only)."""
    if kind != K.CHANGE:
        return ""
    reasons = "; ".join(impact.get("reasons") or [])
    if impact.get("restarts") is None:
        return f" A restart of the guest cannot be ruled out: {reasons}."
    return f" The guest restarts: {reasons}." if impact["restarts"] else " The guest keeps running."


def _guarded_call(call, vm_request: VMRequest, expected: str, failed_to: str, stopped_when: str):
    """`call` (atlantis.plan or atlantis.apply) with the branch guard around it, under the repository's lock.

    Returns (result, guard, "") when Atlantis was asked, or (None, guard, what the step returns) when the step is
    over: the branch changed before the call (nothing sent), Git could not be read, or Atlantis is not configured."""
    guard = BranchGuard(vm_request.branch, expected)
    try:
        result = call(
            vm_request.branch,
            vm_request.directory,
            commit=expected,
            before_send=guard.before_send,
            after_answer=guard.after_answer,
        )
    except BranchChanged as changed:
        return None, guard, _stop_changed(vm_request, expected, changed.head, stopped_when)
    except gitops.GitError as error:
        _fail(
            vm_request, failed_to, f"Could not read branch {vm_request.branch}; nothing was sent to Atlantis: {error}"
        )
        return None, guard, "failed"
    except atlantis.AtlantisConfigError as error:
        _fail(vm_request, failed_to, f"Atlantis is not configured: {error}")
        return None, guard, "failed"
    return result, guard, ""


def _stop_changed(vm_request: VMRequest, expected: str, head: str | None, when: str) -> str:
    """The branch is not vmprov's commit: stop where a person decides, naming what changed."""
    message = changed_branch_message(vm_request, expected, head, when)
    vm_request.transition(S.BRANCH_CHANGED, message=message, last_error=message)
    notify.to_requester(vm_request, "stopped: its branch changed", message)
    return "stopped"


# --- Apply -------------------------------------------------------------------------------------


@step
def apply(request_id: int) -> str:
    """Ask Atlantis to apply the approved plan while the branch still holds the planned commit."""
    vm_request = _load(request_id, S.APPROVED)
    if vm_request is None:
        return "skipped"
    expected = vm_request.planned_commit
    vm_request.transition(S.APPLYING, message=f"Atlantis applies commit {expected[:12]}.")
    result, guard, over = _guarded_call(
        atlantis.apply, vm_request, expected, S.APPLY_FAILED, "after the approval; nothing was applied"
    )
    if result is None:
        return over
    if result.outcome is atlantis.Outcome.BUSY:
        vm_request.transition(S.APPROVED, message=f"{result.message} Applying again in {BUSY_RETRY_SECONDS} s.")
        enqueue_later("apply", vm_request.pk, BUSY_RETRY_SECONDS)
        return "waiting"
    if guard.changed_during_call and result.outcome is not atlantis.Outcome.NOT_SENT:
        message = changed_branch_message(vm_request, expected, guard.head_after, "while Atlantis applied")
        # A person looks before anything is called ready: the VM may be built from somebody else's configuration.
        message += (
            f" What Atlantis applied is unknown ({result.summary()}). Staff look in vCenter, then ask vmprov to look "
            "for the VM (it compares the VM with the request) or mark the request failed."
        )
        vm_request.transition(S.NEEDS_ATTENTION, message=message, last_error=message, apply_output=result.output_text())
        notify.to_requester(vm_request, "needs attention", message)
        return "unknown"
    if result.outcome is atlantis.Outcome.UNANSWERED:
        error = result.message
        vm_request.transition(
            S.NEEDS_ATTENTION,
            message=f"The apply's outcome is unknown ({error}). Not retried; vmprov looks for the VM in the inventory.",
            last_error=error,
        )
        notify.to_requester(vm_request, "needs attention", f"The apply's outcome is unknown: {error}")
        enqueue("watch", vm_request.pk, 0)
        return "unknown"
    if not result.succeeded:
        _fail(vm_request, S.APPLY_FAILED, f"The apply failed: {result.message}", apply_output=result.output_text())
        return "failed"
    unexpected = apply_problem(vm_request.kind, result.output_text())
    if unexpected:
        message = (
            f"Atlantis applied something else than was approved: {unexpected}. Nothing is merged; staff look in "
            "vCenter, then ask vmprov to look again or mark the request failed."
        )
        vm_request.transition(S.NEEDS_ATTENTION, message=message, last_error=message, apply_output=result.output_text())
        notify.to_requester(vm_request, "needs attention", message)
        return "unexpected"
    vm_request.transition(
        S.APPLIED, message=f"Atlantis applied it: {result.summary()}", apply_output=result.output_text(), last_error=""
    )
    _merge(vm_request)
    enqueue("watch", vm_request.pk, 0)
    return "applied"


def _merge(vm_request: VMRequest) -> None:
    """Bring the applied configuration into the base branch (and say so in the history)."""
    try:
        if gitops.branch_head(vm_request.branch) is None:
            return  # merged already, or someone removed it
        merge = gitops.merge_and_delete(
            vm_request.branch, f"vmprov: {vm_request.vm_name} is applied (request #{vm_request.pk})"
        )
        vm_request.note(merge.message[:1].upper() + merge.message[1:] + ".")
    except gitops.GitError as error:
        vm_request.note(f"Could not merge {vm_request.branch} into the base branch: {error}")


# --- Closing the loop --------------------------------------------------------------------------

_DONE_SUBJECTS = {K.CREATE: "ready", K.CHANGE: "done", K.DECOMMISSION: "decommissioned"}
_GAVE_UP = {
    K.CREATE: "The VM did not appear in the inventory",
    K.CHANGE: "The inventory did not show the new size",
    K.DECOMMISSION: "The VM did not leave the inventory, or its directory was not removed,",
}


@step
def watch(request_id: int, attempt: int = 0) -> str:
    """Look in vCenter (through a fresh refresh of the inventory) for what the apply did, as the request's kind
    expects it (`verify`); look again later until it shows, then a person looks."""
    vm_request = _load(request_id, S.APPLIED, S.NEEDS_ATTENTION)
    if vm_request is None:
        return "skipped"
    found = verify.outcome(vm_request)
    if found.mismatch:
        if vm_request.status == S.APPLIED:
            vm_request.transition(S.NEEDS_ATTENTION, message=found.mismatch, last_error=found.mismatch)
            notify.to_requester(vm_request, "needs attention", found.mismatch)
        else:
            vm_request.note(found.mismatch)
        return "mismatch"
    if found.done:
        _finish(vm_request, found)
        return "ready"
    checks = settings.VMPROV_READY_CHECKS
    problem = found.problem
    if attempt + 1 >= checks:
        message = (
            f"{_GAVE_UP[vm_request.kind]} after {checks} checks over "
            f"{checks * settings.VMPROV_READY_CHECK_SECONDS // 60} minutes; a person must look."
        )
        if problem:
            message += f" Last inventory problem: {problem}"
        if vm_request.status == S.APPLIED:
            vm_request.transition(S.NEEDS_ATTENTION, message=message)
            notify.to_requester(vm_request, "needs attention", message)
        else:
            vm_request.note(message)
        return "gave up"
    if attempt == 0 or problem:
        vm_request.note(
            f"{found.waiting}{f' ({problem})' if problem else ''}; checking again every "
            f"{later_interval(settings.VMPROV_READY_CHECK_SECONDS)}, {checks} times at most."
        )
    VMRequest.objects.filter(pk=vm_request.pk).update(updated_at=timezone.now())
    enqueue_later("watch", request_id, settings.VMPROV_READY_CHECK_SECONDS, attempt + 1)
    return "waiting"


def _finish(vm_request: VMRequest, found: verify.Outcome) -> None:
    """The request is done; a decommission ends its VM's claims (directory, name, address) in the same transaction."""
    with transaction.atomic():
        vm_request.transition(S.READY, message=found.done, **found.changes)
        if vm_request.kind == K.DECOMMISSION:
            VMRequest.objects.filter(pk=vm_request.vm_of_id).update(decommissioned_at=timezone.now())
    if vm_request.kind != K.DECOMMISSION:
        _merge(vm_request)  # after an apply whose answer was lost, the branch is still there
    notify.to_requester(vm_request, _DONE_SUBJECTS[vm_request.kind], found.done)
