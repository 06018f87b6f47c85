"""Delivery end to end and its failure cases, against vcsim, a bare Git repo and a local Atlantis server."""

import dataclasses
import json
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from inventory import catalog
from provisioning import delivery
from provisioning.delivery import actions
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.delivery_world import client_for, drain, make_world, submit
from tests.support.git_repos import git
from tests.support.services import use_vcenter
from tests.support.vcenter_admin import admin_session, find, vim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]
S = RequestStatus


def statuses(vm_request):
    return [event.to_status for event in vm_request.events.all()]


def test_a_request_travels_all_the_way_to_a_ready_vm(world, people, staff):
    requester, approver, _ = people
    vm_request = submit(world, requester)
    assert drain() == ["push", "plan"]
    vm_request.refresh_from_db()
    assert vm_request.status == S.PLANNED
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in vm_request.plan_output
    assert vm_request.planned_commit == vm_request.pushed_commit
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]  # the approvers: plan ready

    # The pushed branch holds the files; Atlantis got the directory through Paths.
    files = git("--git-dir", str(world.bare), "ls-tree", "-r", "--name-only", vm_request.branch)
    assert f"{vm_request.directory}/terraform.tfvars" in files.splitlines()
    plan_call = next(r for r in world.atlantis.requests if r.path == "/api/plan")
    payload = json.loads(plan_call.body)
    assert payload["Paths"] == [{"Directory": vm_request.directory, "Workspace": "default"}]
    assert payload["Ref"] == vm_request.branch

    page = client_for(approver).get(f"/requests/{vm_request.pk}/")
    assert "Plan: 1 to add" in page.content.decode() and 'value="approve"' in page.content.decode()
    admin_page = client_for(staff).get(f"/admin/provisioning/vmrequest/{vm_request.pk}/change/").content.decode()
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in admin_page
    seen_plan = re.search(r'name="plan" value="([0-9a-f]{64})"', page.content.decode())[1]
    response = client_for(approver).post(
        f"/requests/{vm_request.pk}/decide/", {"decision": "approve", "reason": "capacity is fine", "plan": seen_plan}
    )
    assert response.status_code == 302
    assert drain() == ["apply", "watch"]

    vm_request.refresh_from_db()
    assert vm_request.status == S.READY
    assert statuses(vm_request) == [
        "submitted",
        "pushing",
        "planning",
        "planned",
        "approved",
        "applying",
        "applied",
        "applied",
        "ready",
    ]
    assert vm_request.approved_by == approver
    assert "Apply complete! Resources: 1 added" in vm_request.apply_output
    with admin_session(world.vcsim) as si:
        vm = find(si, vim.VirtualMachine, "web01")
        assert (vm._moId, vm.config.instanceUuid) == (vm_request.vm_moref, vm_request.vm_instance_uuid)
        assert vm.config.hardware.numCPU == 2
    # The base branch shows what is deployed; the request's branch is gone.
    main_files = git("--git-dir", str(world.bare), "ls-tree", "-r", "--name-only", "main").splitlines()
    assert f"{vm_request.directory}/machine.tf" in main_files
    assert vm_request.branch not in git("--git-dir", str(world.bare), "branch")
    assert [m.subject for m in mail.outbox][1:] == ["[vmprov] web01: approved", "[vmprov] web01: ready"]
    history = client_for(requester).get(f"/requests/{vm_request.pk}/").content.decode()
    assert "Ready" in history and "merged vmprov/" in history.lower()
    # The ready page and the ready email say where the VM runs, from the inventory.
    listed = next(vm for vm in catalog.vms(vm_request.datacenter_id).items if vm["id"] == vm_request.vm_moref)
    for fact in ("Power", "Host", "Cluster", "IP addresses", listed.get("host_name") or listed["host_id"]):
        assert fact in history
    ready = mail.outbox[-1]
    assert ready.to == ["alice@example.com"]
    assert "Power: On" in ready.body and f"Cluster: {listed.get('cluster_name') or listed['cluster_id']}" in ready.body
    assert "Network: " in ready.body and "Notes: hostile" in ready.body
    assert "<dt>" not in ready.body and "<th" in ready.alternatives[0].content


def test_the_approvers_mail_says_why_and_links_straight_to_the_decision(world, people, settings):
    requester, _, _ = people
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 1, "memory_mb": 8192, "disk_size_gb": 100}
    vm_request = submit(world, requester)
    drain()
    asked = mail.outbox[-1]
    assert asked.to == ["bob@example.com"] and asked.subject == "[vmprov] web01: plan ready for your approval"
    assert "2 CPUs is above the auto-approval limit of 1" in asked.body
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in asked.body
    assert f"http://127.0.0.1:8000/requests/{vm_request.pk}/#decision" in asked.body
    assert f'href="http://127.0.0.1:8000/requests/{vm_request.pk}/#decision"' in asked.alternatives[0].content


