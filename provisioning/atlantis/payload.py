"""The JSON body of a plan or apply request, as Atlantis's `APIRequest` declares it.

Atlantis decodes the body with Go's `encoding/json`: keys match case-insensitively and unknown keys are dropped
silently, so a misspelled key is simply missing and Atlantis answers `request "…" is missing fields`. The body is:

- `Repository` and `Type` from the checked AtlantisConfig (owner/repo; `Github`, `Gitlab` or `Gitea`, exact case).
- `Ref`, the request's branch: up to v0.44 Atlantis clones it with `git clone --branch`, so it must be a branch name
  (not a SHA). What gets applied is whatever the branch holds at apply time, which is why delivery checks the branch
  under the lock right before and right after every call. From v0.46 `Ref` may be a commit, with `base_branch`
  naming a branch it must be reachable from (ATLANTIS_REF_MODE=commit): then exactly that commit is planned.
- `Paths`, one entry: `Directory` relative to the repository and `Workspace` "default", which Atlantis runs as
  `-d <Directory> -w <Workspace>`. `Paths` needs no `atlantis.yaml` in the repository.
- No `PR`: up to v0.44 a call without one uses PR 0, and from v0.44.1 a PR number above 0 is looked up on the VCS, so
  an invented one fails (v0.45+ has a proper non-PR mode). No `project_name` (v0.45+ only).

The branch and directory come from vmprov's own naming (provisioning.gitops) and are not re-validated at length, but
two string checks guard the request itself: they cost nothing next to an HTTP call, and stop a malformed request (an
odd VMPROV_GITOPS_BRANCH_PREFIX or VMPROV_GITOPS_DIR_PATTERN, an edited request row) before Atlantis sees it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from provisioning.atlantis.config import AtlantisConfig, AtlantisConfigError

DEFAULT_WORKSPACE = "default"

# Characters git refuses anywhere in a ref name (besides control characters): `git check-ref-format` rules 4, 5, 10.
_REF_FORBIDDEN = set(" ~^:?*[\\")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def build_payload(config: AtlantisConfig, branch: str, directory: str, commit: str = "") -> dict[str, Any]:
    """The body of a request for `directory` on `branch` (at `commit`, when the config's ref mode is "commit");
    raises AtlantisConfigError when Atlantis could not clone the branch or would read the directory outside the
    repository."""
    problems = []
    if problem := branch_name_problem(branch):
        problems.append(f"the branch {branch!r} is not a valid Git branch name: {problem}")
    if problem := directory_problem(directory):
        problems.append(f"the directory {directory!r} is not a repository-relative directory: {problem}")
    by_commit = config.ref_mode == "commit"
    if by_commit and not _COMMIT.fullmatch(commit or ""):
        problems.append(f"ATLANTIS_REF_MODE is 'commit' but {commit!r} is not a full commit id")
    if problems:
        raise AtlantisConfigError("; ".join(problems))
    payload = {
        "Repository": config.repo,
        "Ref": commit if by_commit else branch,
        "Type": config.vcs_type,
        "Paths": [{"Directory": directory, "Workspace": DEFAULT_WORKSPACE}],
    }
    if by_commit:
        payload["base_branch"] = branch  # snake_case, as Atlantis declares it (BaseBranch would be dropped)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The request body's bytes: UTF-8 JSON, as Go's decoder reads it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def branch_name_problem(name: Any) -> str | None:
    """Why `name` is not a branch name `git check-ref-format --branch` accepts (None when it is)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    for char in name:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"it contains the control character U+{ord(char):04X}"
        if unicodedata.category(char) == "Cs":
            return "it is not valid Unicode text"
        if char in _REF_FORBIDDEN:
            return f"it contains {char!r}"
    if name.startswith("-"):
        return "it starts with '-'"
    if name in ("HEAD", "@"):
        # `git check-ref-format --branch @` resolves @ to the current branch; `git clone --branch @` has none.
        return f"{name!r} is not a branch"
    if "@{" in name:
        return "it contains '@{'"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it has an empty path component (a leading, trailing or double '/')"
    if name.endswith("."):
        return "it ends with '.'"
    for component in name.split("/"):
        if component.startswith("."):
            return f"its component {component!r} starts with '.'"
        if component.endswith(".lock"):
            return f"its component {component!r} ends with '.lock'"
    return None


def directory_problem(directory: Any) -> str | None:
    """Why `directory` is not a safe repository-relative directory for Atlantis's `Paths` (None when it is)."""
    if not isinstance(directory, str) or not directory:
        return "it is empty"
    if directory.startswith("/"):
        return "it is absolute (starts with '/')"
    if "\\" in directory:
        return "it contains a backslash"
    for char in directory:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs"):
            return f"it contains the character U+{ord(char):04X}"
    if directory == ".":
        return None
    for component in directory.split("/"):
        if component == "":
            return "it has an empty path component (a trailing or double '/')"
        if component in (".", ".."):
            return f"it has a {component!r} component"
    return None
