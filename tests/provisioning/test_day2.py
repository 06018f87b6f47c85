"""After Ready, end to end in vcsim, through the pages, the delivery steps and the Atlantis double: a VM is resized
and decommissioned through the same Git, Atlantis and approval path; the restart impact is shown, only a change
that keeps the guest running is auto-approved, drift is shown, and what must be refused is refused."""

import re

import pytest
from django.core import mail
from pyVim.task import WaitForTask

from inventory import catalog, tasks
from inventory.choices import RefreshTrigger
from provisioning import submission
from provisioning.delivery import actions
from provisioning.lifecycle import RequestKind, RequestStatus
from provisioning.models import VMRequest
from tests.support.delivery_world import client_for, drain, submit
from tests.support.git_repos import commit_on, git, read_on
from tests.support.vcenter_admin import admin_session, find, vim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim]
S, K = RequestStatus, RequestKind


def fresh(vm_request) -> VMRequest:
    return VMRequest.objects.get(pk=vm_request.pk)


def approve_on_page(vm_request, approver, reason="ok"):
    page = client_for(approver).get(f"/requests/{vm_request.pk}/").content.decode()
    seen = re.search(r'name="plan" value="([0-9a-f]{64})"', page)
    assert seen, "the approver is offered the decision"
    response = client_for(approver).post(
        f"/requests/{vm_request.pk}/decide/", {"decision": "approve", "reason": reason, "plan": seen[1]}
    )
    assert response.status_code == 302
    return page


def deliver(world, requester, approver, **form) -> VMRequest:
    """A new VM through the form, approved by a person unless auto-approved: ready."""
    vm = submit(world, requester, **form)
    drain()
    if fresh(vm).status == S.PLANNED:
        approve_on_page(fresh(vm), approver)
        drain()
    vm = fresh(vm)
    assert vm.status == S.READY, vm.last_error
    return vm


def ask_change(world, user, vm, **values) -> VMRequest:
    applied = {"num_cpus": vm.num_cpus, "memory_mb": vm.memory_mb, "disk_size_gb": vm.disk_size_gb, "notes": vm.notes}
    response = client_for(user).post(f"/requests/vms/{vm.pk}/change/", {**applied, **values})
    assert response.status_code == 302, response.content.decode()
    return VMRequest.objects.filter(kind=K.CHANGE, vm_of=vm).latest("id")


def ask_decommission(user, vm, reason="project over") -> VMRequest:
    response = client_for(user).post(
        f"/requests/vms/{vm.pk}/decommission/", {"confirm_name": vm.vm_name, "reason": reason}
    )
    assert response.status_code == 302, response.content.decode()
    return VMRequest.objects.filter(kind=K.DECOMMISSION, vm_of=vm).latest("id")


def in_vcenter(world, name: str):
    with admin_session(world.vcsim) as si:
        vm = find(si, vim.VirtualMachine, name)
        disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        return vm.config.hardware.numCPU, vm.config.hardware.memoryMB, disk.capacityInKB // (1024 * 1024)


def files_changed(world, branch: str, directory: str) -> list[str]:
    return git("--git-dir", str(world.bare), "diff", "--name-only", "main", branch, "--", directory).splitlines()


