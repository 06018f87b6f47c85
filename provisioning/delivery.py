"""Delivery of a request, one django-q2 job per step: push, plan, apply, and watching for the new VM.

Every step claims its request with a conditional status update (`VMRequest.transition`), so two
workers never move the same request, and a retried job finds the request already moved on and does
nothing. Pushing and planning are idempotent by configuration hash; an apply is never retried blindly.
A step that fails in a way nobody foresaw still moves its request to a failed state (staff can retry),
and `reap()` requeues steps that were lost with a worker.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from inventory import cache, catalog
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.refresh import refresh
from inventory.vsphere import Scope
from provisioning import atlantis, gitops, notify, roles
from provisioning.choices import CLOSED_STATUSES, RequestStatus
from provisioning.models import TransitionRefused, VMRequest

logger = logging.getLogger(__name__)
S = RequestStatus
DELIVERY_CLUSTER = "delivery"
REAPER_SCHEDULE = "delivery: requeue lost steps"
BUSY_RETRY_SECONDS = 60

# Where a request goes when a step breaks unexpectedly, by the status it was in. An apply in flight
# has an unknown outcome: a person looks; it is never marked failed (or retried) blindly.
_FAILED_FROM = {
    S.SUBMITTED: S.PUSH_FAILED,
    S.PUSHING: S.PUSH_FAILED,
    S.PLANNING: S.PLAN_FAILED,
    S.APPROVED: S.APPLY_FAILED,
    S.APPLYING: S.NEEDS_ATTENTION,
}


class NotAllowed(Exception):
    """A person may not do this to this request; the message says why."""


class BranchMoved(Exception):
    """The request's branch no longer holds the commit that was planned."""


def enqueue(step: str, request_id: int, *args) -> None:
    """Queue a step once the current transaction commits, on the delivery cluster (its `retry` outlasts an apply)."""
    transaction.on_commit(
        lambda: async_task(
            f"provisioning.delivery.{step}",
            request_id,
            *args,
            cluster=DELIVERY_CLUSTER,
            task_name=f"{step} request {request_id}",
            group="delivery",
        )
    )


def enqueue_later(step: str, request_id: int, seconds: int, *args) -> None:
    Schedule.objects.create(
        name=f"{step} request {request_id} at {timezone.now():%H:%M:%S.%f}",
        func=f"provisioning.delivery.{step}",
        args=",".join(str(arg) for arg in (request_id, *args)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=seconds),
        cluster=DELIVERY_CLUSTER,
    )


def start(vm_request: VMRequest) -> None:
    enqueue("push", vm_request.pk)


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


def _fail_unexpectedly(request_id: int, job_name: str, error: Exception) -> None:
    vm_request = VMRequest.objects.select_related("requester").get(pk=request_id)
    message = f"The {job_name} step broke unexpectedly: {type(error).__name__}: {error}"
    target = _FAILED_FROM.get(vm_request.status)
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
    vm_request = _load(request_id, S.SUBMITTED, S.PUSHING)
    if vm_request is None:
        return "skipped"
    branch = gitops.request_branch(vm_request.pk, vm_request.vm_name)
    directory = gitops.request_directory(vm_request.datacenter_name, vm_request.datacenter_id, vm_request.vm_name)
    if vm_request.status == S.SUBMITTED:
        vm_request.transition(S.PUSHING, message=f"Pushing the configuration to branch {branch}.")
    else:
        vm_request.note("A retried push job resumes the push.")
    owner = (
        VMRequest.objects.filter(directory=directory)
        .exclude(pk=vm_request.pk)
        .exclude(datacenter_id=vm_request.datacenter_id)
        .exclude(status__in=CLOSED_STATUSES - {S.READY})
        .first()
    )
    if owner is not None:
        _fail(
            vm_request,
            S.PUSH_FAILED,
            f"Directory {directory} already holds request #{owner.pk} of datacenter {owner.datacenter_name}, whose "
            "name makes the same directory; set VMPROV_GITOPS_DIR_PATTERN to include {datacenter_id}.",
        )
        return "failed"
    requester = vm_request.requester
    try:
        result = gitops.push_request(
            branch=branch,
            directory=directory,
            files=vm_request.rendered_files,
            author_name=requester.get_full_name() or requester.get_username(),
            author_email=requester.email or f"{requester.get_username()}@{settings.VMPROV_GIT_EMAIL_DOMAIN}",
            message=(
                f"vmprov: request #{vm_request.pk} {vm_request.vm_name} in {vm_request.datacenter_name}\n\n"
                f"Requested by {requester.get_username()}.\nVmprov-Config-Hash: {vm_request.config_hash}\n"
            ),
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
        directory=directory,
        pushed_commit=result.commit,
        pushed_hash=vm_request.config_hash,
    )
    enqueue("plan", vm_request.pk)
    return "pushed"


