"""What each kind of request expects of its plan and of its apply, checked before anyone may approve the plan and
before the apply counts as done.

- a new VM: its plan is shown to an approver whatever it says (auto-approval asks for exactly one VM added);
- a change: the plan must update the VM in place and nothing else ("0 to add, 1 to change, 0 to destroy"); a
  replacement ("1 to add, 1 to destroy") would destroy the VM and its disks, and is refused;
- a decommission: the plan must destroy the VM and nothing else ("0 to add, 0 to change, 1 to destroy"), and the
  apply's own output must say "0 added, 0 changed, 1 destroyed".

A plan that is refused never reaches an approver: the request fails at its plan, its output kept for people to read.
"""

from __future__ import annotations

import re

from provisioning import atlantis
from provisioning.lifecycle import RequestKind

VM_ADDRESS = "vsphere_virtual_machine.vm"
# (add, change, destroy) and the one thing that may happen to the VM, per kind.
PLANS = {
    RequestKind.CHANGE: ((0, 1, 0), "will be updated in-place"),
    RequestKind.DECOMMISSION: ((0, 0, 1), "will be destroyed"),
}
APPLIES = {RequestKind.CHANGE: (0, 1, 0), RequestKind.DECOMMISSION: (0, 0, 1)}
_ACTION = re.compile(
    r"^\s*# (\S+) (will be created|will be updated in-place|will be destroyed|must be replaced|is tainted)"
)
_APPLIED = re.compile(r"Apply complete! Resources: (\d+) added, (\d+) changed, (\d+) destroyed\.")


def _counts(counts: tuple[int, int, int] | None) -> str:
    return "no summary" if counts is None else f"{counts[0]} to add, {counts[1]} to change, {counts[2]} to destroy"


def plan_problem(kind: str, result: atlantis.AtlantisResult) -> str | None:
    """Why a successful plan is not one a request of `kind` may have approved (None when it is)."""
    if kind not in PLANS:
        return None
    (wanted, action), projects = PLANS[kind], result.projects
    if len(projects) != 1:
        return f"Atlantis planned {len(projects)} projects, not the VM's one directory"
    output = projects[0].output
    counts = atlantis.plan_counts(output)
    actions = [found.groups() for line in output.splitlines() if (found := _ACTION.match(line))]
    if counts == wanted and actions == [(VM_ADDRESS, action)]:
        return None
    what = "change the VM in place" if kind == RequestKind.CHANGE else "destroy the VM and nothing else"
    if kind == RequestKind.CHANGE and any(found == "must be replaced" for _address, found in actions):
        seen = "would replace the VM (destroy it and create another)"
    else:
        seen = f"says {_counts(counts)} ({'; '.join(' '.join(pair) for pair in actions) or 'no resource named'})"
    return f"the plan {seen}; a {kind} must {what}: {_counts(wanted)}"


def apply_problem(kind: str, apply_output: str) -> str | None:
    """Why a successful apply did not do what a request of `kind` approved, by its own summary (None when it did)."""
    if kind not in APPLIES:
        return None
    found = _APPLIED.findall(apply_output or "")
    done = tuple(int(number) for number in found[-1]) if found else None
    wanted = APPLIES[kind]
    if done == wanted:
        return None
    said = f"{done[0]} added, {done[1]} changed, {done[2]} destroyed" if done else "no summary"
    return f"the apply says {said}, not {wanted[0]} added, {wanted[1]} changed, {wanted[2]} destroyed"