def test_when_no_approver_has_an_email_address_the_history_and_the_page_say_so(world, people):
    requester, approver, _ = people
    approver.email = ""
    approver.save()
    vm_request = submit(world, requester)
    drain()
    assert mail.outbox == []
    assert "No approver has an email address" in vm_request.events.last().message
    page = client_for(requester).get(f"/requests/{vm_request.pk}/").content.decode()
    assert 'id="no-approver-email"' in page


@pytest.fixture
def two_cluster_world(settings, vcsim_factory, real_redis, gitops_remote):
    """The delivery world on a vcsim whose datacenter has two clusters, its template in the first one."""
    vcsim = vcsim_factory(dc=1, cluster=2)
    use_vcenter(settings, vcsim)
    settings.VMPROV_READY_CHECK_SECONDS = 1
    settings.VMPROV_READY_CHECKS = 2
    world = make_world(settings, vcsim, gitops_remote)
    yield world
    world.atlantis.stop()


def test_a_request_for_another_cluster_than_the_templates_becomes_ready_there(two_cluster_world, people):
    first, second = catalog.clusters(two_cluster_world.datacenter["id"]).items
    assert two_cluster_world.template["cluster_id"] == first["id"]
    world = dataclasses.replace(two_cluster_world, cluster=second, resources=catalog.cluster_resources(second["id"]))
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request.refresh_from_db()
    actions.approve(vm_request, approver, "ok", seen_plan=vm_request.plan_digest)
    drain()
    vm_request.refresh_from_db()
    assert vm_request.status == S.READY, vm_request.last_error
    assert vm_request.cluster_id == second["id"]
    with admin_session(world.vcsim) as si:
        vm = find(si, vim.VirtualMachine, "web01")
        assert (vm._moId, vm.runtime.host.parent._moId) == (vm_request.vm_moref, second["id"])


def test_a_static_address_reaches_the_guest(world, people):
    requester, approver, _ = people
    vm_request = submit(
        world,
        requester,
        vm_name="db07",
        ip_mode="static",
        ipv4_address="10.20.0.7",
        ipv4_prefix="24",
        ipv4_gateway="10.20.0.1",
        dns_servers="10.20.0.2",
    )
    drain()
    actions.approve(
        VMRequest.objects.get(pk=vm_request.pk),
        approver,
        "ok",
        seen_plan=VMRequest.objects.get(pk=vm_request.pk).plan_digest,
    )
    drain()
    vm_request.refresh_from_db()
    assert vm_request.status == S.READY
    with admin_session(world.vcsim) as si:
        assert find(si, vim.VirtualMachine, "db07").guest.ipAddress == "10.20.0.7"


def test_nobody_approves_their_own_request_and_only_approvers_approve(world, people, django_user_model):
    requester, approver, _ = people
    approver_request = submit(world, approver, vm_name="bobvm")
    drain()
    with pytest.raises(actions.NotAllowed, match="own request"):
        actions.approve(
            VMRequest.objects.get(pk=approver_request.pk),
            approver,
            "mine",
            seen_plan=VMRequest.objects.get(pk=approver_request.pk).plan_digest,
        )
    with pytest.raises(actions.NotAllowed, match="approvers group"):
        actions.approve(
            VMRequest.objects.get(pk=approver_request.pk),
            requester,
            "not an approver",
            seen_plan=VMRequest.objects.get(pk=approver_request.pk).plan_digest,
        )
    page = client_for(approver).get(f"/requests/{approver_request.pk}/").content.decode()
    assert 'value="approve"' not in page
    assert VMRequest.objects.get(pk=approver_request.pk).status == S.PLANNED


def test_a_rejected_request_stays_in_the_history_with_its_reason(world, people):
    requester, approver, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request.refresh_from_db()
    client_for(approver).post(
        f"/requests/{vm_request.pk}/decide/",
        {"decision": "reject", "reason": "no budget", "plan": vm_request.plan_digest},
    )
    vm_request.refresh_from_db()
    assert vm_request.status == S.REJECTED
    rejection, deletion = vm_request.events.order_by("-id")[:2][::-1]
    assert rejection.message == "Rejected by bob: no budget"
    assert deletion.message == f"Deleted branch {vm_request.branch}."
    assert git("--git-dir", str(world.bare), "branch", "--list", vm_request.branch) == ""
    rejected = mail.outbox[-1]
    assert rejected.subject == "[vmprov] web01: rejected" and "no budget" in rejected.body
    assert rejected.to == ["alice@example.com"]
    # A way to ask again, the form filled in from this request, in the text and in the HTML alternative.
    again = f"http://127.0.0.1:8000/requests/new/?again={vm_request.pk}"
    assert again in rejected.body and f'href="{again}"' in rejected.alternatives[0].content
    assert world.atlantis.requests[-1].path == "/api/plan", "nothing was applied"
    page = client_for(requester).get(f"/requests/{vm_request.pk}/").content.decode()
    assert re.search(r'id="rejection"><strong>Rejected by bob: no budget</strong>', page), "said at the top"


