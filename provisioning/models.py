"""VM requests and their history.

One model for every kind of request (a new VM, a change of a delivered VM, its decommission): they share the
lifecycle, the history and the delivery path. A change or decommission points at the request that delivered its VM
(`vm_of`); that request, once ready, stands for the delivered VM until `decommissioned_at` is set.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from provisioning import roles
from provisioning.choices import IpMode
from provisioning.lifecycle import (
    DAY2_KINDS,
    DIRECTORY_HOLDING_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    RequestKind,
    RequestStatus,
    status_label,
)

_PLAN_SUMMARY = re.compile(r"^\s*(Plan: \d+ to add, \d+ to change, \d+ to destroy\.|No changes\..*)$", re.MULTILINE)


class TransitionRefused(Exception):
    """The request is not in a status it may move from (someone else moved it first, or the move is not allowed)."""


class ClaimTaken(TransitionRefused):
    """The move would make the request hold a VM name, address or directory another request holds now."""


_DELIVERED_AND_LIVE = Q(kind=RequestKind.CREATE, status=RequestStatus.READY, decommissioned_at__isnull=True)


class VMRequestQuerySet(models.QuerySet):
    def visible_to(self, user) -> VMRequestQuerySet:
        """Requesters see their own requests; approvers and staff see all."""
        if roles.sees_all_requests(user):
            return self
        return self.filter(requester=user)

    def open(self) -> VMRequestQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def holding_claims(self) -> VMRequestQuerySet:
        """Requests that hold their Git directory: open ones of every kind, and delivered VMs not decommissioned."""
        return self.filter(Q(status__in=OPEN_STATUSES) | _DELIVERED_AND_LIVE)

    def delivered(self) -> VMRequestQuerySet:
        """The requests that delivered a VM (decommissioned ones included): one per VM vmprov made."""
        return self.filter(kind=RequestKind.CREATE, status=RequestStatus.READY)


class VMRequest(models.Model):
    """One thing somebody asked for a VM: a new VM (where it goes, what it is), a change of its size or notes, or its
    decommission; and everything that happened to it."""

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vm_requests")
    kind = models.CharField(max_length=20, choices=RequestKind.choices, default=RequestKind.CREATE)
    vm_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="day2_requests",
        help_text="A change or decommission: the request that delivered the VM",
    )
    vm_name = models.CharField(max_length=63)

    # Where: managed object ids (what Terraform gets) and the names shown at submit time.
    datacenter_id = models.CharField(max_length=200)
    datacenter_name = models.CharField(max_length=255)
    cluster_id = models.CharField(max_length=200)
    cluster_name = models.CharField(max_length=255)
    resource_pool_id = models.CharField(max_length=200)
    resource_pool_name = models.CharField(max_length=1024)
    datastore_id = models.CharField(max_length=1024)
    datastore_name = models.CharField(max_length=255)
    network_id = models.CharField(max_length=200)
    network_name = models.CharField(max_length=255)
    template_id = models.CharField(max_length=200)
    template_name = models.CharField(max_length=255)
    template_uuid = models.CharField(max_length=64)
    template_details = models.JSONField(default=dict, help_text="The template's hardware at submit time")
    folder_id = models.CharField(max_length=200)
    folder_path = models.CharField(max_length=1024, blank=True)

    # What
    num_cpus = models.PositiveSmallIntegerField()
    memory_mb = models.PositiveIntegerField()
    disk_size_gb = models.PositiveIntegerField()
    ip_mode = models.CharField(max_length=10, choices=IpMode.choices, default=IpMode.DHCP)
    ipv4_address = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ipv4_prefix = models.PositiveSmallIntegerField(null=True, blank=True)
    ipv4_gateway = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    dns_servers = models.JSONField(default=list, blank=True)
    domain = models.CharField(max_length=253, blank=True)
    notes = models.TextField(blank=True, max_length=2000)

    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.SUBMITTED)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    # The Terraform vmprov rendered for it: file name -> content, and their hash.
    rendered_files = models.JSONField(default=dict, blank=True)
    config_hash = models.CharField(max_length=64, blank=True)

    # Delivery: where the configuration went, what was planned, applied and found.
    branch = models.CharField(max_length=255, blank=True)
    directory = models.CharField(max_length=1024, blank=True)
    pushed_commit = models.CharField(max_length=64, blank=True)
    pushed_hash = models.CharField(max_length=64, blank=True, help_text="config_hash of what was pushed")
    planned_commit = models.CharField(max_length=64, blank=True, help_text="the branch's commit Atlantis planned")
    planned_hash = models.CharField(max_length=64, blank=True)
    plan_digest = models.CharField(
        max_length=64, blank=True, help_text="the planned commit and plan output an approver decides on"
    )
    plan_output = models.TextField(blank=True)
    apply_output = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    vm_moref = models.CharField(max_length=200, blank=True)
    vm_instance_uuid = models.CharField(max_length=64, blank=True)

    # Day 2.
    changed_from = models.JSONField(
        default=dict, blank=True, help_text="A change: the applied values it starts from (num_cpus, memory_mb, ...)"
    )
    reboot_impact = models.JSONField(
        default=dict,
        blank=True,
        help_text="A change: whether applying it restarts the guest ('restarts'), why ('reasons'), read from what",
    )
    decommissioned_at = models.DateTimeField(
        null=True, blank=True, help_text="A delivered VM: when its decommission finished (its directory is free)"
    )

    objects = VMRequestQuerySet.as_manager()

    class Meta:
        verbose_name = "VM request"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["datacenter_id", "vm_name"],
                condition=Q(status__in=sorted(OPEN_STATUSES)),
                name="one_open_request_per_vm_name",
                violation_error_message="An open request already takes this VM name in this datacenter.",
            ),
            models.UniqueConstraint(
                fields=["directory"],
                condition=Q(
                    kind=RequestKind.CREATE,
                    status__in=sorted(DIRECTORY_HOLDING_STATUSES),
                    decommissioned_at__isnull=True,
                )
                & ~Q(directory=""),
                name="one_request_per_directory",
                violation_error_message="Another request's VM already lives in this Git directory.",
            ),
            models.UniqueConstraint(
                fields=["directory"],
                condition=Q(kind__in=sorted(DAY2_KINDS), status__in=sorted(OPEN_STATUSES)) & ~Q(directory=""),
                name="one_open_change_per_directory",
                violation_error_message="A change or decommission of this VM is open already: one at a time.",
            ),
            models.CheckConstraint(
                condition=Q(kind=RequestKind.CREATE, vm_of__isnull=True)
                | Q(kind__in=sorted(DAY2_KINDS), vm_of__isnull=False),
                name="day2_requests_name_their_vm",
                violation_error_message="A change or decommission names the request that delivered its VM.",
            ),
            models.UniqueConstraint(
                fields=["ipv4_address"],
                condition=Q(status__in=sorted(OPEN_STATUSES), ipv4_address__isnull=False),
                name="one_open_request_per_ipv4_address",
                violation_error_message="An open request already takes this IPv4 address.",
            ),
        ]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["requester", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.vm_name} in {self.datacenter_name} ({self.get_status_display()})"

    @staticmethod
    def digest_of_plan(planned_commit: str, plan_output: str) -> str:
        return hashlib.sha256(f"{planned_commit}\n{plan_output}".encode()).hexdigest()

    @property
    def plan_summary(self) -> str:
        """Terraform's summary line of the plan ("Plan: 1 to add, 0 to change, 0 to destroy."), if any."""
        found = _PLAN_SUMMARY.findall(self.plan_output or "")
        return found[-1].strip() if found else ""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def status_label(self) -> str:
        """The status as this kind of request reads it (a decommission that is ready is "Decommissioned")."""
        return status_label(self.status, self.kind)

    @property
    def delivered_vm(self) -> VMRequest:
        """The request that delivered this request's VM: itself for a new VM."""
        return self.vm_of if self.vm_of_id else self

    def transition(
        self, to: str, by=None, message: str = "", *, expected: dict | None = None, **changes
    ) -> RequestEvent:
        """Move to `to` if (and only if) the row is still in our status: two workers never move it both.

        `expected` are other fields the row must still hold (e.g. the plan an approver saw); `changes` are other
        fields saved in the same update.
        """
        source = self.status
        if to not in TRANSITIONS[source]:
            raise TransitionRefused(f"a request cannot go from {source} to {to}")
        now = timezone.now()
        try:
            with transaction.atomic():
                row = VMRequest.objects.filter(pk=self.pk, status=source, **(expected or {}))
                moved = row.update(status=to, updated_at=now, **changes)
                if moved != 1:
                    raise TransitionRefused(f"request {self.pk} is no longer {source}: someone moved it first")
                event = self.events.create(at=now, actor=by, from_status=source, to_status=to, message=message)
        except IntegrityError:
            raise ClaimTaken(self._claim_holder(changes.get("directory", self.directory))) from None
        self.status, self.updated_at = to, now
        for field, value in changes.items():
            setattr(self, field, value)
        return event

    def _claim_holder(self, directory: str) -> str:
        """Which open request holds what this one claims (after the database refused the claim)."""
        others = VMRequest.objects.exclude(pk=self.pk)
        holder = others.open().filter(datacenter_id=self.datacenter_id, vm_name=self.vm_name).first()
        what = f"its VM name {self.vm_name}"
        if holder is None and self.ipv4_address:
            holder = others.open().filter(ipv4_address=self.ipv4_address).first()
            what = f"its address {self.ipv4_address}"
        if holder is None and directory:
            holder = others.holding_claims().filter(directory=directory).first()
            what = f"its Git directory {directory}"
        taken_by = f" by request #{holder.pk} ({holder.requester}, {holder.status_label.lower()})" if holder else ""
        return f"{what} is taken{taken_by} now; request it again with another"

    def note(self, message: str, by=None) -> RequestEvent:
        """A history line that does not change the status (e.g. "still looking for the VM")."""
        return self.events.create(
            at=timezone.now(), actor=by, from_status=self.status, to_status=self.status, message=message
        )


class RequestEvent(models.Model):
    """One line of a request's history: a status change or a note, who did it and why."""

    request = models.ForeignKey(VMRequest, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    from_status = models.CharField(max_length=20, choices=RequestStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=RequestStatus.choices)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.from_status or '-'} → {self.to_status}"

    @property
    def actor_name(self) -> str:
        return self.actor.get_username() if self.actor else "vmprov"
