"""The lifecycle module is the one place that says what each status allows and for whom; pages, admin actions
and workers all follow it."""

import pytest
from django.utils import timezone

from provisioning import lifecycle
from provisioning.delivery import actions
from provisioning.lifecycle import Action, RequestKind, RequestStatus
from provisioning.models import VMRequest
from tests.support.rows import request_fields

S = RequestStatus
K = RequestKind


def test_every_status_has_its_moves_and_exactly_one_step_of_every_kind():
    assert set(lifecycle.TRANSITIONS) == set(S)
    assert set(lifecycle.STEPS) == set(K)
    for status in S:
        assert all(target in S for target in lifecycle.TRANSITIONS[status])
        for kind in K:
            holders = [step.name for step in lifecycle.STEPS[kind] if status in step.statuses]
            assert len(holders) == 1, f"{status} is in {kind} steps {holders}"


def test_each_kind_reads_the_statuses_its_own_way():
    assert lifecycle.status_label(S.READY, K.CREATE) == "Ready"
    assert lifecycle.status_label(S.READY, K.CHANGE) == "Done: vCenter shows the new size"
    assert lifecycle.status_label(S.READY, K.DECOMMISSION) == "Decommissioned"
    assert lifecycle.status_label(S.PLANNED, K.CHANGE) == S.PLANNED.label
    labels = [item.step.label for item in lifecycle.progress(S.APPLIED, K.DECOMMISSION)]
    assert labels[-2:] == ["Destroyed", "Directory removed"]


def test_a_decommission_always_waits_for_a_person():
    assert lifecycle.needs_person(K.DECOMMISSION)
    assert not lifecycle.needs_person(K.CREATE) and not lifecycle.needs_person(K.CHANGE)


def test_where_a_broken_step_sends_a_request_is_a_legal_move():
    for source, target in lifecycle.FAILED_FROM.items():
        assert target in lifecycle.TRANSITIONS[source], f"{source} -> {target}"


def test_the_reaper_requeues_working_statuses_only_and_never_an_apply_in_flight():
    assert S.APPLYING not in lifecycle.NEXT_STEP
    assert set(lifecycle.NEXT_STEP) <= lifecycle.OPEN_STATUSES
    assert set(lifecycle.NEXT_STEP) | {S.APPLYING} == set(lifecycle.stale_after())


def test_final_statuses_are_settled_and_release_the_name():
    assert {S.REJECTED, S.CANCELLED, S.READY} == lifecycle.FINAL_STATUSES
    assert lifecycle.FINAL_STATUSES <= lifecycle.SETTLED_STATUSES
    assert lifecycle.FINAL_STATUSES <= lifecycle.CLOSED_STATUSES
    # A changed branch waits for a person and keeps the VM's name meanwhile.
    assert S.BRANCH_CHANGED in lifecycle.SETTLED_STATUSES & lifecycle.OPEN_STATUSES


def test_progress_marks_steps_done_current_failed_and_todo():
    states = {item.step.name: item.state for item in lifecycle.progress(S.PLANNED)}
    assert states == {
        "submitted": "done",
        "pushed": "done",
        "planned": "current",
        "approved": "todo",
        "applied": "todo",
        "ready": "todo",
    }
    assert [item.state for item in lifecycle.progress(S.READY)] == ["done"] * 6
    failed = {item.step.name: item.state for item in lifecycle.progress(S.PLAN_FAILED)}
    assert failed["planned"] == "failed" and failed["approved"] == "todo"
    attention = {item.step.name: item.state for item in lifecycle.progress(S.NEEDS_ATTENTION)}
    assert attention["applied"] == "attention"


@pytest.fixture
def rows(people):
    requester, _approver, _staff = people

    def make(status, owner=requester, name="x1"):
        return VMRequest.objects.create(**request_fields(owner, vm_name=name, status=status))

    return make


