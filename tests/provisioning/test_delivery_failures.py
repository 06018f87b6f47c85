"""Every way delivery can fail shows the state and the message a person sees; nothing entered is lost."""

import stat

import pytest
from django.core import mail
from django.utils.html import escape

from devtools.atlantis import LocalAtlantis
from devtools.ports import free_port
from provisioning.delivery import actions
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.atlantis_vcsim import FailingCreation, FakeCreation
from tests.support.delivery_world import REPO, TOKEN, client_for, drain, point_atlantis, submit
from tests.support.vcenter_admin import admin_session, find, vim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]
S = RequestStatus


def settled(vm_request) -> VMRequest:
    """Run delivery to its end; the requester's page must show the request's problem, whatever it is."""
    drain()
    vm_request = VMRequest.objects.get(pk=vm_request.pk)
    if vm_request.last_error:
        page = client_for(vm_request.requester).get(f"/requests/{vm_request.pk}/").content.decode()
        assert escape(vm_request.last_error.splitlines()[0]) in page, "the requester sees what went wrong"
    return vm_request


def shown_to(user, vm_request) -> str:
    return client_for(user).get(f"/requests/{vm_request.pk}/").content.decode()


def test_a_rejected_push_fails_the_request_and_staff_can_retry(world, people):
    requester, _, staff = people
    hook = world.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen for the holidays' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)

    vm_request = settled(submit(world, requester))

    assert vm_request.status == S.PUSH_FAILED
    assert "pushes are frozen for the holidays" in vm_request.last_error
    assert "pushes are frozen" in shown_to(requester, vm_request)
    assert mail.outbox[-1].to == ["alice@example.com"] and "push failed" in mail.outbox[-1].subject.lower()
    assert vm_request.rendered_files and vm_request.notes.startswith("hostile"), "nothing entered is lost"

    page = shown_to(staff, vm_request)
    assert "Retry the delivery" in page
    hook.unlink()
    client_for(staff).post(f"/requests/{vm_request.pk}/retry/")
    vm_request = settled(vm_request)
    assert vm_request.status == S.PLANNED
    assert [e.to_status for e in vm_request.events.all()][-4:] == ["submitted", "pushing", "planning", "planned"]


def test_only_staff_retry(world, people):
    requester, _, _ = people
    vm_request = submit(world, requester)
    VMRequest.objects.filter(pk=vm_request.pk).update(status=S.PLAN_FAILED)
    client_for(requester).post(f"/requests/{vm_request.pk}/retry/")
    assert VMRequest.objects.get(pk=vm_request.pk).status == S.PLAN_FAILED


def plan_with(settings, world, requester, atlantis: LocalAtlantis | None = None, url: str | None = None):
    if atlantis is not None:
        point_atlantis(settings, atlantis)
    if url is not None:
        settings.ATLANTIS_URL = url
    return settled(submit(world, requester))


def test_atlantis_down_fails_the_plan_with_a_clear_reason(settings, world, people):
    vm_request = plan_with(settings, world, people[0], url=f"http://127.0.0.1:{free_port()}")
    assert vm_request.status == S.PLAN_FAILED
    assert "unreachable" in vm_request.last_error


def test_a_refused_token_fails_the_plan_and_the_token_is_never_shown(settings, world, people):
    settings.ATLANTIS_TOKEN = "wrong-token-value"
    vm_request = settled(submit(world, people[0]))
    assert vm_request.status == S.PLAN_FAILED
    assert "401" in vm_request.last_error and "token" in vm_request.last_error.lower()
    page = shown_to(people[2], vm_request)
    assert "wrong-token-value" not in page and TOKEN not in page
    assert "wrong-token-value" not in str(list(VMRequest.objects.values()))


def test_a_repository_not_allowlisted_is_403(settings, world, people):
    with LocalAtlantis(api_secret=TOKEN, repo_clone_url={REPO: world.bare}, repo_allowlist=["other/*"]) as other:
        vm_request = plan_with(settings, world, people[0], atlantis=other)
    assert vm_request.status == S.PLAN_FAILED
    assert "403" in vm_request.last_error and "allowlisted" in vm_request.last_error


def test_an_atlantis_without_api_secret_is_reported(settings, world, people):
    with LocalAtlantis(api_secret=None, repo_clone_url={REPO: world.bare}) as disabled:
        vm_request = plan_with(settings, world, people[0], atlantis=disabled)
    assert vm_request.status == S.PLAN_FAILED
    assert "no API secret configured" in vm_request.last_error


