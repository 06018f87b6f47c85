"""Email about requests: who hears about what, as HTML with a plain-text alternative (Django's mail settings).

- approvers: a plan waits for their decision (why it needs one, the plan's summary, a link straight to the
  decision), and a request they were asked about was cancelled;
- the requester: every change a delivery step or a person makes (`to_requester`), the ready VM's addresses and
  host, and a "request again" link when it is rejected or cancelled;
- staff: a request that needs attention, which only staff can settle.

A failed email is noted in the request's history; mail never stops a request.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from provisioning import lifecycle, roles, vm_facts
from provisioning.delivery import approval
from provisioning.lifecycle import RequestKind
from provisioning.models import VMRequest

logger = logging.getLogger(__name__)
S = lifecycle.RequestStatus


def _url(path: str) -> str:
    return settings.VMPROV_BASE_URL.rstrip("/") + path


def _detail(vm_request: VMRequest, anchor: str = "") -> str:
    return _url(reverse("provisioning:detail", args=[vm_request.pk]) + anchor)


def _again(vm_request: VMRequest) -> str:
    return _url(f"{reverse('provisioning:new')}?again={vm_request.pk}")


def request_summary(vm_request: VMRequest) -> list[tuple[str, str]]:
    """What was asked for, as (label, value) lines: where, size, network, address, notes."""
    if vm_request.ip_mode == "static":
        address = f"{vm_request.ipv4_address}/{vm_request.ipv4_prefix} via {vm_request.ipv4_gateway}"
        if vm_request.dns_servers:
            address += f", DNS {', '.join(vm_request.dns_servers)}"
    else:
        address = "DHCP"
    return [
        ("VM", f"{vm_request.vm_name}.{vm_request.domain}" if vm_request.domain else vm_request.vm_name),
        ("Where", f"{vm_request.datacenter_name} / {vm_request.cluster_name}, folder /{vm_request.folder_path}"),
        ("Size", f"{vm_request.num_cpus} CPU, {vm_request.memory_mb} MB memory, {vm_request.disk_size_gb} GB disk"),
        ("Template", vm_request.template_name),
        ("Network", vm_request.network_name),
        ("Address", address),
        ("Requested by", vm_request.requester.get_username()),
        ("Notes", vm_request.notes or "—"),
    ]


def _send(
    vm_request: VMRequest,
    recipients: list[str],
    subject: str,
    paragraphs: list[str],
    links: list[tuple[str, str]],
    *,
    reasons: list[str] | None = None,
    vm: vm_facts.VMFacts | None = None,
) -> None:
    recipients = sorted({address for address in recipients if address})
    if not recipients:
        return
    context = {
        "vm_request": vm_request,
        "subject": subject,
        "paragraphs": [p for p in paragraphs if p],
        "reasons": reasons or [],
        "summary": request_summary(vm_request),
        "vm": vm,
        "links": links,
    }
    message = EmailMultiAlternatives(
        f"[vmprov] {subject}", render_to_string("provisioning/email/message.txt", context), None, recipients
    )
    message.attach_alternative(render_to_string("provisioning/email/message.html", context), "text/html")
    try:
        message.send()
    except Exception as error:  # mail is a side channel: the request goes on, the failure is on record
        logger.warning("email about request %s failed: %s", vm_request.pk, error)
        vm_request.note(f"Email to {', '.join(recipients)} failed: {error}")


def _what_is_asked(vm_request: VMRequest) -> str:
    """One sentence: who asks for what; for a change the sizes before and after and what it does to the guest."""
    who, where = vm_request.requester.get_username(), f"{vm_request.datacenter_name} / {vm_request.cluster_name}"
    size = f"{vm_request.num_cpus} CPU, {vm_request.memory_mb} MB, {vm_request.disk_size_gb} GB"
    if vm_request.kind == RequestKind.CHANGE:
        old = vm_request.changed_from
        impact = vm_request.reboot_impact
        reasons = "; ".join(impact.get("reasons") or [])
        if impact.get("restarts") is None:
            restart = f"A restart of the guest cannot be ruled out: {reasons}."
        else:
            restart = f"The guest restarts: {reasons}." if impact["restarts"] else "The guest keeps running."
        return (
            f"{who} asks to change {vm_request.vm_name} in {where} from {old.get('num_cpus')} CPU, "
            f"{old.get('memory_mb')} MB, {old.get('disk_size_gb')} GB to {size}. {restart}"
        )
    if vm_request.kind == RequestKind.DECOMMISSION:
        return (
            f"{who} asks to decommission {vm_request.vm_name} in {where}: the plan destroys the VM and its disks. "
            "A person approves every decommission."
        )
    return f"{who} asks for {vm_request.vm_name} in {where} ({size})."


def plan_ready(vm_request: VMRequest) -> None:
    """Ask the approvers (never the requester) to decide on a plan; say in the history when nobody can be asked."""
    recipients = roles.approver_emails(except_user_id=vm_request.requester_id)
    if not recipients:
        vm_request.note(
            "No approver has an email address: nobody was told that this request waits for a decision. "
            "Give the approvers email addresses, or tell one."
        )
        return
    _send(
        vm_request,
        recipients,
        f"{vm_request.vm_name}: plan ready for your approval",
        [
            _what_is_asked(vm_request) + " The plan is ready for your decision.",
            vm_request.plan_summary or "The plan has no summary line.",
        ],
        [
            ("Review and decide", _detail(vm_request, "#decision")),
            ("Everything waiting for your approval", _url(reverse("provisioning:inbox"))),
        ],
        reasons=approval.why_approval_is_needed(vm_request),
    )


def to_requester(vm_request: VMRequest, subject: str, body: str) -> None:
    """Tell the requester what happened to their request; a request that needs attention is told to staff too."""
    links = [("The request", _detail(vm_request))]
    vm = None
    if vm_request.status == S.READY:
        vm = vm_facts.delivered_vm(vm_request.datacenter_id, vm_request.vm_moref)
    if vm_request.status in (S.REJECTED, S.CANCELLED):
        links.append(("Request it again (the form is filled in from this request)", _again(vm_request)))
    _send(vm_request, [vm_request.requester.email], f"{vm_request.vm_name}: {subject}", [body], links, vm=vm)
    if vm_request.status == S.NEEDS_ATTENTION:
        _send(
            vm_request,
            roles.staff_emails(),
            f"{vm_request.vm_name}: needs attention (staff)",
            [body, "Only staff can settle it: look in vCenter and Atlantis, then use the request page."],
            [("Settle it on the request page", _detail(vm_request, "#resolution"))],
        )


def cancelled(vm_request: VMRequest, by, *, approvers_were_asked: bool) -> None:
    """The approvers asked to decide on a request hear that it was cancelled; nobody else needs telling."""
    if not approvers_were_asked:
        return
    recipients = roles.approver_emails(except_user_id=vm_request.requester_id)
    who = "The requester" if by.pk == vm_request.requester_id else by.get_username()
    _send(
        vm_request,
        [address for address in recipients if address != by.email],
        f"{vm_request.vm_name}: cancelled, no decision needed",
        [f"{who} cancelled request #{vm_request.pk} for {vm_request.vm_name}: it no longer waits for your decision."],
        [("The request", _detail(vm_request))],
    )
