"""Request rows for tests that create one directly, without the form."""


def request_fields(requester, **changes) -> dict:
    """The fields of a request row, for tests that create one directly."""
    fields = dict(
        requester=requester,
        vm_name="x1",
        datacenter_id="datacenter-2",
        datacenter_name="DC0",
        cluster_id="c",
        cluster_name="c",
        resource_pool_id="p",
        resource_pool_name="p",
        datastore_id="d",
        datastore_name="d",
        network_id="n",
        network_name="n",
        template_id="t",
        template_name="t",
        template_uuid="u",
        folder_id="f",
        num_cpus=1,
        memory_mb=512,
        disk_size_gb=10,
    )
    return {**fields, **changes}


READY_PATH = ("submitted", "pushing", "planning", "planned", "approved", "applying", "applied", "ready")


def walked_request(requester, path=READY_PATH, *, step_seconds: int = 30, **changes):
    """A request row that went through the statuses of `path` (one history line each, `step_seconds` apart,
    the last one now) and stands in the last one."""
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.models import VMRequest

    now = timezone.now()
    start = now - timedelta(seconds=step_seconds * (len(path) - 1))
    vm_request = VMRequest.objects.create(
        **request_fields(requester, status=path[-1], created_at=start, updated_at=now, **changes)
    )
    previous = ""
    for index, status in enumerate(path):
        vm_request.events.create(
            at=start + timedelta(seconds=step_seconds * index),
            from_status=previous,
            to_status=status,
            message=f"moved to {status}",
        )
        previous = status
    return vm_request