def test_a_var_file_atlantis_does_not_load_fails_the_plan(settings, world, people):
    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    vm_request = settled(submit(world, people[0]))
    assert vm_request.status == S.PLAN_FAILED
    assert "500" in vm_request.last_error
    assert "no detail from Atlantis; see its log at" in vm_request.last_error
    assert any("No value for required variable" in error.text for error in world.atlantis.errors)


def test_machine_inputs_tfvars_plans_when_the_server_workflow_passes_it(settings, world, people):
    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    with LocalAtlantis(api_secret=TOKEN, repo_clone_url={REPO: world.bare}, var_files=["machine_inputs.tfvars"]) as ok:
        vm_request = plan_with(settings, world, people[0], atlantis=ok)
    assert vm_request.status == S.PLANNED, vm_request.last_error


def test_a_plan_that_plans_nothing_is_a_failure(world, people):
    world.atlantis.respond_next(
        200, {"Error": None, "Failure": "", "ProjectResults": [], "PlansDeleted": False}, commands=("plan",)
    )
    vm_request = settled(submit(world, people[0]))
    assert vm_request.status == S.PLAN_FAILED
    assert "nothing was planned" in vm_request.last_error


def test_a_500_with_a_project_failure_shows_the_failure(world, people, staff):
    world.atlantis.respond_next(
        500,
        {
            "Error": None,
            "Failure": "",
            "ProjectResults": [
                {
                    "Error": None,
                    "Failure": "This project is currently locked by an unapplied plan",
                    "PlanSuccess": None,
                    "Command": 1,
                    "RepoRelDir": "vms/DC0/web01",
                    "Workspace": "default",
                    "ProjectName": "",
                }
            ],
            "PlansDeleted": False,
        },
        commands=("plan",),
    )
    vm_request = settled(submit(world, people[0]))
    assert vm_request.status == S.PLAN_FAILED
    assert "currently locked by an unapplied plan" in vm_request.last_error
    assert "currently locked" in shown_to(people[0], vm_request)
    admin_page = client_for(staff).get(f"/admin/provisioning/vmrequest/{vm_request.pk}/change/").content.decode()
    assert "currently locked by an unapplied plan" in admin_page


def approve_and_settle(world, people) -> VMRequest:
    requester, approver, _ = people
    vm_request = settled(submit(world, requester))
    assert vm_request.status == S.PLANNED, vm_request.last_error
    actions.approve(vm_request, approver, "go", seen_plan=vm_request.plan_digest)
    return settled(vm_request)


def test_a_failed_apply_is_reported_and_nothing_is_merged(world, people):
    world.atlantis.provider = FailingCreation("Error: error cloning virtual machine: datastore is full")
    vm_request = approve_and_settle(world, people)
    assert vm_request.status == S.APPLY_FAILED
    # Atlantis serializes a failed Terraform run as "Error": {} : its text is only in Atlantis's log.
    assert "no detail from Atlantis; see its log at" in vm_request.last_error
    assert any("datastore is full" in error.text for error in world.atlantis.errors)
    assert mail.outbox[-1].subject == "[vmprov] web01: apply failed"


def test_an_apply_whose_answer_is_lost_is_not_retried_and_the_vm_is_found(world, people):
    world.atlantis.drop_next(commands=("apply",))  # Atlantis applied, but the answer never arrives
    vm_request = approve_and_settle(world, people)
    assert vm_request.status == S.READY
    history = [(e.to_status, e.message) for e in vm_request.events.all()]
    attention = next(message for status, message in history if status == "needs_attention")
    assert "outcome is unknown" in attention
    assert "merged vmprov/" in history[-1][1].lower(), "the branch is merged once the VM is found"
    assert len([r for r in world.atlantis.requests if r.path == "/api/apply"]) == 1, "never a blind retry"
    with admin_session(world.vcsim) as si:
        assert find(si, vim.VirtualMachine, "web01")._moId == vm_request.vm_moref


def test_an_apply_that_never_happened_asks_a_person_to_look(world, people):
    world.atlantis.drop_next(before_work=True, commands=("apply",))
    vm_request = approve_and_settle(world, people)
    assert vm_request.status == S.NEEDS_ATTENTION
    assert "a person must look" in vm_request.events.last().message
    assert len([r for r in world.atlantis.requests if r.path == "/api/apply"]) == 1


def test_a_vm_that_does_not_show_up_moves_to_needs_attention(world, people):
    world.atlantis.provider = FakeCreation()
    vm_request = approve_and_settle(world, people)
    assert vm_request.status == S.NEEDS_ATTENTION
    messages = [e.message for e in vm_request.events.all()]
    assert any("not in the inventory yet" in m for m in messages)
    assert "did not appear in the inventory after 2 checks" in messages[-1]
