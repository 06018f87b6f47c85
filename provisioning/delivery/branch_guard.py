"""Atlantis works from whatever a request's branch holds, so delivery plans and applies only while the branch
holds the commit vmprov pushed, and afterwards checks that what was built is what was asked for.

- `BranchGuard` reads the branch's head under the repository's Atlantis lock, right before a call is sent (a
  change stops the call: nothing is sent) and right after it (a change means Atlantis may have worked from
  somebody else's commit). With ATLANTIS_REF_MODE=commit Atlantis works from vmprov's commit itself; the guard still
  stops a request whose branch somebody else changed.
- `planned_values_problem` compares the files of the planned commit with what vmprov rendered and their values with
  the request row: auto-approval trusts those files, never the row alone.
- `hardware_problem` compares the VM vCenter reports after the apply with the request (a new VM, or a resized one's
  new size): it catches an apply of other values that left the branch as it was (changed and restored within one
  apply call).
- `changed_branch_message` names the files that differ, for the request's history.

The README says why the `vmprov/` branches should be writable only by vmprov's account.
"""

from __future__ import annotations

import logging

from provisioning import gitops
from provisioning.models import VMRequest
from provisioning.terraform.edit import EditRefused, values_file_of
from provisioning.terraform.hcl_reader import parse_hcl
from provisioning.terraform.settings import configured_tfvars_file

logger = logging.getLogger(__name__)


class BranchChanged(Exception):
    """The request's branch does not point at vmprov's commit; `head` is where it points (None: it is gone)."""

    def __init__(self, head: str | None) -> None:
        super().__init__(head or "nothing")
        self.head = head


class BranchGuard:
    """The two head checks around one Atlantis call, made while the call holds the repository's lock."""

    def __init__(self, branch: str, expected: str) -> None:
        self.branch = branch
        self.expected = expected
        self.head_after: str | None = expected

    def before_send(self) -> None:
        head = gitops.branch_head(self.branch)
        if head != self.expected:
            raise BranchChanged(head)

    def after_answer(self) -> None:
        try:
            self.head_after = gitops.branch_head(self.branch)
        except gitops.GitError as error:
            # Unknown is not "unchanged": the caller treats it as a change, and a person looks.
            logger.warning("could not read branch %s after an Atlantis call: %s", self.branch, error)
            self.head_after = None

    @property
    def changed_during_call(self) -> bool:
        return self.head_after != self.expected


def changed_branch_message(vm_request: VMRequest, expected: str, head: str | None, when: str) -> str:
    """What changed on the request's branch, naming the files, for the history and the requester."""
    branch = vm_request.branch
    if head is None:
        return f"Branch {branch} is gone or could not be read {when}; vmprov's commit was {expected[:12]}."
    try:
        # One clone: the paths changed since vmprov's commit; only when that commit left the branch (a force push)
        # a second look compares the directory at the head with what vmprov rendered.
        since = gitops.branch_content(branch, expected, vm_request.directory)
        if since.commit_found:
            files = sorted(since.changed)
        else:
            at_head = gitops.branch_content(branch, head, vm_request.directory)
            differing = gitops.differing_files(at_head.files, vm_request.rendered_files)
            files = sorted(f"{vm_request.directory}/{name}" for name in differing)
    except gitops.GitError as error:
        files = [f"(could not be listed: {error})"]
    return (
        f"Branch {branch} changed outside vmprov {when}: it points at {head[:12]}, not at vmprov's commit "
        f"{expected[:12]}. Files that differ: {', '.join(files) or 'none in the request directory'}. "
        "Nothing more is planned or applied: staff can retry (vmprov pushes its own configuration again and plans "
        "it afresh), or the requester can cancel."
    )


def planned_values_problem(vm_request: VMRequest) -> str | None:
    """Why the planned commit's files are not exactly what vmprov rendered for the row (None when they are)."""
    try:
        content = gitops.branch_content(vm_request.branch, vm_request.planned_commit, vm_request.directory)
    except gitops.GitError as error:
        return f"the planned commit could not be read: {error}"
    if not content.commit_found:
        return f"the planned commit {vm_request.planned_commit[:12]} is not on branch {vm_request.branch}"
    differing = gitops.differing_files(content.files, vm_request.rendered_files)
    if differing:
        return f"the planned commit's {', '.join(differing)} differ from what vmprov rendered"
    try:
        values_file = values_file_of(content.files, configured_tfvars_file())
        values = parse_hcl(content.files.get(values_file, ""))
    except EditRefused as error:
        return f"the planned commit has {error}"
    except Exception as error:  # python-hcl2 raises its parser's own exception types
        return f"the planned {values_file} does not parse: {error}"
    disks = values.get("disks") or [{}]
    found = {"num_cpus": values.get("num_cpus"), "memory_mb": values.get("memory_mb"), "disk": disks[0].get("size")}
    asked = {"num_cpus": vm_request.num_cpus, "memory_mb": vm_request.memory_mb, "disk": vm_request.disk_size_gb}
    wrong = [
        f"{'the first disk' if name == 'disk' else name} is {found[name]!r}, the request says {value}"
        for name, value in asked.items()
        if found[name] != value
    ]
    return f"the planned values differ from the request: {'; '.join(wrong)}" if wrong else None


def hardware_problem(vm_request: VMRequest, hardware: dict) -> str | None:
    """Why the VM vCenter reports is not the one the request asked for (None when it is)."""
    wrong = []
    if hardware.get("num_cpus") != vm_request.num_cpus:
        wrong.append(f"{hardware.get('num_cpus')} CPUs, the request says {vm_request.num_cpus}")
    if hardware.get("memory_mb") != vm_request.memory_mb:
        wrong.append(f"{hardware.get('memory_mb')} MB of memory, the request says {vm_request.memory_mb}")
    disks = hardware.get("disks") or []
    first = disks[0]["size_gb"] if disks else None
    if first != vm_request.disk_size_gb:
        wrong.append(f"a first disk of {first} GB, the request says {vm_request.disk_size_gb}")
    return f"the VM in vCenter has {'; '.join(wrong)}" if wrong else None