# --- Plan --------------------------------------------------------------------------------------


@step
def plan(request_id: int) -> str:
    vm_request = _load(request_id, S.PLANNING)
    if vm_request is None:
        return "skipped"
    try:
        head = gitops.branch_head(vm_request.branch)
    except gitops.GitError as error:
        _fail(vm_request, S.PLAN_FAILED, f"Could not read branch {vm_request.branch}: {error}")
        return "failed"
    if head is None:
        _fail(vm_request, S.PLAN_FAILED, f"Branch {vm_request.branch} is gone from the repository.")
        return "failed"
    already_planned = head == vm_request.planned_commit and vm_request.planned_hash == vm_request.config_hash
    if already_planned and vm_request.plan_output:
        # A retried job: this very commit was planned already.
        vm_request.transition(S.PLANNED, message=f"Commit {head[:12]} was already planned.")
        return "planned"
    try:
        result = atlantis.plan(vm_request.branch, vm_request.directory)
    except atlantis.AtlantisConfigError as error:
        _fail(vm_request, S.PLAN_FAILED, f"Atlantis is not configured: {error}")
        return "failed"
    if result.outcome is atlantis.Outcome.BUSY:
        vm_request.note(f"{result.message} Planning again in {BUSY_RETRY_SECONDS} s.")
        VMRequest.objects.filter(pk=vm_request.pk).update(updated_at=timezone.now())
        enqueue_later("plan", vm_request.pk, BUSY_RETRY_SECONDS)
        return "waiting"
    if not result.succeeded:
        _fail(vm_request, S.PLAN_FAILED, f"The plan failed: {result.message}", plan_output=result.output_text())
        return "failed"
    vm_request.transition(
        S.PLANNED,
        message=f"Atlantis planned commit {head[:12]}: {result.summary()}",
        planned_commit=head,
        planned_hash=vm_request.config_hash,
        plan_output=result.output_text(),
        last_error="",
    )
    if _auto_approvable(vm_request, result):
        approve(vm_request, None, "Auto-approved: below the configured limits and the plan only adds this VM.")
    else:
        notify.plan_ready(vm_request)
    return "planned"


def _auto_approvable(vm_request: VMRequest, result) -> bool:
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


# --- What people do --------------------------------------------------------------------------


def _decide(vm_request: VMRequest, to: str, by, message: str, **changes) -> None:
    """A person's move: a refused transition becomes a message for that person."""
    try:
        vm_request.transition(to, by=by, message=message, **changes)
    except TransitionRefused as error:
        raise NotAllowed(str(error)) from None


def approve(vm_request: VMRequest, by, reason: str) -> None:
    """Approve a planned request (`by` None: auto-approval). Nobody approves their own request."""
    if by is not None:
        if not roles.is_approver(by):
            raise NotAllowed("Only members of the approvers group approve requests.")
        if by.pk == vm_request.requester_id:
            raise NotAllowed("Nobody approves their own request.")
        if not reason.strip():
            raise NotAllowed("Say why the request is approved.")
    who = by.get_username() if by else "vmprov"
    _decide(vm_request, S.APPROVED, by, f"Approved by {who}: {reason}".strip(), approved_by=by)
    enqueue("apply", vm_request.pk)
    notify.to_requester(vm_request, "approved", f"{who} approved the request: {reason}\nvmprov applies it now.")


def reject(vm_request: VMRequest, by, reason: str) -> None:
    if not roles.is_approver(by):
        raise NotAllowed("Only members of the approvers group reject requests.")
    if by.pk == vm_request.requester_id:
        raise NotAllowed("Nobody decides on their own request; cancel it instead.")
    if not reason.strip():
        raise NotAllowed("Say why the request is rejected.")
    _decide(vm_request, S.REJECTED, by, f"Rejected by {by.get_username()}: {reason}")
    notify.to_requester(vm_request, "rejected", f"{by.get_username()} rejected the request: {reason}")


def retry(vm_request: VMRequest, by) -> None:
    """Staff send a failed request through delivery again: pushed again (idempotent) and planned afresh."""
    if not by.is_staff:
        raise NotAllowed("Only staff retry a failed delivery.")
    # Forget the old plan: approvers must see what Atlantis plans now (e.g. after a half-done apply).
    _decide(
        vm_request,
        S.SUBMITTED,
        by,
        f"{by.get_username()} retries the delivery.",
        planned_commit="",
        planned_hash="",
        plan_output="",
    )
    enqueue("push", vm_request.pk)


