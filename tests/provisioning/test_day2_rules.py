"""The day-2 rules without vCenter or Git: which plan and apply each kind accepts, which planned request vmprov
approves by itself, and what counts as drift."""

import pytest

from provisioning import machines
from provisioning.atlantis import AtlantisResult, Outcome, ProjectResult
from provisioning.delivery.approval import auto_approvable
from provisioning.delivery.expectations import apply_problem, plan_problem
from provisioning.lifecycle import RequestKind, RequestStatus
from provisioning.models import VMRequest
from tests.support.rows import request_fields

K, S = RequestKind, RequestStatus
UPDATE = "  # vsphere_virtual_machine.vm will be updated in-place\n\nPlan: 0 to add, 1 to change, 0 to destroy.\n"
DESTROY = "  # vsphere_virtual_machine.vm will be destroyed\n\nPlan: 0 to add, 0 to change, 1 to destroy.\n"
REPLACE = "  # vsphere_virtual_machine.vm must be replaced\n\nPlan: 1 to add, 0 to change, 1 to destroy.\n"


def planned(*outputs: str) -> AtlantisResult:
    projects = [ProjectResult(f"vms/DC0/web0{n}", "default", True, output) for n, output in enumerate(outputs)]
    return AtlantisResult("plan", Outcome.SUCCEEDED, "ok", 200, projects)


@pytest.mark.parametrize(
    ("kind", "output", "problem"),
    [
        (K.CHANGE, UPDATE, None),
        (K.CHANGE, REPLACE, "would replace the VM"),
        (K.CHANGE, DESTROY, "says 0 to add, 0 to change, 1 to destroy"),
        (K.CHANGE, "\nNo changes. Your infrastructure matches the configuration.\n", "says 0 to add, 0 to change"),
        (K.CHANGE, UPDATE.replace("vsphere_virtual_machine.vm", "vsphere_folder.f"), "vsphere_folder.f"),
        (K.DECOMMISSION, DESTROY, None),
        (K.DECOMMISSION, DESTROY.replace("1 to destroy", "2 to destroy"), "must destroy the VM and nothing else"),
        (K.DECOMMISSION, UPDATE, "must destroy the VM and nothing else"),
        (K.CREATE, DESTROY, None),  # a new VM's plan goes to an approver whatever it says
    ],
)
def test_each_kind_accepts_its_own_plan_only(kind, output, problem):
    found = plan_problem(kind, planned(output))
    assert found is None if problem is None else problem in found


def test_a_plan_of_more_than_one_directory_is_refused():
    assert "2 projects" in plan_problem(K.CHANGE, planned(UPDATE, UPDATE))


@pytest.mark.parametrize(
    ("kind", "output", "problem"),
    [
        (K.DECOMMISSION, "\nApply complete! Resources: 0 added, 0 changed, 1 destroyed.\n", None),
        (K.DECOMMISSION, "\nApply complete! Resources: 1 added, 0 changed, 1 destroyed.\n", "1 added, 0 changed"),
        (K.DECOMMISSION, "", "no summary"),
        (K.CHANGE, "\nApply complete! Resources: 0 added, 1 changed, 0 destroyed.\n", None),
        (K.CHANGE, "\nApply complete! Resources: 1 added, 0 changed, 1 destroyed.\n", "not 0 added, 1 changed"),
        (K.CREATE, "anything", None),
    ],
)
def test_an_apply_must_say_it_did_what_the_kind_expects(kind, output, problem):
    found = apply_problem(kind, output)
    assert found is None if problem is None else problem in found


LIMITS = {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 100}


@pytest.mark.parametrize(
    ("kind", "restarts", "output", "settings_changes", "approved"),
    [
        (K.CREATE, None, "Plan: 1 to add, 0 to change, 0 to destroy.", {}, True),
        (K.CHANGE, False, UPDATE, {}, True),
        (K.CHANGE, True, UPDATE, {}, False),
        (K.CHANGE, None, UPDATE, {}, False),  # unknown counts as a restart
        (K.CHANGE, True, UPDATE, {"VMPROV_AUTO_APPROVE_RESTARTS": True}, True),
        (K.CHANGE, False, UPDATE, {"VMPROV_AUTO_APPROVE_CHANGES": False}, False),
        (K.CHANGE, False, REPLACE, {}, False),
        (K.DECOMMISSION, False, DESTROY, {"VMPROV_AUTO_APPROVE_RESTARTS": True}, False),
    ],
)
def test_who_vmprov_approves_by_itself(settings, kind, restarts, output, settings_changes, approved):
    settings.VMPROV_AUTO_APPROVE = LIMITS
    for name, value in settings_changes.items():
        setattr(settings, name, value)
    vm_request = VMRequest(kind=kind, num_cpus=4, memory_mb=2048, disk_size_gb=10, reboot_impact={"restarts": restarts})
    assert auto_approvable(vm_request, planned(output)) is approved
    vm_request.num_cpus = 5
    assert auto_approvable(vm_request, planned(output)) is False, "above the limits: a person approves"


@pytest.mark.django_db
def test_drift_is_what_vcenter_shows_against_what_was_last_applied(people):
    requester = people[0]
    vm = VMRequest.objects.create(**request_fields(requester, status=S.READY, num_cpus=2, memory_mb=2048))
    VMRequest.objects.create(
        **request_fields(requester, kind=K.CHANGE, vm_of=vm, status=S.READY, num_cpus=4, memory_mb=2048)
    )
    VMRequest.objects.create(
        **request_fields(requester, kind=K.CHANGE, vm_of=vm, status=S.REJECTED, num_cpus=8, memory_mb=2048)
    )
    found = machines.DeliveredVM(vm=vm, applied=machines.applied_values(vm))
    assert found.applied["num_cpus"] == 4, "the newest change that finished"
    found.record = {"num_cpus": 4, "memory_mb": 2048}
    assert found.drift == []
    found.record = {"num_cpus": 6, "memory_mb": 1024}
    assert found.drift == [
        "vCenter shows 6 CPUs; the last apply set 4 CPUs",
        "vCenter shows 1024 MB of memory; the last apply set 2048 MB of memory",
    ]
