"""Pages of VM requests: the form, the list and a request's page. Thin: the work is in forms and submission."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from provisioning import lifecycle, roles, submission
from provisioning.delivery import actions
from provisioning.forms import VMRequestForm
from provisioning.models import VMRequest
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
            creates = VMRequest.objects.visible_to(request.user).filter(kind=lifecycle.RequestKind.CREATE)
            again = get_object_or_404(creates, pk=int(again_id))
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
        "allowed": {action.value for action in lifecycle.allowed_actions(request.user, vm_request)},
        "steps": lifecycle.progress(vm_request.status, vm_request.kind),
    }
    return render(request, "provisioning/request_detail.html", context)


@require_POST
def decide_request(request: HttpRequest, pk: int) -> HttpResponse:
    """An approver approves or rejects a planned request, with a reason."""
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    reason = request.POST.get("reason", "").strip()[:2000]
    seen_plan = request.POST.get("plan", "")
    try:
        if request.POST.get("decision") == "approve":
            actions.approve(vm_request, request.user, reason, seen_plan=seen_plan)
            messages.success(request, "Approved: vmprov applies it now.")
        elif request.POST.get("decision") == "reject":
            actions.reject(vm_request, request.user, reason, seen_plan=seen_plan)
            messages.success(request, "Rejected.")
        else:
            messages.error(request, "Choose approve or reject.")
    except actions.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def retry_request(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    try:
        actions.retry(vm_request, request.user)
        messages.success(request, "The delivery starts again.")
    except actions.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def resolve_request(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff settle a request that needs attention: look for the VM again, or record that the apply failed."""
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    reason = request.POST.get("reason", "").strip()[:2000]
    try:
        if request.POST.get("resolution") == "recheck":
            actions.recheck(vm_request, request.user)
            messages.success(request, "vmprov looks for the VM in vCenter again.")
        elif request.POST.get("resolution") == "failed":
            actions.mark_failed(vm_request, request.user, reason)
            messages.success(request, "Marked as failed; the delivery can be retried.")
        else:
            messages.error(request, "Choose what to do.")
    except actions.NotAllowed as error:
        messages.error(request, str(error))
    return redirect("provisioning:detail", pk=pk)


@require_POST
def cancel_request(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user), pk=pk)
    try:
        actions.cancel(vm_request, request.user)
        messages.success(request, "The request is cancelled.")
    except actions.NotAllowed as error:
        messages.error(request, f"Not cancelled: {error}")
    return redirect("provisioning:detail", pk=pk)
