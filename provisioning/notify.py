"""Email about requests (Django's mail settings). A failed email is noted in the request's history."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from provisioning import roles
from provisioning.lifecycle import RequestKind
from provisioning.models import VMRequest

logger = logging.getLogger(__name__)


def _link(vm_request: VMRequest) -> str:
    return settings.VMPROV_BASE_URL.rstrip("/") + reverse("provisioning:detail", args=[vm_request.pk])


def _send(vm_request: VMRequest, recipients: list[str], subject: str, body: str) -> None:
    recipients = sorted({address for address in recipients if address})
    if not recipients:
        return
    try:
        send_mail(f"[vmprov] {subject}", f"{body}\n\n{_link(vm_request)}\n", None, recipients)
    except Exception as error:  # mail is a side channel: the request goes on, the failure is on record
        logger.warning("email about request %s failed: %s", vm_request.pk, error)
        vm_request.note(f"Email to {', '.join(recipients)} failed: {error}")


def plan_ready(vm_request: VMRequest) -> None:
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
        asks = (
            f"{who} asks to change {vm_request.vm_name} in {where} from {old.get('num_cpus')} CPU, "
            f"{old.get('memory_mb')} MB, {old.get('disk_size_gb')} GB to {size}. {restart}"
        )
    elif vm_request.kind == RequestKind.DECOMMISSION:
        asks = (
            f"{who} asks to decommission {vm_request.vm_name} in {where}: the plan destroys the VM and its disks. "
            "A person approves every decommission."
        )
    else:
        asks = f"{who} asks for {vm_request.vm_name} in {where} ({size})."
    _send(
        vm_request,
        roles.approver_emails(except_user_id=vm_request.requester_id),
        f"{vm_request.vm_name}: plan ready for approval",
        f"{asks} The plan is ready for your approval.",
    )


def to_requester(vm_request: VMRequest, subject: str, body: str) -> None:
    _send(vm_request, [vm_request.requester.email], f"{vm_request.vm_name}: {subject}", body)
