"""The delivery steps on their own, with the Git, Atlantis and inventory seams patched: fast, no vcsim, no Redis.

World-level tests (test_delivery*.py) drive the same steps end to end against the real parts."""

from dataclasses import dataclass

import pytest
from django_q.models import OrmQ, Schedule

from inventory import catalog
from provisioning import atlantis, gitops
from provisioning.atlantis import AtlantisResult, Outcome, ProjectResult
from provisioning.delivery import steps
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.rows import request_fields

pytestmark = pytest.mark.django_db(transaction=True)
S = RequestStatus
PUSHED = "a" * 40
OTHER = "b" * 40
PLAN_OUTPUT = "Plan: 1 to add, 0 to change, 0 to destroy."
APPLY_OUTPUT = (
    "vsphere_virtual_machine.vm: Creation complete after 5s [id=4215e8a2-0c4e-4b5a-9d7e-0123456789ab]\n"
    "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
)


def result(command: str, outcome: Outcome, output: str = "", message: str = "") -> AtlantisResult:
    succeeded = outcome is Outcome.SUCCEEDED
    project = ProjectResult(directory="vms/DC0/x1", workspace="default", succeeded=succeeded, output=output)
    return AtlantisResult(command=command, outcome=outcome, message=message, projects=[project] if output else [])


@dataclass
class Seams:
    head: str | None = PUSHED
    plan: AtlantisResult | None = None
    apply: AtlantisResult | None = None
    head_after: str | None = None
    vm: dict | None = None
    hardware: dict | None = None


@pytest.fixture
def seams(monkeypatch):
    state = Seams()

    def branch_head(branch):
        return state.head

    def call(command):
        def run(branch, directory, *, commit="", before_send=None, after_answer=None):
            if before_send:
                before_send()
            if state.head_after is not None:
                state.head = state.head_after
            if after_answer:
                after_answer()
            return getattr(state, command)

        return run

    monkeypatch.setattr(gitops, "branch_head", branch_head)
    monkeypatch.setattr(
        gitops, "push_request", lambda **kw: gitops.PushResult(kw["branch"], kw["directory"], PUSHED, True)
    )
    monkeypatch.setattr(gitops, "merge_and_delete", lambda *a: gitops.MergeResult(True, "c" * 40, "merged"))
    monkeypatch.setattr(atlantis, "plan", call("plan"))
    monkeypatch.setattr(atlantis, "apply", call("apply"))
    monkeypatch.setattr(catalog, "find_vm", lambda *a: catalog.VMLookup(state.vm, ""))
    monkeypatch.setattr(catalog, "vm_hardware", lambda vm_id: state.hardware)
    monkeypatch.setattr(steps, "changed_branch_message", lambda r, e, h, when: f"branch changed {when}")
    return state


@pytest.fixture
def row(requester):
    def make(status, **changes):
        fields = request_fields(requester, status=status, rendered_files={"machine.tf": "x"}, config_hash="h")
        return VMRequest.objects.create(**{**fields, **changes})

    return make


def queued() -> list[str]:
    return [task.task["func"].rsplit(".", 1)[-1] for task in OrmQ.objects.all()]


def fresh(vm_request) -> VMRequest:
    return VMRequest.objects.get(pk=vm_request.pk)


def test_push_claims_the_directory_and_queues_the_plan(seams, row):
    vm_request = row(S.SUBMITTED)
    assert steps.push(vm_request.pk) == "pushed"
    vm_request = fresh(vm_request)
    assert (vm_request.status, vm_request.pushed_commit, vm_request.directory) == (S.PLANNING, PUSHED, "vms/DC0/x1")
    assert queued() == ["plan"]


def test_a_failed_push_is_push_failed_with_the_reason(seams, row, monkeypatch):
    def refused(**kwargs):
        raise gitops.GitError("git push failed: protected branch")

    monkeypatch.setattr(gitops, "push_request", refused)
    vm_request = row(S.SUBMITTED)
    assert steps.push(vm_request.pk) == "failed"
    assert "protected branch" in fresh(vm_request).last_error


