"""Delivery applies only what vmprov rendered and a person approved: one push job at a time, one request per
Git directory, and a decision binds to the plan the person saw."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import delivery, gitops
from provisioning.delivery import actions, steps
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.atlantis_vcsim import HookedCreation
from tests.support.delivery_world import client_for, drain, submit
from tests.support.git_repos import git
from tests.support.rows import request_fields

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]
S = RequestStatus


def fresh(vm_request) -> VMRequest:
    return VMRequest.objects.get(pk=vm_request.pk)


def run_during_push(monkeypatch, job):
    """Run `job` while the first git push is under way, as a second worker would."""
    real_push = gitops.push_request
    ran = []

    def push_request(**kwargs):
        if not ran:
            ran.append(job())
        return real_push(**kwargs)

    monkeypatch.setattr(gitops, "push_request", push_request)
    return ran


def test_a_second_push_job_for_one_request_leaves_it_to_the_first(world, people, monkeypatch):
    """After a delivery outage the reaper queues a push beside the one still queued: only one of them pushes."""
    vm_request = submit(world, people[0])
    VMRequest.objects.filter(pk=vm_request.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert delivery.reap() == [f"{vm_request.pk}:submitted"]
    ran = run_during_push(monkeypatch, lambda: steps.push(vm_request.pk))
    drain()
    assert ran == ["skipped"], "the second job saw the request pushing and stopped"
    vm_request = fresh(vm_request)
    assert vm_request.status == S.PLANNED, vm_request.last_error
    assert vm_request.events.filter(to_status=S.PUSH_FAILED).count() == 0


def test_two_datacenters_of_one_name_pushed_at_once_never_share_a_directory(world, people, monkeypatch):
    requester = people[0]
    first = submit(world, requester)
    # Another datacenter of the same name: its VM of the same name makes the same directory.
    VMRequest.objects.filter(pk=first.pk).update(datacenter_id="datacenter-elsewhere")
    second = submit(world, requester)
    ran = run_during_push(monkeypatch, lambda: steps.push(second.pk))
    drain()
    assert ran == ["failed"]
    first, second = fresh(first), fresh(second)
    assert first.status == S.PLANNED, first.last_error
    assert second.status == S.PUSH_FAILED
    assert f"Git directory {first.directory} is taken by request #{first.pk}" in second.last_error
    assert second.directory == "", "the directory stays with the first request"


def test_a_delivered_vm_keeps_its_directory(world, people, settings):
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 100}
    requester = people[0]
    first = submit(world, requester)
    drain()
    first = fresh(first)
    assert first.status == S.READY
    # A datacenter elsewhere with the same name asks for a VM of the same name: same directory, VM still alive.
    second = VMRequest.objects.create(
        **request_fields(
            requester,
            vm_name=first.vm_name,
            datacenter_id="datacenter-other",
            datacenter_name=first.datacenter_name,
            rendered_files=first.rendered_files,
            config_hash=first.config_hash,
        )
    )
    assert steps.push(second.pk) == "failed"
    second = fresh(second)
    assert second.status == S.PUSH_FAILED
    assert f"request #{first.pk}" in second.last_error and "ready" in second.last_error


def replanned(vm_request, output: str) -> VMRequest:
    """What a re-plan does to the row: planning again, then planned with another plan."""
    vm_request.transition(S.PLANNING, message="branch moved")
    vm_request.transition(
        S.PLANNED,
        message="planned again",
        plan_output=output,
        plan_digest=VMRequest.digest_of_plan(vm_request.planned_commit, output),
    )
    return fresh(vm_request)


def test_an_approval_holds_only_for_the_plan_the_approver_saw(world, people):
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    page = client_for(approver).get(f"/requests/{vm_request.pk}/").content.decode()
    seen_plan = re.search(r'name="plan" value="([0-9a-f]{64})"', page)[1]
    replanned(fresh(vm_request), "Plan: 1 to add, 0 to change, 1 to destroy.")

    response = client_for(approver).post(
        f"/requests/{vm_request.pk}/decide/",
        {"decision": "approve", "reason": "looks fine", "plan": seen_plan},
        follow=True,
    )
    assert "The plan changed since the page was loaded" in response.content.decode()
    assert fresh(vm_request).status == S.PLANNED
    assert not [call for call in world.atlantis.requests if call.path == "/api/apply"]

    with pytest.raises(actions.NotAllowed, match="plan changed"):
        actions.reject(fresh(vm_request), approver, "no", seen_plan=seen_plan)
    actions.approve(fresh(vm_request), approver, "seen the new one", seen_plan=fresh(vm_request).plan_digest)
    assert fresh(vm_request).status == S.APPROVED


def test_the_admin_action_decides_on_the_plan_its_page_showed(world, people):
    requester, approver, _staff = people
    vm_request = submit(world, requester)
    drain()
    admin = client_for(approver)
    approver.is_staff = approver.is_superuser = True  # may use the admin
    approver.save()
    url = "/admin/provisioning/vmrequest/"
    confirm = admin.post(url, {"action": "approve", "_selected_action": [vm_request.pk]}).content.decode()
    seen_plan = re.search(rf'name="plan_{vm_request.pk}" value="([0-9a-f]{{64}})"', confirm)[1]
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in confirm
    replanned(fresh(vm_request), "Plan: 1 to add, 0 to change, 1 to destroy.")
    admin.post(
        url,
        {"action": "approve", "_selected_action": [vm_request.pk], "reason": "ok", f"plan_{vm_request.pk}": seen_plan},
    )
    assert fresh(vm_request).status == S.PLANNED


# --- The branch holds vmprov's commit, or nothing is planned or applied ---------------------------------------------


def intrude(world, vm_request, tmp_path, name="extra.tf", content='output "x" {\n  value = 1\n}\n') -> str:
    """Somebody with push access commits to the request's branch; returns the new head."""
    clone = tmp_path / f"intruder-{len(list(tmp_path.iterdir()))}"
    git("clone", "--quiet", "--branch", vm_request.branch, str(world.bare), str(clone))
    (clone / vm_request.directory / name).write_text(content)
    git("add", ".", cwd=clone)
    git("-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "--quiet", "-m", "sneaky", cwd=clone)
    git("push", "--quiet", "origin", vm_request.branch, cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


def calls(world, path: str) -> int:
    return len([call for call in world.atlantis.requests if call.path == path])


def test_a_branch_moved_between_push_and_plan_is_not_planned_nor_auto_approved(world, people, settings, tmp_path):
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 100}
    vm_request = submit(world, people[0])
    assert drain(until="push") == ["push"]
    vm_request = fresh(vm_request)
    intrude(
        world,
        vm_request,
        tmp_path,
        "terraform.tfvars",
        vm_request.rendered_files["terraform.tfvars"].replace("num_cpus  = 2", "num_cpus  = 32"),
    )
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.BRANCH_CHANGED
    assert f"{vm_request.directory}/terraform.tfvars" in vm_request.last_error
    assert calls(world, "/api/plan") == 0 and calls(world, "/api/apply") == 0
    assert vm_request.approved_by is None and not vm_request.events.filter(to_status=S.APPROVED).exists()


def test_a_branch_moved_between_plan_and_apply_is_not_applied(world, people, tmp_path):
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request = fresh(vm_request)
    intrude(world, vm_request, tmp_path)
    actions.approve(vm_request, approver, "looks fine", seen_plan=vm_request.plan_digest)
    assert drain() == ["apply"]
    vm_request = fresh(vm_request)
    assert vm_request.status == S.BRANCH_CHANGED
    assert (
        f"{vm_request.directory}/extra.tf" in vm_request.last_error and "nothing was applied" in vm_request.last_error
    )
    assert calls(world, "/api/apply") == 0
    assert calls(world, "/api/plan") == 1, "no re-plan of somebody else's commit"


def test_a_branch_moved_while_atlantis_applies_goes_to_a_person(world, people, tmp_path):
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request = fresh(vm_request)
    world.atlantis.provider = HookedCreation(
        world.atlantis.provider, lambda values: intrude(world, vm_request, tmp_path)
    )
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.NEEDS_ATTENTION
    assert (
        "changed outside vmprov while Atlantis applied"
        in vm_request.events.filter(to_status=S.NEEDS_ATTENTION).last().message
    )


def test_a_branch_moved_and_restored_within_one_apply_is_caught_by_reading_the_vm(world, people, tmp_path):
    """The head is vmprov's commit before and after the apply call, but the VM was built from other values."""
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request = fresh(vm_request)
    real_provider = world.atlantis.provider

    class TamperedCreation:
        def create(self, directory, values, attributes):
            head = vm_request.planned_commit
            intrude(world, vm_request, tmp_path)  # pushed and applied ...
            created = real_provider.create(directory, {**values, "num_cpus": 4, "memory_mb": 4096}, attributes)
            git("--git-dir", str(world.bare), "update-ref", f"refs/heads/{vm_request.branch}", head)  # ... and restored
            return created

    world.atlantis.provider = TamperedCreation()
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.NEEDS_ATTENTION, vm_request.last_error
    assert "4 CPUs, the request says 2" in vm_request.last_error
    assert "4096 MB of memory, the request says 1024" in vm_request.last_error
    assert not vm_request.events.filter(to_status=S.READY).exists()


def test_auto_approval_reads_the_values_of_the_planned_commit_not_the_row(world, people, settings):
    """A row that no longer matches what was pushed (edited in the database) is never auto-approved."""
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 100}
    vm_request = submit(world, people[0], num_cpus="2")
    assert drain(until="push") == ["push"]
    VMRequest.objects.filter(pk=vm_request.pk).update(num_cpus=1)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.BRANCH_CHANGED
    assert "num_cpus is 2, the request says 1" in vm_request.last_error
    assert calls(world, "/api/apply") == 0


def test_a_retry_after_mark_as_failed_looks_for_the_vm_first(world, people):
    requester, approver, staff = people
    world.atlantis.drop_next(commands=("apply",))  # the apply creates the VM, its answer is lost
    vm_request = submit(world, requester)
    drain(until="plan")
    vm_request = fresh(vm_request)
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    assert drain(until="apply") == ["apply"]
    vm_request = fresh(vm_request)
    assert vm_request.status == S.NEEDS_ATTENTION
    actions.mark_failed(vm_request, staff, "looked too early")
    with pytest.raises(actions.NotAllowed, match="exists in vCenter"):
        actions.retry(fresh(vm_request), staff)
    assert fresh(vm_request).status == S.APPLY_FAILED