def test_branches_of_closed_requests_stay_when_configured_so(world, people, settings):
    requester, approver, _ = people
    settings.VMPROV_GITOPS_DELETE_CLOSED_BRANCHES = False
    vm_request = submit(world, requester)
    drain()
    vm_request.refresh_from_db()
    actions.reject(vm_request, approver, "no budget", seen_plan=vm_request.plan_digest)
    assert git("--git-dir", str(world.bare), "branch", "--list", vm_request.branch).strip() == vm_request.branch
    assert vm_request.events.last().to_status == S.REJECTED


def test_a_branch_someone_else_moved_is_left_for_a_person(world, people):
    requester, _, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request.refresh_from_db()
    git("--git-dir", str(world.bare), "update-ref", f"refs/heads/{vm_request.branch}", "refs/heads/main")
    actions.cancel(vm_request, requester)
    assert "is left in place" in vm_request.events.last().message
    assert git("--git-dir", str(world.bare), "branch", "--list", vm_request.branch).strip() == vm_request.branch


def test_the_requester_can_cancel_before_approval(world, people):
    requester, _, _ = people
    vm_request = submit(world, requester)
    drain()
    mail.outbox.clear()
    client_for(requester).post(f"/requests/{vm_request.pk}/cancel/")
    vm_request.refresh_from_db()
    assert vm_request.status == S.CANCELLED
    assert drain() == []
    # The approvers who were asked to decide hear that they need not; the branch goes.
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["bob@example.com"], "[vmprov] web01: cancelled, no decision needed")
    ]
    assert vm_request.events.last().message == f"Deleted branch {vm_request.branch}."
    assert git("--git-dir", str(world.bare), "branch", "--list", vm_request.branch) == ""


def test_retried_jobs_do_not_push_or_plan_twice(world, people):
    requester, _, _ = people
    vm_request = submit(world, requester)
    drain()
    vm_request.refresh_from_db()
    assert delivery.push(vm_request.pk) == "skipped"
    assert delivery.plan(vm_request.pk) == "skipped"
    # A push job that died after pushing (status still "pushing"): a second job leaves it alone; the reaper
    # sends it back to submitted, and the new push finds the branch already holding it: no second commit.
    commits = git("--git-dir", str(world.bare), "rev-list", "--count", vm_request.branch)
    VMRequest.objects.filter(pk=vm_request.pk).update(status=S.PUSHING, updated_at=timezone.now() - timedelta(days=1))
    assert delivery.push(vm_request.pk) == "skipped"
    assert delivery.reap() == [f"{vm_request.pk}:pushing"]
    assert drain()[0] == "push"
    vm_request.refresh_from_db()
    assert vm_request.status == S.PLANNED
    assert "already holds this configuration" in vm_request.events.filter(to_status=S.PLANNING).last().message
    assert git("--git-dir", str(world.bare), "rev-list", "--count", vm_request.branch) == commits
    VMRequest.objects.filter(pk=vm_request.pk).update(status=S.PLANNING)
    plans = len([r for r in world.atlantis.requests if r.path == "/api/plan"])
    assert delivery.plan(vm_request.pk) == "planned"
    assert len([r for r in world.atlantis.requests if r.path == "/api/plan"]) == plans, (
        "the same commit is not re-planned"
    )


def test_auto_approval_below_the_limits(world, people, settings):
    requester, _, _ = people
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 100}
    vm_request = submit(world, requester)
    assert drain() == ["push", "plan", "apply", "watch"]
    vm_request.refresh_from_db()
    assert vm_request.status == S.READY
    assert "Auto-approved" in vm_request.events.get(to_status=S.APPROVED).message
    big = submit(world, requester, vm_name="big01", num_cpus="4")
    drain()
    assert VMRequest.objects.get(pk=big.pk).status == S.PLANNED, "above the limits: a person approves"


def test_a_small_request_whose_plan_changes_more_than_its_vm_is_not_auto_approved(world, people, settings):
    requester, _, _ = people
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 2, "memory_mb": 2048, "disk_size_gb": 100}
    directory = "vms/DC0/web01"
    world.atlantis.respond_next(
        200,
        {
            "Error": None,
            "Failure": "",
            "ProjectResults": [
                {
                    "Error": None,
                    "Failure": "",
                    "PlanSuccess": {
                        "TerraformOutput": "  # vsphere_virtual_machine.vm will be created\n"
                        "  # vsphere_virtual_machine.other will be destroyed\n\n"
                        "Plan: 1 to add, 0 to change, 1 to destroy.\n",
                        "LockURL": "",
                        "RePlanCmd": f"atlantis plan -d {directory}",
                        "ApplyCmd": f"atlantis apply -d {directory}",
                        "MergedAgain": False,
                    },
                    "Command": 1,
                    "RepoRelDir": directory,
                    "Workspace": "default",
                    "ProjectName": "",
                }
            ],
            "PlansDeleted": False,
        },
        commands=("plan",),
    )
    vm_request = submit(world, requester)
    assert drain() == ["push", "plan"]
    vm_request.refresh_from_db()
    assert vm_request.status == S.PLANNED, "a plan that destroys something waits for a person"
    assert "1 to destroy" in vm_request.plan_output