@pytest.mark.parametrize(
    ("outcome", "status", "returned"),
    [
        (Outcome.SUCCEEDED, S.PLANNED, "planned"),
        (Outcome.FAILED, S.PLAN_FAILED, "failed"),
        (Outcome.NOT_SENT, S.PLAN_FAILED, "failed"),
        (Outcome.UNANSWERED, S.PLAN_FAILED, "failed"),
        (Outcome.BUSY, S.PLANNING, "waiting"),
    ],
)
def test_each_plan_outcome_moves_the_request(seams, row, outcome, status, returned):
    seams.plan = result("plan", outcome, PLAN_OUTPUT if outcome is Outcome.SUCCEEDED else "", message="why")
    vm_request = row(S.PLANNING, pushed_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    assert steps.plan(vm_request.pk) == returned
    vm_request = fresh(vm_request)
    assert vm_request.status == status
    if outcome is Outcome.SUCCEEDED:
        assert vm_request.planned_commit == PUSHED and vm_request.plan_digest
    if outcome is Outcome.BUSY:
        assert Schedule.objects.filter(func="provisioning.delivery.steps.plan").count() == 1


@pytest.mark.parametrize(("head", "head_after"), [(OTHER, None), (PUSHED, OTHER)])
def test_a_changed_branch_before_or_during_the_plan_stops_the_request(seams, row, head, head_after):
    seams.head, seams.head_after = head, head_after
    seams.plan = result("plan", Outcome.SUCCEEDED, PLAN_OUTPUT)
    vm_request = row(S.PLANNING, pushed_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    assert steps.plan(vm_request.pk) == "stopped"
    assert fresh(vm_request).status == S.BRANCH_CHANGED


def test_auto_approval_needs_the_planned_files_to_be_vmprovs(seams, row, settings, monkeypatch):
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}
    seams.plan = result("plan", Outcome.SUCCEEDED, PLAN_OUTPUT)
    monkeypatch.setattr(steps, "planned_values_problem", lambda vm_request: None)
    approved = row(S.PLANNING, pushed_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    steps.plan(approved.pk)
    assert fresh(approved).status == S.APPROVED and queued()[-1] == "apply"
    monkeypatch.setattr(steps, "planned_values_problem", lambda vm_request: "tfvars differ")
    stopped = row(S.PLANNING, vm_name="x2", pushed_commit=PUSHED, branch="vmprov/2-x2", directory="vms/DC0/x2")
    assert steps.plan(stopped.pk) == "stopped"
    assert fresh(stopped).status == S.BRANCH_CHANGED and fresh(stopped).last_error == "tfvars differ"


@pytest.mark.parametrize(
    ("outcome", "status", "returned"),
    [
        (Outcome.SUCCEEDED, S.APPLIED, "applied"),
        (Outcome.FAILED, S.APPLY_FAILED, "failed"),
        (Outcome.NOT_SENT, S.APPLY_FAILED, "failed"),
        (Outcome.UNANSWERED, S.NEEDS_ATTENTION, "unknown"),
        (Outcome.BUSY, S.APPROVED, "waiting"),
    ],
)
def test_each_apply_outcome_moves_the_request(seams, row, outcome, status, returned):
    seams.apply = result("apply", outcome, APPLY_OUTPUT if outcome is Outcome.SUCCEEDED else "", message="why")
    vm_request = row(S.APPROVED, planned_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    assert steps.apply(vm_request.pk) == returned
    assert fresh(vm_request).status == status
    if outcome in (Outcome.SUCCEEDED, Outcome.UNANSWERED):
        assert queued() == ["watch"]


def test_a_branch_changed_before_the_apply_sends_nothing(seams, row):
    seams.head = OTHER
    seams.apply = None  # never asked for
    vm_request = row(S.APPROVED, planned_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    assert steps.apply(vm_request.pk) == "stopped"
    assert fresh(vm_request).status == S.BRANCH_CHANGED


def test_a_branch_changed_during_the_apply_waits_for_a_person(seams, row):
    seams.head_after = OTHER
    seams.apply = result("apply", Outcome.SUCCEEDED, APPLY_OUTPUT)
    vm_request = row(S.APPROVED, planned_commit=PUSHED, branch="vmprov/1-x1", directory="vms/DC0/x1")
    assert steps.apply(vm_request.pk) == "unknown"
    assert fresh(vm_request).status == S.NEEDS_ATTENTION
    assert queued() == [], "nobody calls it ready before a person looked"


VM = {"id": "vm-42", "name": "x1", "instance_uuid": "5012"}


def test_watch_marks_ready_when_the_vm_is_what_was_approved(seams, row):
    seams.vm, seams.hardware = VM, {"num_cpus": 1, "memory_mb": 512, "disks": [{"size_gb": 10}]}
    vm_request = row(S.APPLIED, branch="vmprov/1-x1")
    seams.head = None  # merged already
    assert steps.watch(vm_request.pk) == "ready"
    assert (fresh(vm_request).status, fresh(vm_request).vm_moref) == (S.READY, "vm-42")


def test_a_ready_vm_whose_listed_size_lags_behind_vcenter_asks_for_a_fresh_look(seams, row, monkeypatch):
    asked = []
    monkeypatch.setattr(catalog, "ask_for_a_fresh_look", lambda: asked.append(True))
    hardware = {"num_cpus": 1, "memory_mb": 512, "disks": [{"size_gb": 10}]}
    seams.vm, seams.hardware = {**VM, "num_cpus": 1, "memory_mb": 512}, hardware
    assert steps.watch(row(S.APPLIED).pk) == "ready"
    assert asked == [], "the lists agree with vCenter"
    seams.vm = {**VM, "num_cpus": 1, "memory_mb": 32}  # the template's memory: the reconfiguration not listed yet
    assert steps.watch(row(S.APPLIED, vm_name="x2").pk) == "ready", "vCenter itself has the approved size"
    assert asked == [True]


def test_watch_sends_a_vm_that_differs_to_a_person(seams, row):
    seams.vm, seams.hardware = VM, {"num_cpus": 8, "memory_mb": 512, "disks": [{"size_gb": 10}]}
    vm_request = row(S.APPLIED)
    assert steps.watch(vm_request.pk) == "mismatch"
    assert fresh(vm_request).status == S.NEEDS_ATTENTION
    assert "8 CPUs, the request says 1" in fresh(vm_request).last_error


def test_watch_checks_again_later_then_gives_up(seams, row, settings):
    settings.VMPROV_READY_CHECKS = 2
    vm_request = row(S.APPLIED)
    assert steps.watch(vm_request.pk, 0) == "waiting"
    assert Schedule.objects.filter(func="provisioning.delivery.steps.watch", args=f"{vm_request.pk},1").exists()
    assert steps.watch(vm_request.pk, 1) == "gave up"
    assert fresh(vm_request).status == S.NEEDS_ATTENTION
