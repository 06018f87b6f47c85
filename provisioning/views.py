"""Pages of VM requests: the form, the list, the approver's inbox and a request's page, each following its
requests by htmx polling. Thin: the rules are lifecycle's, the work is in forms, submission and delivery.actions."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from provisioning import inbox, lifecycle, roles, submission, timeline, vm_facts
from provisioning.delivery import actions, approval
from provisioning.forms import UNSUPPORTED_GUESTS, VMRequestForm, error_summary
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
MACHINE_FIELDS = ["vm_name", "num_cpus", "memory_mb", "disk_size_gb"]
NETWORK_FIELDS = ["ip_mode"]  # after the note on auto-approval, which is about the sizes
STATIC_FIELDS = ["ipv4_address", "ipv4_prefix", "ipv4_gateway", "dns_servers"]
EXTRA_FIELDS = ["domain", "notes"]


# A request's number as it appears in a link: ASCII digits that fit the database's id column.
_REQUEST_ID = re.compile(r"[0-9]{1,18}")


def _request_id(value: str) -> int:
    """The request number `value` names; Http404 for anything else (str.isdigit() also accepts "²" and "①")."""
    if not _REQUEST_ID.fullmatch(value):
        raise Http404("No such request.")
    return int(value)


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


def _again_choices(vm_request: VMRequest) -> dict:
    """What an earlier request chose where, by name: the form says so when one of them is no longer offered."""
    return {
        "datacenter": vm_request.datacenter_name,
        "cluster": vm_request.cluster_name,
        "resource_pool": vm_request.resource_pool_name,
        "datastore": vm_request.datastore_name,
        "network": vm_request.network_name,
        "folder": "/" + vm_request.folder_path,
        "template": vm_request.template_name,
    }


@require_http_methods(["GET", "POST"])
def new_request(request: HttpRequest) -> HttpResponse:
    again = None
    if request.method == "POST":
        form = VMRequestForm(request.POST, user=request.user)
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
        if again_id:
            creates = VMRequest.objects.visible_to(request.user).filter(kind=lifecycle.RequestKind.CREATE)
            again = get_object_or_404(creates, pk=_request_id(again_id))
        form = VMRequestForm(initial=_again_initial(again) if again else {}, user=request.user)
    again_choices = _again_choices(again) if again else {}
    placement = [
        {
            "name": name,
            "label": label,
            "selected": (form.data.get(name) if form.is_bound else form.initial.get(name)) or "",
            "again_choice": again_choices.get(name, ""),
            "errors": form[name].errors,
        }
        for name, label in PLACEMENT
    ]
    context = {
        "form": form,
        "error_summary": error_summary(form, dict(PLACEMENT)),
        "auto_approval": approval.auto_approval_for_requesters(),
        "unsupported_guests": " ".join(UNSUPPORTED_GUESTS),
        "again": again,
        "placement": placement,
        "machine_fields": MACHINE_FIELDS,
        "network_fields": NETWORK_FIELDS,
        "static_fields": STATIC_FIELDS,
        "extra_fields": EXTRA_FIELDS,
    }
    return render(request, "provisioning/request_form.html", context, status=400 if form.errors else 200)


PAGE_SIZE = 25
# Lists follow their requests every few seconds (a request's page more often): htmx polls and the server answers
# 204 when nothing changed, so an idle tab costs one small query per poll.
LIST_POLL = "every 5s"
DETAIL_POLL = "every 2s"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _poll_url(request: HttpRequest, version: str) -> str:
    """This page's address with the version the page shows: the next poll answers 204 while it is still current."""
    query = request.GET.copy()
    query["since"] = version
    return f"{request.path}?{query.urlencode()}"


