"""Delivery of a request, one django-q2 job per step: push, plan, apply, and watching for the new VM.

Every step claims its request with a conditional status update (`VMRequest.transition`), so two
workers never move the same request, and a retried job finds the request already moved on and does
nothing. Pushing and planning are idempotent by configuration hash; an apply is never retried blindly.
"""

from __future__ import annotations

import logging
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
from provisioning import atlantis, gitops, notify
from provisioning.choices import RequestStatus
from provisioning.models import APPROVERS_GROUP, TransitionRefused, VMRequest

logger = logging.getLogger(__name__)
S = RequestStatus
DELIVERY_CLUSTER = "delivery"


class NotAllowed(Exception):
    """A person may not do this to this request; the message says why."""


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


def start(vm_request: VMRequest) -> None:
    enqueue("push", vm_request.pk)


def _load(request_id: int, *statuses: str) -> VMRequest | None:
    vm_request = VMRequest.objects.select_related("requester").get(pk=request_id)
    if vm_request.status not in statuses:
        logger.info("request %s is %s, not %s: nothing to do", request_id, vm_request.status, "/".join(statuses))
        return None
    return vm_request


# --- Push --------------------------------------------------------------------------------------


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
    if not result.ok:
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


# --- Approval ----------------------------------------------------------------------------------


def is_approver(user) -> bool:
    return user.is_active and (user.is_superuser or user.groups.filter(name=APPROVERS_GROUP).exists())


def approve(vm_request: VMRequest, by, reason: str) -> None:
    """Approve a planned request (`by` None: auto-approval). Nobody approves their own request."""
    if by is not None:
        if not is_approver(by):
            raise NotAllowed("Only members of the approvers group approve requests.")
        if by.pk == vm_request.requester_id:
            raise NotAllowed("Nobody approves their own request.")
    who = by.get_username() if by else "vmprov"
    try:
        vm_request.transition(S.APPROVED, by=by, message=f"Approved by {who}: {reason}".strip(), approved_by=by)
    except TransitionRefused as error:
        raise NotAllowed(str(error)) from None
    enqueue("apply", vm_request.pk)
    notify.to_requester(vm_request, "approved", f"{who} approved the request: {reason}\nvmprov applies it now.")


def reject(vm_request: VMRequest, by, reason: str) -> None:
    if not is_approver(by):
        raise NotAllowed("Only members of the approvers group reject requests.")
    if not reason.strip():
        raise NotAllowed("Say why the request is rejected.")
    try:
        vm_request.transition(S.REJECTED, by=by, message=f"Rejected by {by.get_username()}: {reason}")
    except TransitionRefused as error:
        raise NotAllowed(str(error)) from None
    notify.to_requester(vm_request, "rejected", f"{by.get_username()} rejected the request: {reason}")


def retry(vm_request: VMRequest, by) -> None:
    """Staff send a failed request through delivery again (push and plan are idempotent)."""
    if not by.is_staff:
        raise NotAllowed("Only staff retry a failed delivery.")
    try:
        vm_request.transition(S.SUBMITTED, by=by, message=f"{by.get_username()} retries the delivery.")
    except TransitionRefused as error:
        raise NotAllowed(str(error)) from None
    enqueue("push", vm_request.pk)


# --- Apply -------------------------------------------------------------------------------------


def apply(request_id: int) -> str:
    vm_request = _load(request_id, S.APPROVED)
    if vm_request is None:
        return "skipped"
    try:
        head = gitops.branch_head(vm_request.branch)
    except gitops.GitError as error:
        _fail(vm_request, S.APPLY_FAILED, f"Could not read branch {vm_request.branch}: {error}")
        return "failed"
    if head != vm_request.planned_commit:
        vm_request.transition(
            S.PLANNING,
            message=(
                f"Branch {vm_request.branch} moved from {vm_request.planned_commit[:12]} to {(head or 'nothing')[:12]} "
                "since the plan: planning again instead of applying something nobody reviewed."
            ),
        )
        enqueue("plan", vm_request.pk)
        return "replanning"
    vm_request.transition(S.APPLYING, message=f"Atlantis applies commit {head[:12]}.")
    try:
        result = atlantis.apply(vm_request.branch, vm_request.directory)
    except atlantis.AtlantisOutcomeUnknown as error:
        vm_request.transition(
            S.NEEDS_ATTENTION,
            message=f"The apply's outcome is unknown ({error}). Not retried; vmprov looks for the VM in the inventory.",
            last_error=str(error),
        )
        notify.to_requester(vm_request, "needs attention", f"The apply's outcome is unknown: {error}")
        enqueue("watch", vm_request.pk, 0)
        return "unknown"
    except atlantis.AtlantisConfigError as error:
        _fail(vm_request, S.APPLY_FAILED, f"Atlantis is not configured: {error}")
        return "failed"
    if not result.ok:
        _fail(vm_request, S.APPLY_FAILED, f"The apply failed: {result.message}", apply_output=result.output_text())
        return "failed"
    vm_request.transition(
        S.APPLIED, message=f"Atlantis applied it: {result.summary()}", apply_output=result.output_text(), last_error=""
    )
    try:
        merge = gitops.merge_and_delete(
            vm_request.branch, f"vmprov: {vm_request.vm_name} is applied (request #{vm_request.pk})"
        )
        vm_request.note(merge.message[:1].upper() + merge.message[1:] + ".")
    except gitops.GitError as error:
        vm_request.note(f"Could not merge {vm_request.branch} into the base branch: {error}")
    enqueue("watch", vm_request.pk, 0)
    return "applied"


# --- Closing the loop --------------------------------------------------------------------------


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
    Schedule.objects.create(
        name=f"watch request {request_id} #{attempt + 1}",
        func="provisioning.delivery.watch",
        args=f"{request_id},{attempt + 1}",
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=settings.VMPROV_READY_CHECK_SECONDS),
        cluster=DELIVERY_CLUSTER,
    )
    return "waiting"


def _find_vm(vm_request: VMRequest) -> tuple[dict | None, str]:
    """The request's VM in its datacenter after a fresh cluster refresh: (vm, "") or (None, why not)."""
    run = refresh(Scope.cluster(vm_request.cluster_id), RefreshTrigger.DELIVERY, wait=30)
    problem = ""
    if run is not None and run.outcome != RefreshOutcome.SUCCEEDED:
        problem = run.error
    try:
        vms = catalog.vms(vm_request.datacenter_id).items
    except (catalog.NotFound, catalog.Unavailable, cache.CacheUnavailable) as error:
        return None, problem or str(error)
    matches = [vm for vm in vms if vm["name"] == vm_request.vm_name and vm.get("cluster_id") == vm_request.cluster_id]
    if vm_request.vm_instance_uuid:
        matches = [vm for vm in matches if vm["instance_uuid"] == vm_request.vm_instance_uuid]
    return (matches[0] if len(matches) == 1 else None), problem


def _fail(vm_request: VMRequest, to: str, message: str, **changes) -> None:
    vm_request.transition(to, message=message, last_error=message, **changes)
    notify.to_requester(vm_request, vm_request.get_status_display().lower(), message)
