"""Delivery never strands a request: unexpected errors, lost workers, a busy Atlantis, and people settling
requests that need attention."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache as django_cache
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from provisioning import atlantis, delivery, gitops
from provisioning.delivery import actions, reaper, verify
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.atlantis_vcsim import FakeCreation
from tests.support.delivery_world import client_for, drain, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]
S = RequestStatus


def fresh(vm_request) -> VMRequest:
    return VMRequest.objects.get(pk=vm_request.pk)


def planned(world, requester, **changes) -> VMRequest:
    vm_request = submit(world, requester, **changes)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.PLANNED, vm_request.last_error
    return vm_request


def test_an_unexpected_error_fails_the_step_visibly(world, people, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full in /tmp")

    monkeypatch.setattr(gitops, "push_request", broken)
    vm_request = submit(world, people[0])
    with pytest.raises(RuntimeError):
        drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.PUSH_FAILED
    assert "RuntimeError: disk full in /tmp" in vm_request.last_error


def test_a_git_that_hangs_is_a_git_error(settings, gitops_remote, monkeypatch):
    import subprocess

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], settings.VMPROV_GIT_TIMEOUT)

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(gitops.GitError, match="did not finish within"):
        gitops.branch_head("main")


def test_a_busy_atlantis_lock_waits_and_plans_later(world, people, settings):
    settings.ATLANTIS_LOCK_WAIT = 0.2
    lock = django_cache.lock(atlantis.lock_name(settings.ATLANTIS_REPO), timeout=30)
    assert lock.acquire(blocking=False)
    vm_request = submit(world, people[0])
    delivery.push(vm_request.pk)
    OrmQ.objects.all().delete()  # the queued push and plan jobs: this test runs the plan step itself
    assert delivery.plan(vm_request.pk) == "waiting"
    vm_request = fresh(vm_request)
    assert vm_request.status == S.PLANNING, "nothing was sent: still planning, not failed"
    assert "Another Atlantis call" in vm_request.events.last().message
    assert Schedule.objects.filter(func="provisioning.delivery.steps.plan", schedule_type=Schedule.ONCE).count() == 1
    lock.release()
    drain()
    assert fresh(vm_request).status == S.PLANNED


def test_a_busy_atlantis_lock_at_apply_goes_back_to_approved_and_applies_later(world, people, settings):
    requester, approver, _ = people
    vm_request = planned(world, requester)
    settings.ATLANTIS_LOCK_WAIT = 0.2
    lock = django_cache.lock(atlantis.lock_name(settings.ATLANTIS_REPO), timeout=30)
    assert lock.acquire(blocking=False)
    actions.approve(vm_request, approver, "go", seen_plan=vm_request.plan_digest)
    OrmQ.objects.all().delete()  # the queued apply: this test runs the apply step itself
    assert delivery.apply(vm_request.pk) == "waiting"
    vm_request = fresh(vm_request)
    assert vm_request.status == S.APPROVED, "nothing was sent: approved again, not failed"
    assert "Another Atlantis call" in vm_request.events.last().message
    assert not [r for r in world.atlantis.requests if r.path == "/api/apply"]
    assert Schedule.objects.filter(func="provisioning.delivery.steps.apply", schedule_type=Schedule.ONCE).count() == 1
    lock.release()
    drain()
    assert fresh(vm_request).status == S.READY
    assert len([r for r in world.atlantis.requests if r.path == "/api/apply"]) == 1


def test_lost_steps_are_requeued_and_a_lost_apply_goes_to_a_person(world, people):
    requester = people[0]
    stuck_plan = submit(world, requester, vm_name="stuck1")
    delivery.push(stuck_plan.pk)
    OrmQ.objects.all().delete()  # the worker died with the plan job
    applying = planned(world, requester, vm_name="stuck2")
    VMRequest.objects.filter(pk=applying.pk).update(status=S.APPLYING)
    long_ago = timezone.now() - timedelta(days=1)
    VMRequest.objects.filter(pk__in=[stuck_plan.pk, applying.pk]).update(updated_at=long_ago)

    reaped = delivery.reap()

    assert sorted(reaped) == sorted([f"{stuck_plan.pk}:planning", f"{applying.pk}:applying"])
    assert fresh(applying).status == S.NEEDS_ATTENTION
    assert "did not report back" in fresh(applying).events.last().message
    drain()
    assert fresh(stuck_plan).status == S.PLANNED
    assert delivery.reap() == [], "nothing is requeued twice"
    assert Schedule.objects.filter(name=reaper.REAPER_SCHEDULE, cluster="delivery").exists()


def test_staff_settle_a_request_that_needs_attention(world, people):
    requester, approver, staff = people
    world.atlantis.drop_next(commands=("apply",))  # applied, answer lost
    world.atlantis.provider, real_provider = FakeCreation(), world.atlantis.provider
    vm_request = planned(world, requester)
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.NEEDS_ATTENTION  # no VM appeared
    # Only staff can settle it: they hear about it too, with a link to where they do.
    attention = [m for m in mail.outbox if "needs attention" in m.subject]
    assert [(m.to, m.subject) for m in attention] == [
        (["alice@example.com"], "[vmprov] web01: needs attention"),
        (["ops@example.com"], "[vmprov] web01: needs attention (staff)"),
    ]
    assert f"/requests/{vm_request.pk}/#resolution" in attention[1].body
    page = client_for(staff).get(f"/requests/{vm_request.pk}/").content.decode()
    assert "Look for the VM again" in page and "Mark as failed" in page
    assert "Look for the VM again" not in client_for(requester).get(f"/requests/{vm_request.pk}/").content.decode()

    # The VM turns up after all (someone finished the clone by hand): staff ask vmprov to look again.
    real_provider.create(None, _values_of(vm_request), {})
    client_for(staff).post(f"/requests/{vm_request.pk}/resolve/", {"resolution": "recheck"})
    drain()
    assert fresh(vm_request).status == S.READY


def _values_of(vm_request):
    from devtools.terraform_sim import read_tfvars

    return read_tfvars(vm_request.rendered_files["terraform.tfvars"], "terraform.tfvars")


def test_marking_as_failed_lets_staff_retry_with_a_fresh_plan(world, people):
    requester, approver, staff = people
    world.atlantis.drop_next(before_work=True, commands=("apply",))
    vm_request = planned(world, requester)
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    drain()
    vm_request = fresh(vm_request)
    assert vm_request.status == S.NEEDS_ATTENTION
    response = client_for(staff).post(f"/requests/{vm_request.pk}/resolve/", {"resolution": "failed", "reason": ""})
    assert fresh(vm_request).status == S.NEEDS_ATTENTION, "a reason is required"
    client_for(staff).post(
        f"/requests/{vm_request.pk}/resolve/", {"resolution": "failed", "reason": "no VM in vCenter"}
    )
    assert fresh(vm_request).status == S.APPLY_FAILED
    # The Atlantis lock a lost apply keeps runs out after its TTL (minutes); here it is let go by hand.
    django_cache.delete_pattern("*atlantis*")
    plans_before = len([r for r in world.atlantis.requests if r.path == "/api/plan"])
    client_for(staff).post(f"/requests/{vm_request.pk}/retry/")
    drain()
    assert fresh(vm_request).status == S.PLANNED
    assert len([r for r in world.atlantis.requests if r.path == "/api/plan"]) == plans_before + 1, (
        "after a failed apply the approver sees a new plan, not the old one"
    )
    assert response.status_code == 302


def test_a_retry_whose_name_was_taken_meanwhile_says_so(world, people):
    requester, _, staff = people
    vm_request = submit(world, requester)
    VMRequest.objects.filter(pk=vm_request.pk).update(status=S.PLAN_FAILED)
    OrmQ.objects.all().delete()
    other = submit(world, requester)  # the name is free again: another request takes it
    with pytest.raises(actions.NotAllowed, match=f"taken by request #{other.pk}"):
        actions.retry(fresh(vm_request), staff)
    response = client_for(staff).post(f"/requests/{vm_request.pk}/retry/", follow=True)
    assert response.status_code == 200 and "taken by request" in response.content.decode()


def test_approval_needs_a_reason(world, people):
    requester, approver, _ = people
    vm_request = planned(world, requester)
    with pytest.raises(actions.NotAllowed, match="Say why"):
        actions.approve(vm_request, approver, "  ", seen_plan=vm_request.plan_digest)
    assert fresh(vm_request).status == S.PLANNED


def test_two_datacenters_never_share_a_directory(world, people, settings):
    requester, _, _ = people
    first = submit(world, requester)
    drain()
    # Another datacenter whose name makes the same directory, and a VM of the same name there.
    VMRequest.objects.filter(pk=first.pk).update(datacenter_id="datacenter-elsewhere")
    second = submit(world, requester)
    drain()
    second = fresh(second)
    assert second.status == S.PUSH_FAILED
    assert f"Git directory {fresh(first).directory} is taken by request #{first.pk}" in second.last_error


def test_the_vm_terraform_created_is_read_from_the_apply_output():
    output = (
        "vsphere_virtual_machine.vm: Creating...\n"
        "vsphere_virtual_machine.vm: Still creating... [10s elapsed]\n"
        "vsphere_virtual_machine.vm: Creation complete after 1m2s [id=4215E8A2-0C4E-4B5A-9D7E-0123456789AB]\n"
    )
    assert verify.created_vm_uuid(output) == "4215e8a2-0c4e-4b5a-9d7e-0123456789ab"
    assert verify.created_vm_uuid("No changes.") == ""