def test_a_vm_is_resized_then_decommissioned_and_its_directory_removed(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    disk = vm.disk_size_gb
    vms_page = client_for(requester).get("/requests/vms/").content.decode()
    assert f'href="/requests/vms/{vm.pk}/"' in vms_page and "2 CPU, 1024 MB" in vms_page

    # Resize: the values file only, planned in place, approved by a person, done once the inventory shows it.
    change = ask_change(world, requester, vm, num_cpus=4, memory_mb=2048, disk_size_gb=disk + 2, notes="bigger")
    assert drain() == ["push", "plan"]
    change = fresh(change)
    assert change.status == S.PLANNED, change.last_error
    assert files_changed(world, change.branch, vm.directory) == [f"{vm.directory}/terraform.tfvars"]
    assert change.plan_output.endswith("\nPlan: 0 to add, 1 to change, 0 to destroy.\n")
    assert re.search(r"\n      ~ num_cpus += 2 -> 4\n", change.plan_output)
    assert change.reboot_impact["restarts"] is False and change.reboot_impact["read_from"].startswith("vCenter")
    page = approve_on_page(change, approver)
    assert "The guest keeps running" in page and "Plan: 0 to add, 1 to change" in page
    assert "Values file pushed" in page and "New size in vCenter" in page, "the change's own steps"
    assert drain() == ["apply", "watch"]
    change = fresh(change)
    assert change.status == S.READY, change.last_error
    assert change.apply_output.endswith("\nApply complete! Resources: 0 added, 1 changed, 0 destroyed.\n")
    assert "vCenter shows the new size" in change.events.last().message
    assert in_vcenter(world, vm.vm_name) == (4, 2048, disk + 2)
    [record] = catalog.vms_by_id(vm.datacenter_id, [vm.vm_moref]).items
    assert (record["num_cpus"], record["memory_mb"]) == (4, 2048), "the inventory shows the new size"
    vm_page = client_for(requester).get(f"/requests/vms/{vm.pk}/").content.decode()
    assert "4 CPU, 2048 MB, first disk" in vm_page and 'id="drift"' not in vm_page
    assert f"{disk + 2} GB" in vm_page, "the disks, read from vCenter for this page"
    assert read_on(world.bare, "main", f"{vm.directory}/terraform.tfvars") == change.rendered_files["terraform.tfvars"]

    # Decommission: a tombstone, a destroy plan a person approves, the VM gone, then its directory removed.
    decommission = ask_decommission(requester, vm)
    assert drain() == ["push", "plan"]
    decommission = fresh(decommission)
    assert decommission.status == S.PLANNED
    assert decommission.plan_output.endswith("\nPlan: 0 to add, 0 to change, 1 to destroy.\n")
    assert read_on(world.bare, decommission.branch, f"{vm.directory}/providers.tf") == vm.rendered_files["providers.tf"]
    assert "request #" in read_on(world.bare, decommission.branch, f"{vm.directory}/machine.tf")
    assert "destroys web01" in client_for(requester).get(f"/requests/{decommission.pk}/").content.decode()
    with pytest.raises(actions.NotAllowed, match="approvers group"):
        actions.approve(decommission, requester, "mine", seen_plan=decommission.plan_digest)
    approve_on_page(decommission, approver, "no longer needed")
    assert drain() == ["apply", "watch"]
    decommission = fresh(decommission)
    assert decommission.status == S.READY, decommission.last_error
    assert decommission.status_label == "Decommissioned"
    assert decommission.apply_output.endswith("\nApply complete! Resources: 0 added, 0 changed, 1 destroyed.\n")
    with admin_session(world.vcsim) as si, pytest.raises(LookupError):
        find(si, vim.VirtualMachine, vm.vm_name)
    main = git("--git-dir", str(world.bare), "ls-tree", "-r", "--name-only", "main").splitlines()
    assert not [path for path in main if path.startswith(f"{vm.directory}/")], "the directory is removed"
    log = git("--git-dir", str(world.bare), "log", "--format=%s", "main")
    assert f"vmprov: remove {vm.directory}" in log and "decommissions web01" in log
    vm = fresh(vm)
    assert vm.decommissioned_at is not None and vm.status == S.READY, "the history stays"
    assert "Decommissioned on" in client_for(requester).get(f"/requests/vms/{vm.pk}/").content.decode()
    assert vm.vm_name not in client_for(requester).get("/requests/vms/").content.decode()
    assert [m.subject for m in mail.outbox][-1] == "[vmprov] web01: decommissioned"

    # Name and directory are free again: a new web01 is accepted and pushed into the same directory.
    again = submit(world, requester)
    assert drain(until="push") == ["push"]
    again = fresh(again)
    assert (again.status, again.directory) == (S.PLANNING, vm.directory)


def test_only_a_change_that_keeps_the_guest_running_is_auto_approved(world, people, settings):
    requester, approver, _staff = people
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 8, "memory_mb": 8192, "disk_size_gb": 100}
    vm = deliver(world, requester, approver)

    live = ask_change(world, requester, vm, num_cpus=4, memory_mb=2048)
    assert drain() == ["push", "plan", "apply", "watch"]
    live = fresh(live)
    assert live.status == S.READY and "the guest keeps running" in live.events.get(to_status=S.APPROVED).message
    assert world.atlantis.provider.restarts == []

    restarting = ask_change(world, requester, vm, num_cpus=4, memory_mb=4096)
    assert drain() == ["push", "plan"]
    restarting = fresh(restarting)
    assert restarting.status == S.PLANNED, "a restart waits for a person"
    [reason] = restarting.reboot_impact["reasons"]
    assert "3072 MB or less must be off" in reason
    for person in (requester, approver):
        page = client_for(person).get(f"/requests/{restarting.pk}/").content.decode()
        assert "The guest restarts" in page and "3072 MB or less must be off" in page
    assert "The guest restarts" in mail.outbox[-1].body and mail.outbox[-1].to == [approver.email]
    approve_on_page(restarting, approver, "restart at lunch is fine")
    drain()
    assert fresh(restarting).status == S.READY
    [record] = catalog.vms_by_id(vm.datacenter_id, [vm.vm_moref]).items
    assert world.atlantis.provider.restarts == [record["uuid"]], "the double shut it down, as the provider would"

    settings.VMPROV_AUTO_APPROVE_RESTARTS = True
    allowed = ask_change(world, requester, vm, num_cpus=2)  # fewer CPUs without hot remove: a restart, let through
    assert drain() == ["push", "plan", "apply", "watch"]
    assert fresh(allowed).reboot_impact["restarts"] is True


