"""Turning what somebody asked into a request row with its first history line: a valid form into a new VM's request
with its rendered Terraform; a delivered VM and new values into a change or a decommission (whose files are made at
push time, from the VM's directory as the base branch holds it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from provisioning.choices import IpMode
from provisioning.delivery import queue
from provisioning.forms import VMRequestForm
from provisioning.lifecycle import RequestKind, RequestStatus
from provisioning.models import VMRequest
from provisioning.terraform.render import config_hash, render
from provisioning.terraform.spec import MachineSpec, TemplateSpec


class NameTaken(Exception):
    """Another request took the name between validation and saving (the database constraint said so)."""


class ChangeOpen(Exception):
    """Another change or decommission of the VM is open (the database's directory claim said so)."""


# What a change or decommission copies from the request that delivered its VM: where the VM is and who it is.
VM_FIELDS = (
    "vm_name",
    "datacenter_id",
    "datacenter_name",
    "cluster_id",
    "cluster_name",
    "resource_pool_id",
    "resource_pool_name",
    "datastore_id",
    "datastore_name",
    "network_id",
    "network_name",
    "template_id",
    "template_name",
    "template_uuid",
    "template_details",
    "folder_id",
    "folder_path",
    "ip_mode",
    "ipv4_address",
    "ipv4_prefix",
    "ipv4_gateway",
    "dns_servers",
    "domain",
    "directory",
    "vm_moref",
    "vm_instance_uuid",
)
DAY2_VALUES = ("num_cpus", "memory_mb", "disk_size_gb", "notes")


def machine_spec(vm_request: VMRequest) -> MachineSpec:
    static = vm_request.ip_mode == IpMode.STATIC
    return MachineSpec(
        vm_name=vm_request.vm_name,
        datacenter_id=vm_request.datacenter_id,
        datacenter_name=vm_request.datacenter_name,
        cluster_id=vm_request.cluster_id,
        cluster_name=vm_request.cluster_name,
        resource_pool_id=vm_request.resource_pool_id,
        datastore_id=vm_request.datastore_id,
        network_id=vm_request.network_id,
        folder=vm_request.folder_path,
        template=TemplateSpec.from_inventory(vm_request.template_details),
        num_cpus=vm_request.num_cpus,
        memory_mb=vm_request.memory_mb,
        disk_size_gb=vm_request.disk_size_gb,
        domain=vm_request.domain,
        ipv4_address=vm_request.ipv4_address or "" if static else "",
        ipv4_prefix=vm_request.ipv4_prefix if static else None,
        ipv4_gateway=vm_request.ipv4_gateway or "" if static else "",
        dns_servers=tuple(vm_request.dns_servers) if static else (),
        annotation=vm_request.notes,
    )


def build_request(form: VMRequestForm, requester) -> VMRequest:
    """An unsaved request from a validated form and what its ids resolved to in the inventory."""
    data, found = form.cleaned_data, form.resolved
    static = data["ip_mode"] == IpMode.STATIC
    template = found["template"]
    return VMRequest(
        requester=requester,
        vm_name=data["vm_name"],
        datacenter_id=found["datacenter"]["id"],
        datacenter_name=found["datacenter"]["name"],
        cluster_id=found["cluster"]["id"],
        cluster_name=found["cluster"]["name"],
        resource_pool_id=found["resource_pool"]["id"],
        resource_pool_name=found["resource_pool"]["path"],
        datastore_id=found["datastore"]["id"],
        datastore_name=found["datastore"]["name"],
        network_id=found["network"]["id"],
        network_name=found["network"]["name"],
        template_id=template["id"],
        template_name=template["name"],
        template_uuid=template["uuid"],
        template_details={
            key: template.get(key)
            for key in ("uuid", "guest_id", "scsi_type", "scsi_controller_count", "firmware", "nic_types", "disks")
            if key in template
        },
        folder_id=found["folder"]["id"],
        folder_path=found["folder"]["path"],
        num_cpus=data["num_cpus"],
        memory_mb=data["memory_mb"],
        disk_size_gb=data["disk_size_gb"],
        ip_mode=data["ip_mode"],
        ipv4_address=data["ipv4_address"] if static else None,
        ipv4_prefix=data["ipv4_prefix"] if static else None,
        ipv4_gateway=data["ipv4_gateway"] if static else None,
        dns_servers=data["dns_servers"] if static else [],
        domain=data["domain"],
        notes=data["notes"],
    )


def submit(form: VMRequestForm, requester) -> VMRequest:
    """Save the request with its Terraform and its first history line; raises NameTaken on a lost race."""
    vm_request = build_request(form, requester)
    vm_request.rendered_files = render(machine_spec(vm_request))
    vm_request.config_hash = config_hash(vm_request.rendered_files)
    try:
        with transaction.atomic():
            vm_request.save()
            vm_request.events.create(
                actor=requester, from_status="", to_status=RequestStatus.SUBMITTED, message="Request submitted."
            )
            queue.start(vm_request)  # queued once the request is committed
    except IntegrityError:
        raise NameTaken(vm_request.vm_name) from None
    return vm_request


def day2_request(
    vm: VMRequest, requester, kind: str, values: Mapping[str, Any], applied: Mapping[str, Any]
) -> VMRequest:
    """An unsaved change or decommission of the VM that `vm` delivered: the VM's placement and identity copied,
    `values` (num_cpus, memory_mb, disk_size_gb, notes) the new ones, `applied` the ones it starts from."""
    assert kind in (RequestKind.CHANGE, RequestKind.DECOMMISSION)
    return VMRequest(
        requester=requester,
        kind=kind,
        vm_of=vm,
        **{name: getattr(vm, name) for name in VM_FIELDS},
        **{name: values[name] for name in DAY2_VALUES},
        changed_from={name: applied[name] for name in DAY2_VALUES},
    )


def submit_day2(vm_request: VMRequest, message: str) -> VMRequest:
    """Save a change or decommission with its first history line and queue its push; raises ChangeOpen when the
    database refuses it (one open change or decommission per VM)."""
    try:
        with transaction.atomic():
            vm_request.save()
            vm_request.events.create(
                actor=vm_request.requester, from_status="", to_status=RequestStatus.SUBMITTED, message=message
            )
            queue.start(vm_request)
    except IntegrityError:
        raise ChangeOpen(vm_request.vm_name) from None
    return vm_request
