"""What a plan or apply call hands back: its `Outcome`, an `AtlantisResult` with one `ProjectResult` per project,
and `plan_counts()` to read a plan's "Plan: N to add, …" line.

Every text here is safe to show to anyone: the client takes the token out of messages and outputs before a result
leaves it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

_PLAN_COUNTS = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy\.")
_NO_CHANGES = re.compile(r"^\s*No changes\.", re.MULTILINE)
_SUMMARY_LINE = re.compile(r"^(Plan: .*|No changes\..*|Apply complete!.*)$", re.MULTILINE)


class Outcome(enum.Enum):
    """What became of one call, and so what the caller may do next."""

    # Atlantis answered, and every project succeeded.
    SUCCEEDED = "succeeded"
    # Atlantis answered with a failure, or refused the request.
    FAILED = "failed"
    # Nothing reached Atlantis (unreachable, a request httpx could not build): making the call again is safe.
    NOT_SENT = "not_sent"
    # vmprov's own per-repository lock was not had (another call for the repository, or Redis down): nothing was
    # sent; make the same call again a little later.
    BUSY = "busy"
    # Sent, and no answer came back (timeout, dropped connection): Atlantis may have done it, or still be at it. For
    # an apply the outcome is unknown and it must never be retried blindly.
    UNANSWERED = "unanswered"


@dataclass(frozen=True)
class ProjectResult:
    """One project (directory and workspace) of an Atlantis answer."""

    directory: str
    workspace: str
    succeeded: bool
    # PlanSuccess.TerraformOutput for a plan, ApplySuccess for an apply ("" when the project failed).
    output: str = ""
    # What went wrong, for people: the project's Failure, or what can be said about its Error.
    failure: str = ""
    command: str = ""


@dataclass
class AtlantisResult:
    """One plan or apply call. `message` says what happened, for people, without the full output."""

    command: str
    outcome: Outcome
    message: str
    # None when no answer came (nothing sent, or the answer was lost).
    http_status: int | None = None
    projects: list[ProjectResult] = field(default_factory=list)
    branch: str = ""
    directory: str = ""
    called_at: datetime | None = None
    duration: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    def output_text(self) -> str:
        """Every project's output; with several projects each is headed by its directory and workspace."""
        with_output = [project for project in self.projects if project.output]
        if len(self.projects) <= 1:
            return with_output[0].output if with_output else ""
        return "\n\n".join(f"# {p.directory} ({p.workspace})\n{p.output}" for p in with_output)

    def summary(self) -> str:
        """One line: Terraform's summary line(s) when it worked, the message otherwise."""
        if not self.succeeded:
            return self.message
        lines = []
        for project in self.projects:
            found = _SUMMARY_LINE.findall(project.output)
            lines.append(found[-1].strip() if found else f"{project.directory}: done")
        return " ".join(lines) if lines else self.message


def plan_counts(terraform_output: str) -> tuple[int, int, int] | None:
    """(add, change, destroy) from a plan's output; (0, 0, 0) for "No changes."; None when neither is there."""
    if not terraform_output:
        return None
    found = _PLAN_COUNTS.findall(terraform_output)
    if found:
        add, change, destroy = found[-1]
        return int(add), int(change), int(destroy)
    if _NO_CHANGES.search(terraform_output):
        return (0, 0, 0)
    return None