def test_a_change_never_brings_todays_templates_to_an_old_vm(world, people, settings):
    requester, approver, _staff = people
    settings.VMPROV_HOT_ADD = False
    vm = deliver(world, requester, approver)
    settings.VMPROV_HOT_ADD = True

    change = ask_change(world, requester, vm, num_cpus=3)
    drain()
    change = fresh(change)
    assert read_on(world.bare, change.branch, f"{vm.directory}/machine.tf") == vm.rendered_files["machine.tf"]
    assert "hot_add" not in change.rendered_files["machine.tf"]
    assert files_changed(world, change.branch, vm.directory) == [f"{vm.directory}/terraform.tfvars"]
    assert change.reboot_impact["restarts"] is True
    assert "without CPU hot add" in client_for(approver).get(f"/requests/{change.pk}/").content.decode()


def test_drift_is_shown_and_a_change_starts_from_the_applied_values(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    with admin_session(world.vcsim) as si:  # somebody resizes it in vCenter by hand
        WaitForTask(find(si, vim.VirtualMachine, vm.vm_name).ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=4)))
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)

    page = client_for(requester).get(f"/requests/vms/{vm.pk}/").content.decode()
    assert 'id="drift"' in page and "vCenter shows 4 CPUs; the last apply set 2 CPUs" in page
    assert "drift" in client_for(requester).get("/requests/vms/").content.decode()
    form = client_for(requester).get(f"/requests/vms/{vm.pk}/change/").content.decode()
    assert re.search(r'name="num_cpus" value="2"', form), "the change starts from the applied values"

    change = ask_change(world, requester, vm, notes="tidied up")
    drain()
    change = fresh(change)
    assert change.status == S.PLANNED, change.last_error
    assert "Note: Objects have changed outside of Terraform" in change.plan_output
    assert re.search(r"\n      ~ num_cpus += 4 -> 2\n", change.plan_output)
    assert "4 → 2 CPUs without CPU hot remove" in change.reboot_impact["reasons"][0]


# --- Refusals -------------------------------------------------------------------------------------------------------


