"""What a change or a decommission pushes: its VM's directory as the base branch holds it, with the values file
edited (a change) or the VM's resource replaced by a tombstone (a decommission). Never today's templates: an old VM
keeps the files it was delivered with.

Made once, at the first push, and kept on the request (`rendered_files`): a retry pushes the same files again, and
the planned commit is compared with them before any auto-approval.
"""

from __future__ import annotations

from provisioning import gitops
from provisioning.lifecycle import RequestKind
from provisioning.models import VMRequest
from provisioning.terraform.edit import EditRefused, edit_values, tombstone, values_file_of
from provisioning.terraform.render import config_hash
from provisioning.terraform.settings import configured_tfvars_file


class CannotPrepare(Exception):
    """The request's files cannot be made; the message says why, for people."""


def day2_files(vm_request: VMRequest) -> dict[str, str]:
    """The files a change or decommission pushes to its VM's directory (see the module). Raises CannotPrepare."""
    try:
        files = gitops.base_directory_files(vm_request.directory)
    except gitops.GitError as error:
        raise CannotPrepare(f"the VM's directory could not be read from the base branch: {error}") from None
    if files is None:
        raise CannotPrepare(f"the base branch has no {vm_request.directory}: the VM's configuration is not there")
    try:
        if vm_request.kind == RequestKind.DECOMMISSION:
            return tombstone(files, vm_request.pk)
        values_file = values_file_of(files, configured_tfvars_file())
        # Every value the request holds, changed or not: the pushed file then says exactly what the request says.
        changes = {name: getattr(vm_request, name) for name in ("num_cpus", "memory_mb", "disk_size_gb", "notes")}
        return {**files, values_file: edit_values(files[values_file], changes)}
    except EditRefused as error:
        raise CannotPrepare(f"{vm_request.directory} cannot be edited safely: {error}") from None


def prepared(vm_request: VMRequest) -> VMRequest:
    """`vm_request` with its files made and saved, unless it has them already (a retry)."""
    if vm_request.rendered_files:
        return vm_request
    files = day2_files(vm_request)
    vm_request.rendered_files, vm_request.config_hash = files, config_hash(files)
    VMRequest.objects.filter(pk=vm_request.pk).update(
        rendered_files=vm_request.rendered_files, config_hash=vm_request.config_hash
    )
    return vm_request