def recheck(vm_request: VMRequest, by) -> None:
    """Staff ask vmprov to look for the VM of a request that needs attention again."""
    if not by.is_staff or vm_request.status != S.NEEDS_ATTENTION:
        raise NotAllowed("Only staff look again, and only for a request that needs attention.")
    vm_request.note(f"{by.get_username()} asks vmprov to look for the VM again.", by=by)
    enqueue("watch", vm_request.pk, 0)


def mark_failed(vm_request: VMRequest, by, reason: str) -> None:
    """Staff record that the apply of a request that needs attention did not create the VM."""
    if not by.is_staff:
        raise NotAllowed("Only staff settle a request that needs attention.")
    if not reason.strip():
        raise NotAllowed("Say what was found (e.g. no VM in vCenter, Atlantis's log shows the apply failed).")
    _decide(vm_request, S.APPLY_FAILED, by, f"Marked as failed by {by.get_username()}: {reason}")


# --- Apply -------------------------------------------------------------------------------------


@step
def apply(request_id: int) -> str:
    vm_request = _load(request_id, S.APPROVED)
    if vm_request is None:
        return "skipped"
    vm_request.transition(S.APPLYING, message=f"Atlantis applies commit {vm_request.planned_commit[:12]}.")

    def branch_unchanged() -> None:
        # Checked while the repository's Atlantis lock is held, right before the apply is sent.
        head = gitops.branch_head(vm_request.branch)
        if head != vm_request.planned_commit:
            raise BranchMoved(head or "nothing")

    try:
        result = atlantis.apply(vm_request.branch, vm_request.directory, before_send=branch_unchanged)
    except BranchMoved as moved:
        vm_request.transition(
            S.PLANNING,
            message=(
                f"Branch {vm_request.branch} moved from {vm_request.planned_commit[:12]} to {str(moved)[:12]} "
                "since the plan: planning again instead of applying something nobody reviewed."
            ),
        )
        enqueue("plan", vm_request.pk)
        return "replanning"
    except gitops.GitError as error:
        _fail(vm_request, S.APPLY_FAILED, f"Could not read branch {vm_request.branch}; nothing was applied: {error}")
        return "failed"
    except atlantis.AtlantisConfigError as error:
        _fail(vm_request, S.APPLY_FAILED, f"Atlantis is not configured: {error}")
        return "failed"
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
    if result.outcome is atlantis.Outcome.BUSY:
        vm_request.transition(S.APPROVED, message=f"{result.message} Applying again in {BUSY_RETRY_SECONDS} s.")
        enqueue_later("apply", vm_request.pk, BUSY_RETRY_SECONDS)
        return "waiting"
    if not result.succeeded:
        _fail(vm_request, S.APPLY_FAILED, f"The apply failed: {result.message}", apply_output=result.output_text())
        return "failed"
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

_CREATED_ID = re.compile(r"vsphere_virtual_machine\.\w+: Creation complete after [^\[]*\[id=([0-9a-fA-F-]{36})\]")


def created_vm_uuid(apply_output: str) -> str:
    """The VM Terraform created: the vsphere provider's resource id is the VM's (BIOS) UUID."""
    found = _CREATED_ID.findall(apply_output or "")
    return found[-1].lower() if found else ""


@step
def watch(request_id: int, attempt: int = 0) -> str:
    """Refresh the cluster from vCenter and look for the new VM; check again later until it shows up."""
    vm_request = _load(request_id, S.APPLIED, S.NEEDS_ATTENTION)
    if vm_request is None:
        return "skipped"
    found, problem = _find_vm(vm_request)
    if found is not None:
        vm_request.transition(
            S.READY,
            message=(
                f"VM {found['name']} is in the inventory as {found['id']} (instance UUID {found['instance_uuid']})."
            ),
            vm_moref=found["id"],
            vm_instance_uuid=found["instance_uuid"],
        )
        _merge(vm_request)  # after an apply whose answer was lost, the branch is still there
        notify.to_requester(vm_request, "ready", f"{vm_request.vm_name} is ready ({found['id']}).")
        return "ready"
    checks = settings.VMPROV_READY_CHECKS
    if attempt + 1 >= checks:
        message = (
            f"The VM did not appear in the inventory after {checks} checks over "
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
            f"The VM is not in the inventory yet{f' ({problem})' if problem else ''}; checking every "
            f"{settings.VMPROV_READY_CHECK_SECONDS} s, {checks} times at most."
        )
    VMRequest.objects.filter(pk=vm_request.pk).update(updated_at=timezone.now())
    enqueue_later("watch", request_id, settings.VMPROV_READY_CHECK_SECONDS, attempt + 1)
    return "waiting"