def test_a_disk_is_never_shrunk(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    response = client_for(requester).post(
        f"/requests/vms/{vm.pk}/change/",
        {"num_cpus": 2, "memory_mb": 1024, "disk_size_gb": vm.disk_size_gb - 1, "notes": ""},
    )
    assert response.status_code == 400
    assert "Disks only grow" in response.content.decode()
    assert not VMRequest.objects.filter(kind=K.CHANGE).exists()


def test_notes_vcenter_cannot_store_are_refused_by_the_change_form(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    applied = {"num_cpus": vm.num_cpus, "memory_mb": vm.memory_mb, "disk_size_gb": vm.disk_size_gb}
    response = client_for(requester).post(f"/requests/vms/{vm.pk}/change/", {**applied, "notes": "bell\x07"})
    assert response.status_code == 400
    assert "U+0007" in response.content.decode()
    assert not VMRequest.objects.filter(kind=K.CHANGE).exists()


def test_a_change_whose_plan_would_replace_the_vm_is_refused_before_approval(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    values = f"{vm.directory}/terraform.tfvars"
    edited = read_on(world.bare, "main", values).replace('"example.com"', '"example.org"')
    commit_on(world.bare, "main", {values: edited})  # somebody changed the domain by hand: a change under clone

    change = ask_change(world, requester, vm, num_cpus=3)
    assert drain() == ["push", "plan"]
    change = fresh(change)
    assert change.status == S.PLAN_FAILED
    assert "would replace the VM" in change.last_error and "1 to add, 0 to change, 1 to destroy" in change.plan_output
    assert 'value="approve"' not in client_for(approver).get(f"/requests/{change.pk}/").content.decode()
    assert not [r for r in world.atlantis.requests if r.path == "/api/apply" and vm.vm_name in r.body.decode()][1:]


def test_a_destroy_plan_touching_more_than_the_vm_is_refused(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    output = (
        "  # vsphere_virtual_machine.vm will be destroyed\n  # vsphere_folder.team will be destroyed\n\n"
        "Plan: 0 to add, 0 to change, 2 to destroy.\n"
    )
    world.atlantis.respond_next(200, planned_answer(vm.directory, output), commands=("plan",))
    decommission = ask_decommission(requester, vm)
    assert drain() == ["push", "plan"]
    decommission = fresh(decommission)
    assert decommission.status == S.PLAN_FAILED
    assert "must destroy the VM and nothing else" in decommission.last_error
    assert in_vcenter(world, vm.vm_name)


def test_a_decommission_is_never_approved_by_vmprov(world, people, settings):
    requester, approver, _staff = people
    settings.VMPROV_AUTO_APPROVE = {"num_cpus": 8, "memory_mb": 8192, "disk_size_gb": 100}
    settings.VMPROV_AUTO_APPROVE_RESTARTS = True
    vm = deliver(world, requester, approver)
    decommission = ask_decommission(requester, vm)
    assert drain() == ["push", "plan"]
    decommission = fresh(decommission)
    assert decommission.status == S.PLANNED
    assert not decommission.events.filter(message__contains="broke").exists(), "the policy itself said no"
    with pytest.raises(actions.NotAllowed, match="approved by a person"):
        actions.approve(decommission, None, "auto", seen_plan=decommission.plan_digest)
    assert not [r for r in world.atlantis.requests if r.path == "/api/apply"][1:], "only the create was applied"


def test_a_destroy_whose_apply_says_something_else_needs_a_person(world, people):
    requester, approver, _staff = people
    vm = deliver(world, requester, approver)
    decommission = ask_decommission(requester, vm)
    drain()
    answer = applied_answer(vm.directory, "\nApply complete! Resources: 0 added, 0 changed, 2 destroyed.\n")
    world.atlantis.respond_next(200, answer, commands=("apply",))
    approve_on_page(fresh(decommission), approver)
    assert drain() == ["apply"]
    decommission = fresh(decommission)
    assert decommission.status == S.NEEDS_ATTENTION
    assert "0 added, 0 changed, 2 destroyed, not 0 added, 0 changed, 1 destroyed" in decommission.last_error
    assert fresh(vm).decommissioned_at is None


def test_one_change_at_a_time_per_vm(world, people):
    requester, approver, staff = people
    vm = deliver(world, requester, approver)
    first = ask_change(world, requester, vm, num_cpus=3)

    response = client_for(requester).post(
        f"/requests/vms/{vm.pk}/decommission/", {"confirm_name": vm.vm_name, "reason": "x"}, follow=True
    )
    assert f"Request #{first.pk} (a change, submitted) is still open for web01: one change at a time" in (
        response.content.decode()
    )
    assert (
        f'href="/requests/vms/{vm.pk}/change/"' not in client_for(staff).get(f"/requests/vms/{vm.pk}/").content.decode()
    )
    # The database refuses it too, whatever the pages say.
    second = submission.day2_request(vm, staff, K.DECOMMISSION, _applied(vm), _applied(vm))
    with pytest.raises(submission.ChangeOpen):
        submission.submit_day2(second, "a second one")
    assert VMRequest.objects.filter(vm_of=vm).count() == 1

    drain()
    actions.cancel(fresh(first), requester)
    assert ask_decommission(requester, vm).status == S.SUBMITTED, "free again once the first is closed"


def _applied(vm) -> dict:
    return {"num_cpus": vm.num_cpus, "memory_mb": vm.memory_mb, "disk_size_gb": vm.disk_size_gb, "notes": vm.notes}


def _project(directory: str, **success) -> dict:
    return {
        "Error": None,
        "Failure": "",
        "PlanSuccess": None,
        "ApplySuccess": "",
        "Command": 1,
        "RepoRelDir": directory,
        "Workspace": "default",
        "ProjectName": "",
        **success,
    }


def planned_answer(directory: str, output: str) -> dict:
    plan = {"TerraformOutput": output, "LockURL": "", "RePlanCmd": "", "ApplyCmd": "", "MergedAgain": False}
    return {"Error": None, "Failure": "", "ProjectResults": [_project(directory, PlanSuccess=plan)]}


def applied_answer(directory: str, output: str) -> dict:
    return {"Error": None, "Failure": "", "ProjectResults": [_project(directory, Command=0, ApplySuccess=output)]}
