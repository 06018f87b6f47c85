"""Pages of the VMs vmprov delivered: My VMs, a VM's page, and the forms that ask for its change or decommission.
Thin: `machines` reads, `lifecycle` says who may do what, `delivery.actions` does it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from inventory import catalog
from provisioning import lifecycle, machines, roles
from provisioning.delivery import actions
from provisioning.forms import ChangeForm, DecommissionForm, error_summary
from provisioning.lifecycle import Action
from provisioning.models import VMRequest


def _delivered(request: HttpRequest, pk: int) -> VMRequest:
    return get_object_or_404(VMRequest.objects.visible_to(request.user).delivered().select_related("requester"), pk=pk)


def vm_list(request: HttpRequest) -> HttpResponse:
    """Requesters see the VMs they asked for; approvers and staff see every VM vmprov delivered."""
    show_all = request.GET.get("show") == "all"
    vms = [item for item in machines.delivered_vms(request.user) if show_all or not item.decommissioned]
    context = {"vms": vms, "show_all": show_all, "sees_all": roles.sees_all_requests(request.user)}
    return render(request, "provisioning/vm_list.html", context)


def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    found = machines.delivered_vm(_delivered(request, pk))
    disks, disks_problem = [], ""
    if not found.decommissioned and found.vm.vm_moref:
        # The one live read of the page: disks are not in the inventory cache (too costly to collect for every VM).
        try:
            disks = catalog.vm_hardware(found.vm.vm_moref)["disks"]
        except (catalog.NotFound, catalog.Unavailable) as error:
            disks_problem = str(error)
    allowed = {action.value for action in lifecycle.allowed_actions(request.user, found.vm)}
    context = {"found": found, "vm": found.vm, "disks": disks, "disks_problem": disks_problem, "allowed": allowed}
    return render(request, "provisioning/vm_detail.html", context)


@require_http_methods(["GET", "POST"])
def change_vm(request: HttpRequest, pk: int) -> HttpResponse:
    vm = _delivered(request, pk)
    if refused := _refused(request, Action.CHANGE, vm):
        return refused
    found = machines.delivered_vm(vm)
    form = ChangeForm(request.POST or None, vm=vm, applied=found.applied)
    if request.method == "POST" and form.is_valid():
        try:
            change = actions.ask_change(vm, request.user, form.cleaned_data)
        except actions.NotAllowed as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Change request #{change.pk} for {vm.vm_name} is submitted.")
            return redirect("provisioning:detail", pk=change.pk)
    context = {"found": found, "vm": vm, "form": form, "error_summary": error_summary(form)}
    return render(request, "provisioning/vm_change.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def decommission_vm(request: HttpRequest, pk: int) -> HttpResponse:
    vm = _delivered(request, pk)
    if refused := _refused(request, Action.DECOMMISSION, vm):
        return refused
    form = DecommissionForm(request.POST or None, vm=vm)
    if request.method == "POST" and form.is_valid():
        try:
            decommission = actions.ask_decommission(vm, request.user, form.cleaned_data["reason"])
        except actions.NotAllowed as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Decommission request #{decommission.pk} for {vm.vm_name} is submitted.")
            return redirect("provisioning:detail", pk=decommission.pk)
    context = {"vm": vm, "form": form, "error_summary": error_summary(form)}
    return render(request, "provisioning/vm_decommission.html", context, status=400 if form.errors else 200)


def _refused(request: HttpRequest, action: Action, vm: VMRequest) -> HttpResponse | None:
    """Back to the VM's page, saying why, when this person may not take `action` on it now."""
    refused = lifecycle.refusal(action, request.user, vm)
    if not refused:
        return None
    messages.error(request, refused)
    return redirect("provisioning:vm", pk=vm.pk)