def _find_vm(vm_request: VMRequest) -> tuple[dict | None, str]:
    """The request's VM in its datacenter after a fresh cluster refresh: (vm, "") or (None, why not).

    Matched by name and cluster, and by the UUID Terraform reported when the apply's answer arrived.
    """
    run = refresh(Scope.cluster(vm_request.cluster_id), RefreshTrigger.DELIVERY, wait=30)
    problem = ""
    if run is not None and run.outcome != RefreshOutcome.SUCCEEDED:
        problem = run.error
    try:
        vms = catalog.vms(vm_request.datacenter_id).items
    except (catalog.NotFound, catalog.Unavailable, cache.CacheUnavailable) as error:
        return None, problem or str(error)
    matches = [vm for vm in vms if vm["name"] == vm_request.vm_name and vm.get("cluster_id") == vm_request.cluster_id]
    created = created_vm_uuid(vm_request.apply_output)
    if created:
        matches = [vm for vm in matches if vm.get("uuid", created).lower() == created]
    return (matches[0] if len(matches) == 1 else None), problem


# --- Lost jobs ---------------------------------------------------------------------------------


def _stale_after() -> dict[str, timedelta]:
    """How long a status may go without progress before its job counts as lost with a worker."""
    lock_wait = settings.ATLANTIS_LOCK_WAIT + settings.ATLANTIS_CONNECT_TIMEOUT
    return {
        S.SUBMITTED: timedelta(minutes=10),
        S.PUSHING: timedelta(seconds=3 * settings.VMPROV_GIT_TIMEOUT + 300),
        S.PLANNING: timedelta(seconds=settings.ATLANTIS_PLAN_TIMEOUT + lock_wait + BUSY_RETRY_SECONDS + 300),
        S.APPROVED: timedelta(seconds=lock_wait + BUSY_RETRY_SECONDS + 300),
        S.APPLYING: timedelta(seconds=settings.ATLANTIS_APPLY_TIMEOUT + lock_wait + 600),
        S.APPLIED: timedelta(seconds=settings.VMPROV_READY_CHECKS * settings.VMPROV_READY_CHECK_SECONDS + 600),
    }


_REQUEUE = {S.SUBMITTED: "push", S.PUSHING: "push", S.PLANNING: "plan", S.APPROVED: "apply", S.APPLIED: "watch"}


def reap() -> list[str]:
    """Periodic: requeue steps that stopped making progress (a worker died, a queue row was lost).

    Requeueing is safe: every step claims its request by status. An apply in flight is never requeued: it
    goes to needs_attention, and vmprov looks for the VM.
    """
    now = timezone.now()
    done = []
    for status, age in _stale_after().items():
        for vm_request in VMRequest.objects.filter(status=status, updated_at__lt=now - age).select_related("requester"):
            silent = f"no progress since {vm_request.updated_at:%Y-%m-%d %H:%M:%S} UTC"
            if status == S.APPLYING:
                try:
                    vm_request.transition(
                        S.NEEDS_ATTENTION,
                        message=f"The apply job did not report back ({silent}); vmprov looks for the VM.",
                    )
                except TransitionRefused:
                    continue
                enqueue("watch", vm_request.pk, 0)
            else:
                VMRequest.objects.filter(pk=vm_request.pk, status=status).update(updated_at=now)
                vm_request.note(f"The {_REQUEUE[status]} step is queued again ({silent}).")
                enqueue(_REQUEUE[status], vm_request.pk, *((0,) if status == S.APPLIED else ()))
            done.append(f"{vm_request.pk}:{status}")
    return done


def register_reaper() -> Schedule:
    schedule, _ = Schedule.objects.update_or_create(
        name=REAPER_SCHEDULE,
        defaults={
            "func": "provisioning.delivery.reap",
            "schedule_type": Schedule.MINUTES,
            "minutes": 5,
            "repeats": -1,
            "cluster": DELIVERY_CLUSTER,
        },
    )
    return schedule


def _fail(vm_request: VMRequest, to: str, message: str, **changes) -> None:
    vm_request.transition(to, message=message, last_error=message, **changes)
    notify.to_requester(vm_request, vm_request.get_status_display().lower(), message)
