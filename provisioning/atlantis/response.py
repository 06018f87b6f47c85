"""Reading Atlantis's answer to a plan or apply: every shape from v0.19.8 on, turned into an AtlantisResult.

What Atlantis answers:

- Its request checks fail with `{"error": "<text>"}` (`Content-Type: application/json`): API disabled (no
  `--api-secret` on the server; HTTP 400 up to v0.44, 503 from v0.45), token missing or wrong (401), unreadable or
  unparsable body (400), `request "<raw body>" is missing fields` (400), an unknown `Type` (400), repository not in
  `--repo-allowlist` (403); a failed clone URL lookup, clone or `failed to build command: …` is a 500 with the raw text.
- Otherwise the body is the raw command result, HTTP 200 when no project failed and 500 when any did:
  `{"Error": …, "Failure": "", "ProjectResults": [{"Error", "Failure", "PlanSuccess": {"TerraformOutput", …},
  "ApplySuccess": "<apply output>", "Command": 1, "RepoRelDir", "Workspace", …}], …}`. An apply's answer holds only
  the apply, though Atlantis planned again first in the same call.
- A Go `error` is serialized as `{}`: its text is lost, and `Failure` is the only readable per-project error. What
  can be said then points at Atlantis's log at the time of the call (or names the missing directory, whose error
  keeps a `RepoRelDir` field).
- 200 with `ProjectResults` `null` (before v0.36) or `[]` means nothing was planned or applied: a failure.
- Older keys: `PolicyCheckSuccess` (before v0.24), `PlanSuccess.HasDiverged` (before v0.26).

Any non-200 answer is a failure, even when no project says why.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from provisioning.atlantis.result import AtlantisResult, Outcome, ProjectResult

# Atlantis's `Command` numbers.
COMMAND_NAMES = {
    0: "apply",
    1: "plan",
    2: "unlock",
    3: "policy_check",
    4: "approve_policies",
    5: "autoplan",
    6: "version",
    7: "import",
    8: "state",
}


def interpret_response(
    command: str,
    status: int,
    body: bytes,
    *,
    called_at: datetime,
    branch: str = "",
    directory: str = "",
) -> AtlantisResult:
    """An AtlantisResult (SUCCEEDED or FAILED) from Atlantis's HTTP status and body."""
    what = f"{command} of {directory} on {branch}" if directory else command
    try:
        document = json.loads(body.decode("utf-8", errors="replace")) if body.strip() else None
    except json.JSONDecodeError:
        document = None

    if isinstance(document, dict) and "error" in document and "ProjectResults" not in document:
        return AtlantisResult(
            command=command,
            outcome=Outcome.FAILED,
            http_status=status,
            message=f"Atlantis refused the {what}: {_error_body_message(status, str(document['error']))}",
        )
    if not isinstance(document, dict):
        shown = body[:200].decode("utf-8", errors="replace").strip()
        return AtlantisResult(
            command=command,
            outcome=Outcome.FAILED,
            http_status=status,
            message=f"Atlantis answered the {what} with HTTP {status} and no result"
            + (f": {shown!r}" if shown else " (empty body)"),
        )

    projects = [
        _project_result(raw, command, called_at)
        for raw in (document.get("ProjectResults") or [])
        if isinstance(raw, dict)
    ]
    problems = []
    if document.get("Failure"):
        problems.append(str(document["Failure"]))
    if document.get("Error") is not None:
        problems.append(_error_text(document["Error"], called_at))
    if not projects and not problems:
        problems.append(
            f"nothing was {'planned' if command == 'plan' else 'applied'}: Atlantis found no project in {directory} "
            f"on {branch}"
        )
    failed = [project for project in projects if not project.succeeded]
    problems.extend(
        f"{project.directory or '?'} ({project.workspace or '?'}): {project.failure}"
        if len(projects) > 1
        else project.failure
        for project in failed
    )
    if status != 200 and not problems:
        problems.append(f"Atlantis answered HTTP {status}, which means a failure, though no project reported one")
    if problems:
        return AtlantisResult(
            command=command,
            outcome=Outcome.FAILED,
            http_status=status,
            projects=projects,
            message=f"The {what} failed (HTTP {status}): " + "; ".join(problems),
        )
    result = AtlantisResult(
        command=command, outcome=Outcome.SUCCEEDED, http_status=status, projects=projects, message=""
    )
    result.message = f"The {what} succeeded: {result.summary()}"
    return result


def utc_text(moment: datetime) -> str:
    """A moment as people look for it in Atlantis's log."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _error_body_message(status: int, text: str) -> str:
    """The `{"error": "..."}` answers of Atlantis's request checks, explained."""
    if "API is disabled" in text:
        return (
            f"its API is disabled: the Atlantis server has no API secret configured (--api-secret / "
            f"ATLANTIS_API_SECRET) (HTTP {status}: {text})"
        )
    if status == 401:
        return f"the token was refused: ATLANTIS_TOKEN does not match Atlantis's --api-secret (HTTP 401: {text})"
    if status == 403:
        return f"the repository is not allowlisted: add it to Atlantis's --repo-allowlist (HTTP 403: {text})"
    if "is missing fields" in text:
        return f"Atlantis says the request is missing fields (HTTP {status}: {text})"
    return f"HTTP {status}: {text}"


def _error_text(error: Any, called_at: datetime) -> str:
    """What can be said about a serialized Go error: usually `{}`, its text lost."""
    see_log = f"see its log at {utc_text(called_at)}"
    if isinstance(error, str) and error:
        return error
    if isinstance(error, dict) and error:
        if set(error) == {"RepoRelDir"}:
            return (
                f"the directory {error['RepoRelDir']} does not exist on the branch "
                f"(no more detail from Atlantis; {see_log})"
            )
        fields = ", ".join(f"{key}={value!r}" for key, value in error.items())
        return f"error with {fields} (no more detail from Atlantis; {see_log})"
    return f"no detail from Atlantis; {see_log}"


def _project_result(raw: dict[str, Any], command: str, called_at: datetime) -> ProjectResult:
    directory = str(raw.get("RepoRelDir") or "")
    workspace = str(raw.get("Workspace") or "")
    number = raw.get("Command")
    project_command = COMMAND_NAMES.get(number, str(number)) if isinstance(number, int) else str(number or "")
    problems = []
    if raw.get("Failure"):
        problems.append(str(raw["Failure"]))
    if raw.get("Error") is not None:
        problems.append(_error_text(raw["Error"], called_at))
    output = ""
    plan_success = raw.get("PlanSuccess")
    apply_success = raw.get("ApplySuccess")
    policy_check = raw.get("PolicyCheckSuccess") or raw.get("PolicyCheckResults")
    if isinstance(plan_success, dict):
        output = str(plan_success.get("TerraformOutput") or "")
    if isinstance(apply_success, str) and apply_success:
        output = apply_success
    if project_command == "policy_check":
        # Only with server-side policy checks; its output is shown, the plan itself comes in its own project.
        output = str(policy_check.get("PolicyCheckOutput") or "") if isinstance(policy_check, dict) else ""
    elif not problems:
        if command == "apply" and not (isinstance(apply_success, str) and apply_success):
            problems.append("Atlantis returned no apply output")
        elif command == "plan" and not isinstance(plan_success, dict):
            problems.append("Atlantis returned no plan")
    return ProjectResult(
        directory=directory,
        workspace=workspace,
        succeeded=not problems,
        output=output,
        failure="; ".join(problems),
        command=project_command,
    )