def _version(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _live(request: HttpRequest, template: str, context: dict, version: str) -> HttpResponse | None:
    """htmx's poll: 204 (no swap) when the page is current, else the changed fragment; None for a whole page."""
    if not _is_htmx(request):
        return None
    if request.GET.get("since") == version:
        return HttpResponse(status=204)
    return render(request, template, {**context, "live_update": True})


@dataclass
class ListFilters:
    """The requests list's filters, as the query string gives them."""

    status: str = ""  # "", "open", "settled" or one status
    datacenter: str = ""
    query: str = ""
    mine: bool = False

    STATUS_GROUPS = {"open": lifecycle.OPEN_STATUSES, "settled": lifecycle.SETTLED_STATUSES}

    @classmethod
    def from_query(cls, query, sees_all: bool) -> ListFilters:
        status = query.get("status", "")
        if status not in cls.STATUS_GROUPS and status not in lifecycle.RequestStatus.values:
            status = ""
        return cls(
            status=status,
            datacenter=query.get("datacenter", "")[:255],
            query=query.get("q", "").strip()[:63],
            mine=sees_all and query.get("mine") == "1",
        )

    def apply(self, requests, user):
        if self.status in self.STATUS_GROUPS:
            requests = requests.filter(status__in=self.STATUS_GROUPS[self.status])
        elif self.status:
            requests = requests.filter(status=self.status)
        if self.datacenter:
            requests = requests.filter(datacenter_name=self.datacenter)
        if self.query:
            requests = requests.filter(vm_name__icontains=self.query)
        if self.mine:
            requests = requests.filter(requester=user)
        return requests

    @property
    def active(self) -> bool:
        return bool(self.status or self.datacenter or self.query or self.mine)


def request_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    sees_all = roles.sees_all_requests(user)
    visible = VMRequest.objects.visible_to(user)
    filters = ListFilters.from_query(request.GET, sees_all)
    requests = filters.apply(visible.select_related("requester"), user).order_by("-created_at", "-id")
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    version = _version(page.number, page.paginator.count, [(r.pk, r.status) for r in rows])
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("since", None)
    context = {
        "page": page,
        "rows": rows,
        "sees_all": sees_all,
        "filters": filters,
        "page_query": query.urlencode(),
        "status_choices": lifecycle.RequestStatus.choices,
        "datacenters": visible.order_by("datacenter_name").values_list("datacenter_name", flat=True).distinct(),
        # Follow the list while a request on it can still move by itself; the first page also shows new ones.
        "poll_url": _poll_url(request, version)
        if page.number == 1 or any(r.status not in lifecycle.SETTLED_STATUSES for r in rows)
        else "",
        "poll_every": LIST_POLL,
    }
    live = _live(request, "provisioning/_request_table.html", context, version)
    return live or render(request, "provisioning/request_list.html", context)


def approval_inbox(request: HttpRequest) -> HttpResponse:
    """Waiting for my approval: the planned requests this approver may decide now, with why each needs a person."""
    if not roles.is_approver(request.user):
        raise PermissionDenied("Only approvers have an approval inbox.")
    waiting = inbox.waiting_for(request.user)
    version = _version([(r.pk, r.plan_digest) for r in waiting])
    context = {
        "waiting": [(r, approval.why_approval_is_needed(r)) for r in waiting],
        "inbox_count": len(waiting),
        # New requests may arrive at any time: the inbox always follows.
        "poll_url": _poll_url(request, version),
        "poll_every": LIST_POLL,
    }
    live = _live(request, "provisioning/_inbox_table.html", context, version)
    return live or render(request, "provisioning/inbox.html", context)


def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    vm_request = get_object_or_404(VMRequest.objects.visible_to(request.user).select_related("requester"), pk=pk)
    events = list(vm_request.events.select_related("actor"))
    version = _version(vm_request.status, events[-1].pk if events else 0)
    planned = vm_request.status == lifecycle.RequestStatus.PLANNED
    context = {
        "vm_request": vm_request,
        "events": events,
        "allowed": {action.value for action in lifecycle.allowed_actions(request.user, vm_request)},
        "steps": timeline.timed_steps(vm_request.status, events, vm_request.kind),
        "approval_reasons": approval.why_approval_is_needed(vm_request) if planned else [],
        "no_approver_email": planned and not roles.approver_emails(except_user_id=vm_request.requester_id),
        "vm": vm_facts.delivered_vm(vm_request.datacenter_id, vm_request.vm_moref)
        if vm_request.status == lifecycle.RequestStatus.READY
        else None,
        # A settled request moves only when a person acts (and their page reloads): nothing left to follow.
        "poll_url": "" if vm_request.status in lifecycle.SETTLED_STATUSES else _poll_url(request, version),
        "poll_every": DETAIL_POLL,
        "rendered_files": sorted(vm_request.rendered_files.items()),
    }
    live = _live(request, "provisioning/_request_live.html", context, version)
    return live or render(request, "provisioning/request_detail.html", context)


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