@pytest.mark.django_db
def test_who_may_do_what_in_which_status(people, rows):
    requester, approver, staff = people
    planned = rows(S.PLANNED)
    assert lifecycle.allowed_actions(requester, planned) == {Action.CANCEL}
    assert lifecycle.allowed_actions(approver, planned) == {Action.APPROVE, Action.REJECT}
    assert lifecycle.allowed_actions(staff, planned) == {Action.CANCEL}
    failed = rows(S.PLAN_FAILED, name="x2")
    assert lifecycle.allowed_actions(staff, failed) == {Action.CANCEL, Action.RETRY}
    assert lifecycle.allowed_actions(requester, failed) == {Action.CANCEL}
    attention = rows(S.NEEDS_ATTENTION, name="x3")
    assert lifecycle.allowed_actions(staff, attention) == {Action.RECHECK, Action.MARK_FAILED}
    assert lifecycle.allowed_actions(requester, attention) == set()
    assert "own request" in lifecycle.refusal(Action.APPROVE, approver, rows(S.PLANNED, owner=approver, name="x4"))


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.APPROVED, S.APPLYING, S.APPLIED])
def test_mark_as_failed_only_settles_a_request_that_needs_attention(people, rows, status):
    """An approved or applying request may still create its VM: marking it failed would release its name."""
    staff = people[2]
    vm_request = rows(status)
    with pytest.raises(actions.NotAllowed, match="cannot be marked as failed"):
        actions.mark_failed(vm_request, staff, "stale tab")
    assert VMRequest.objects.get(pk=vm_request.pk).status == status


@pytest.mark.django_db
def test_a_stale_tab_posting_mark_as_failed_changes_nothing(client, people, rows):
    staff = people[2]
    vm_request = rows(S.APPLYING)
    client.force_login(staff)
    response = client.post(f"/requests/{vm_request.pk}/resolve/", {"resolution": "failed", "reason": "old tab"})
    assert response.status_code == 302
    assert VMRequest.objects.get(pk=vm_request.pk).status == S.APPLYING
    assert not vm_request.events.exists()


@pytest.mark.django_db
def test_cancel_goes_through_the_lifecycle_like_every_other_action(client, people, rows):
    requester, approver, _staff = people
    vm_request = rows(S.APPROVED)
    client.force_login(requester)
    client.post(f"/requests/{vm_request.pk}/cancel/")
    assert VMRequest.objects.get(pk=vm_request.pk).status == S.APPROVED
    planned = rows(S.PLANNED, name="x2")
    client.force_login(approver)
    client.post(f"/requests/{planned.pk}/cancel/")
    assert VMRequest.objects.get(pk=planned.pk).status == S.PLANNED, "an approver is not the requester"
    client.force_login(requester)
    client.post(f"/requests/{planned.pk}/cancel/")
    assert VMRequest.objects.get(pk=planned.pk).status == S.CANCELLED


@pytest.mark.django_db
def test_the_page_offers_exactly_the_allowed_actions(client, people, rows):
    requester, approver, _staff = people
    vm_request = rows(S.PLANNED)
    client.force_login(approver)
    page = client.get(f"/requests/{vm_request.pk}/").content.decode()
    assert 'value="approve"' in page and "Cancel this request" not in page
    client.force_login(requester)
    page = client.get(f"/requests/{vm_request.pk}/").content.decode()
    assert 'value="approve"' not in page and "Cancel this request" in page


@pytest.mark.django_db
def test_who_may_ask_a_delivered_vm_for_a_change_or_its_decommission(people, rows, django_user_model):
    requester, approver, staff = people
    vm = rows(S.READY)
    for action in (Action.CHANGE, Action.DECOMMISSION):
        assert lifecycle.refusal(action, requester, vm) is None
        assert lifecycle.refusal(action, staff, vm) is None
        assert "Only the VM's requester (or staff)" in lifecycle.refusal(action, approver, vm)
        assert "Only a delivered VM" in lifecycle.refusal(action, requester, rows(S.PLANNED, name=f"x-{action}"))
    assert lifecycle.allowed_actions(requester, vm) == {Action.CHANGE, Action.DECOMMISSION}

    change = VMRequest.objects.create(
        **request_fields(requester, vm_name=vm.vm_name, kind=K.CHANGE, vm_of=vm, status=S.PLANNED)
    )
    assert f"Request #{change.pk} (a change, planned, waiting for approval) is still open" in lifecycle.refusal(
        Action.DECOMMISSION, requester, vm
    )
    assert lifecycle.allowed_actions(requester, change) == {Action.CANCEL}, "a change is no VM to change"
    VMRequest.objects.filter(pk=change.pk).update(status=S.READY)
    VMRequest.objects.filter(pk=vm.pk).update(decommissioned_at=timezone.now())
    vm.refresh_from_db()
    assert "is decommissioned" in lifecycle.refusal(Action.CHANGE, requester, vm)
