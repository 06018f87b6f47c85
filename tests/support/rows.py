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
