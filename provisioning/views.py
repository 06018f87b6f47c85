"""Pages of VM requests: the form, the list and a request's page. Thin: the work is in forms and submission."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from provisioning import delivery, roles, submission
from provisioning.choices import CANCELLABLE_STATUSES, RETRYABLE_STATUSES, RequestStatus
from provisioning.forms import VMRequestForm
from provisioning.models import TransitionRefused, VMRequest
from provisioning.terraform.spec import InvalidMachineSpec

PLACEMENT = [
    ("datacenter", "Datacenter"),
    ("cluster", "Cluster"),
    ("resource_pool", "Resource pool"),
    ("datastore", "Datastore"),
    ("network", "Network"),
    ("folder", "VM folder"),
    ("template", "Template"),
]
MACHINE_FIELDS = ["vm_name", "num_cpus", "memory_mb", "disk_size_gb", "ip_mode"]
STATIC_FIELDS = ["ipv4_address", "ipv4_prefix", "ipv4_gateway", "dns_servers"]
EXTRA_FIELDS = ["domain", "notes"]


def _again_initial(vm_request: VMRequest) -> dict:
    """The form's values from an earlier request ("request again")."""
    return {
        "datacenter": vm_request.datacenter_id,
        "cluster": vm_request.cluster_id,
        "resource_pool": vm_request.resource_pool_id,
        "datastore": vm_request.datastore_id,
        "network": vm_request.network_id,
        "folder": vm_request.folder_id,
        "template": vm_request.template_id,
        "vm_name": vm_request.vm_name,
        "num_cpus": vm_request.num_cpus,
        "memory_mb": vm_request.memory_mb,
        "disk_size_gb": vm_request.disk_size_gb,
        "ip_mode": vm_request.ip_mode,
        "ipv4_address": vm_request.ipv4_address or "",
        "ipv4_prefix": vm_request.ipv4_prefix,
        "ipv4_gateway": vm_request.ipv4_gateway or "",
        "dns_servers": ", ".join(vm_request.dns_servers),
        "domain": vm_request.domain,
        "notes": vm_request.notes,
    }


@require_http_methods(["GET", "POST"])
def new_request(request: HttpRequest) -> HttpResponse:
    again = None
    if request.method == "POST":
        form = VMRequestForm(request.POST)
        if form.is_valid():
            try:
                vm_request = submission.submit(form, request.user)
            except submission.NameTaken:
                form.add_error(None, "An open request took this VM name or address a moment ago; nothing was saved.")
            except InvalidMachineSpec as error:
                form.add_error(None, f"vmprov cannot render this request: {'; '.join(error.problems)}.")
            else:
                messages.success(request, f"Request #{vm_request.pk} for {vm_request.vm_name} is submitted.")
                return redirect("provisioning:detail", pk=vm_request.pk)
    else:
        again_id = request.GET.get("again", "")
        if again_id.isdigit():
            again = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=int(again_id))
        form = VMRequestForm(initial=_again_initial(again) if again else {})
    placement = [
        {
            "name": name,
            "label": label,
            "selected": (form.data.get(name) if form.is_bound else form.initial.get(name)) or "",
            "errors": form[name].errors,
        }
        for name, label in PLACEMENT
    ]
    context = {
        "form": form,
        "again": again,
        "placement": placement,
        "machine_fields": MACHINE_FIELDS,
        "static_fields": STATIC_FIELDS,
        "extra_fields": EXTRA_FIELDS,
    }
    return render(request, "provisioning/request_form.html", context, status=400 if form.errors else 200)


def request_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    sees_all = roles.sees_all_requests(user)
    requests = VMRequest.objects.visible_to(user).select_related("requester")
    if request.GET.get("mine"):
        requests = requests.filter(requester=user)
    return render(request, "provisioning/request_list.html", {"requests": requests[:500], "sees_all": sees_all})


def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    context = {
        "vm_request": vm_request,
        "events": vm_request.events.select_related("actor"),
        "rendered_files": sorted(vm_request.rendered_files.items()),
        "can_cancel": roles.acts_for(request.user, vm_request) and vm_request.status in CANCELLABLE_STATUSES,
        "can_decide": vm_request.status == RequestStatus.PLANNED
        and roles.is_approver(request.user)
        and vm_request.requester_id != request.user.pk,
        "can_retry": request.user.is_staff and vm_request.status in RETRYABLE_STATUSES,
        "can_resolve": request.user.is_staff and vm_request.status == RequestStatus.NEEDS_ATTENTION,
    }
    return render(request, "provisioning/request_detail.html", context)


@require_POST
def decide_request(request: HttpRequest, pk: int) -> HttpResponse:
    """An approver approves or rejects a planned request, with a reason."""
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    reason = request.POST.get("reason", "").strip()[:2000]
    try:
        if request.POST.get("decision") == "approve":
            delivery.approve(vm_request, request.user, reason)
            messages.success(request, "Approved: vmprov applies it now.")
        elif request.POST.get("decision") == "reject":
            delivery.reject(vm_request, request.user, reason)
            messages.success(request, "Rejected.")
        else:
            messages.error(request, "Choose approve or reject.")
    except delivery.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def retry_request(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    try:
        delivery.retry(vm_request, request.user)
        messages.success(request, "The delivery starts again.")
    except delivery.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def resolve_request(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff settle a request that needs attention: look for the VM again, or record that the apply failed."""
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    reason = request.POST.get("reason", "").strip()[:2000]
    try:
        if request.POST.get("resolution") == "recheck":
            delivery.recheck(vm_request, request.user)
            messages.success(request, "vmprov looks for the VM in vCenter again.")
        elif request.POST.get("resolution") == "failed":
            delivery.mark_failed(vm_request, request.user, reason)
            messages.success(request, "Marked as failed; the delivery can be retried.")
        else:
            messages.error(request, "Choose what to do.")
    except delivery.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def cancel_request(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    if not roles.acts_for(request.user, vm_request):
        messages.error(request, "Only the requester can cancel this request.")
    elif vm_request.status not in CANCELLABLE_STATUSES:
        messages.error(request, f"A request that is {vm_request.get_status_display().lower()} cannot be cancelled.")
    else:
        try:
            vm_request.transition(RequestStatus.CANCELLED, by=request.user, message="Cancelled by the requester.")
            messages.success(request, "The request is cancelled.")
        except TransitionRefused as error:
            messages.error(request, f"Not cancelled: {error}.")
    return redirect("provisioning:detail", pk=pk)
