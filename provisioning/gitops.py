"""All Git I/O of delivery: a request's branch, its commit and push, the merge after apply, a delivered VM's directory
as the base branch holds it (what a change edits), and the commit that removes a decommissioned VM's directory.

Every job works in a fresh working copy of its own (a temporary clone), so concurrent jobs never
share one. Credentials never travel inside a URL: a repository URL holding a password is refused,
and a password or token reaches git through GIT_ASKPASS, read from the environment of the git
process only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import string
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from provisioning.terraform.structure import ensure_config_structure

logger = logging.getLogger(__name__)

ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$VMPROV_GIT_USERNAME" ;;
  *) printf '%s\\n' "$VMPROV_GIT_PASSWORD" ;;
esac
"""


class GitError(Exception):
    """A git command failed; the message is for people (no credentials in it)."""


@dataclass(frozen=True)
class PushResult:
    branch: str
    directory: str
    commit: str
    pushed: bool  # False when the branch already held exactly this configuration


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    commit: str
    message: str


# --- Names -------------------------------------------------------------------------------------


def path_safe(name: str, fallback: str) -> str:
    """A directory or branch segment from a display name: ASCII letters, digits, `.`, `_`, `-`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    segment = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-.")
    segment = re.sub(r"\.{2,}", ".", segment)[:100]
    return segment or fallback


def request_branch(request_id: int, vm_name: str) -> str:
    return f"{settings.VMPROV_GITOPS_BRANCH_PREFIX}{request_id}-{path_safe(vm_name, 'vm')}"


def request_directory(datacenter_name: str, datacenter_id: str, vm_name: str) -> str:
    return settings.VMPROV_GITOPS_DIR_PATTERN.format(
        datacenter=path_safe(datacenter_name, path_safe(datacenter_id, "datacenter")),
        datacenter_id=path_safe(datacenter_id, "datacenter"),
        vm_name=path_safe(vm_name, "vm"),
    ).strip("/")


def shown_url(url: str) -> str:
    """The repository URL as it may appear in messages and logs: never with a password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def repository_url() -> str:
    """The GitOps repository. Its settings are checked at start-up (`settings_problems`); a URL with a password
    is refused here too, because a process that skipped the checks must still never hand it to git."""
    url = settings.VMPROV_GITOPS_REPO
    if not url:
        raise GitError("VMPROV_GITOPS_REPO is not set: vmprov does not know which Git repository Atlantis works from")
    if urlsplit(url).password:
        raise GitError(_PASSWORD_IN_URL)
    return url


_PASSWORD_IN_URL = (
    "VMPROV_GITOPS_REPO must not hold a password; set VMPROV_GIT_USERNAME and VMPROV_GIT_PASSWORD instead "
    "(they reach git through GIT_ASKPASS)"
)
_PATTERN_FIELDS = {"datacenter", "datacenter_id", "vm_name"}
_REF_UNSAFE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def settings_problems() -> list[str]:
    """What is wrong with the Git settings, for the system check (an unset repository is not wrong: no delivery)."""
    problems = []
    if urlsplit(settings.VMPROV_GITOPS_REPO).password:
        problems.append(_PASSWORD_IN_URL)
    pattern = settings.VMPROV_GITOPS_DIR_PATTERN
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as error:
        fields = {"vm_name"}  # said once, below not again
        problems.append(f"VMPROV_GITOPS_DIR_PATTERN {pattern!r} is not a format string: {error}")
    if fields - _PATTERN_FIELDS:
        problems.append(
            f"VMPROV_GITOPS_DIR_PATTERN may use {{datacenter}}, {{datacenter_id}} and {{vm_name}} only, "
            f"not {', '.join(sorted(fields - _PATTERN_FIELDS))}"
        )
    elif "vm_name" not in fields:
        problems.append("VMPROV_GITOPS_DIR_PATTERN must contain {vm_name}: every VM needs a directory of its own")
    else:
        sample = request_directory("dc", "datacenter-1", "vm")
        if any(part in ("", ".", "..") for part in sample.split("/")):
            problems.append(f"VMPROV_GITOPS_DIR_PATTERN {pattern!r} makes a path with an empty, '.' or '..' part")
    for name in ("VMPROV_GITOPS_BRANCH_PREFIX", "VMPROV_GITOPS_BASE_BRANCH"):
        value = getattr(settings, name)
        if name == "VMPROV_GITOPS_BASE_BRANCH" and not value:
            problems.append("VMPROV_GITOPS_BASE_BRANCH is empty")
        elif _REF_UNSAFE.search(value) or value.startswith(("-", "/", ".")):
            problems.append(f"{name} {value!r} cannot be part of a Git branch name")
    if settings.VMPROV_GIT_TIMEOUT <= 0:
        problems.append("VMPROV_GIT_TIMEOUT must be a positive number of seconds")
    return problems


# --- Running git -------------------------------------------------------------------------------


class Git:
    """git in one working copy, with credentials only in the child's environment."""

    def __init__(self, workdir: Path, askpass: Path | None):
        self.workdir = workdir
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_COMMITTER_NAME": settings.VMPROV_GIT_COMMITTER_NAME,
            "GIT_COMMITTER_EMAIL": settings.VMPROV_GIT_COMMITTER_EMAIL,
            # vmprov's own commits (merges); a request's commit is authored by its requester.
            "GIT_AUTHOR_NAME": settings.VMPROV_GIT_COMMITTER_NAME,
            "GIT_AUTHOR_EMAIL": settings.VMPROV_GIT_COMMITTER_EMAIL,
            "HOME": str(workdir.parent),  # no user ~/.gitconfig, no stored credentials of the host's user
        }
        if askpass is not None:
            self.env |= {
                "GIT_ASKPASS": str(askpass),
                "VMPROV_GIT_USERNAME": settings.VMPROV_GIT_USERNAME,
                "VMPROV_GIT_PASSWORD": settings.VMPROV_GIT_PASSWORD,
            }

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
        command = ["git", *args]
        try:
            result = subprocess.run(
                command,
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                capture_output=True,
                text=True,
                timeout=settings.VMPROV_GIT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} did not finish within {settings.VMPROV_GIT_TIMEOUT} s") from None
        except OSError as error:
            raise GitError(f"git could not run: {error}") from None
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise GitError(f"git {args[0]} failed: {_without_secrets(detail)}")
        return result.stdout.strip()


def _without_secrets(text: str) -> str:
    text = re.sub(r"(\w+://[^/\s:@]+):[^@\s/]+@", r"\1:***@", text)
    password = settings.VMPROV_GIT_PASSWORD
    return text.replace(password, "***") if password else text


@contextmanager
def _scratch() -> Iterator[Git]:
    """A private temporary directory with git set up to run in it (and the askpass helper when needed)."""
    root = Path(tempfile.mkdtemp(prefix="vmprov-git-", dir=settings.VMPROV_GIT_WORKDIR or None))
    askpass = None
    if settings.VMPROV_GIT_PASSWORD:
        askpass = root / "askpass.sh"
        askpass.write_text(ASKPASS_SCRIPT)
        askpass.chmod(0o700)
    checkout = root / "repo"
    checkout.mkdir()
    try:
        yield Git(checkout, askpass)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def working_copy(branch: str | None = None) -> Iterator[Git]:
    """A fresh clone (base branch, or `branch` when it exists remotely) in a directory of its own."""
    url = repository_url()
    base = settings.VMPROV_GITOPS_BASE_BRANCH
    with _scratch() as git:
        git("init", "--quiet")
        git("remote", "add", "origin", url)
        remote_heads = _remote_heads(git, [base] + ([branch] if branch else []))
        if base not in remote_heads:
            raise GitError(f"the repository {shown_url(url)} has no branch {base!r} (VMPROV_GITOPS_BASE_BRANCH)")
        git("fetch", "--quiet", "origin", *[f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in remote_heads])
        start = branch if branch in remote_heads else base
        git("checkout", "--quiet", "-B", branch or base, f"origin/{start}")
        yield git


def _remote_heads(git: Git, branches: list[str], remote: str = "origin") -> dict[str, str]:
    output = git("ls-remote", "--heads", remote, *[f"refs/heads/{b}" for b in branches])
    heads = {}
    for line in output.splitlines():
        commit, ref = line.split("\t", 1)
        heads[ref.removeprefix("refs/heads/")] = commit
    return heads


def branch_head(branch: str) -> str | None:
    """The commit a remote branch points at now, or None when it does not exist."""
    url = repository_url()
    with _scratch() as git:
        return _remote_heads(git, [branch], remote=url).get(branch)


# --- Delivery steps ----------------------------------------------------------------------------


def _refuse_links(workdir: Path, directory: str) -> None:
    """A symbolic link committed anywhere on the request's path would make vmprov write outside its working
    copy (a linked datacenter directory, a linked terraform.tfvars): refuse before writing anything."""
    path = workdir
    for part in directory.split("/"):
        path = path / part
        if path.is_symlink():
            raise GitError(f"refusing to push: {path.relative_to(workdir)} is a symbolic link in the repository")
        if not path.exists():
            return
    for entry in path.rglob("*"):
        if entry.is_symlink():
            raise GitError(f"refusing to push: {entry.relative_to(workdir)} is a symbolic link in the repository")


def push_request(
    *,
    branch: str,
    directory: str,
    files: Mapping[str, str],
    author_name: str,
    author_email: str,
    message: str,
) -> PushResult:
    """Write a request's files on its branch, check their structure, commit as the requester, push.

    The files must be complete as they are: when the structure check would add anything or finds a problem, this
    raises GitError and pushes nothing. Idempotent: when the branch already holds exactly these files, nothing is
    committed or pushed.
    """
    with working_copy(branch) as git:
        _refuse_links(git.workdir, directory)
        target = git.workdir / directory
        target.mkdir(parents=True, exist_ok=True)
        # The directory holds exactly what vmprov rendered: whatever else was committed there goes.
        for entry in target.iterdir():
            if entry.name in files:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for name, content in files.items():
            (target / name).write_text(content, encoding="utf-8")
        # Check only: rendered files are complete by construction, so a gap is a rendering bug to report loudly;
        # patching it here would push files that no longer match the request's rendered_files and config_hash.
        report = ensure_config_structure(target, check=True)
        if not report.ok:
            raise GitError(
                f"refusing to push {directory}: the rendered configuration is incomplete: {report.shortfall()}"
            )
        git("add", "--all", "--", directory)
        if not git("status", "--porcelain", "--", directory):
            return PushResult(branch, directory, git("rev-parse", "HEAD"), pushed=False)
        git(
            "commit",
            "--quiet",
            "--message",
            message,
            env={"GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email},
        )
        commit = git("rev-parse", "HEAD")
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        logger.info("pushed %s to %s (%s)", directory, branch, commit[:12])
        return PushResult(branch, directory, commit, pushed=True)


@dataclass(frozen=True)
class BranchContent:
    """What a request's directory holds at a commit of its branch, compared with what vmprov rendered."""

    head: str | None  # the branch's head now (None: the branch is gone)
    commit_found: bool  # the commit asked about is on the branch
    files: dict[str, str]  # the directory's files at that commit (empty when not found)
    changed: list[str]  # repository paths that differ between that commit and the head


def branch_content(branch: str, commit: str, directory: str) -> BranchContent:
    """The request directory's files at `commit`, and which paths the branch changed since (for a history line)."""
    if branch_head(branch) is None:
        return BranchContent(None, False, {}, [])
    with working_copy(branch) as git:
        head = git("rev-parse", "HEAD")
        if not git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False):
            return BranchContent(head, False, {}, [])
        changed = git("diff", "--name-only", commit, head).splitlines() if commit != head else []
        git("checkout", "--quiet", "--detach", commit)
        target = git.workdir / directory
        files = {}
        if target.is_dir() and not target.is_symlink():
            for entry in sorted(target.iterdir()):
                # A link or a subdirectory is never something vmprov rendered: it shows as a difference.
                files[entry.name] = "" if entry.is_symlink() or not entry.is_file() else entry.read_text("utf-8")
        return BranchContent(head, True, files, changed)


def base_directory_files(directory: str) -> dict[str, str] | None:
    """The files of `directory` on the base branch (None when it is not there): what a change of a delivered VM
    starts from. A symbolic link or a subdirectory in it is refused: vmprov pushes a directory back exactly as it
    lists it, and would drop what it cannot list."""
    with working_copy() as git:
        _refuse_links(git.workdir, directory)
        target = git.workdir / directory
        if not target.is_dir():
            return None
        files = {}
        for entry in sorted(target.iterdir()):
            if not entry.is_file():
                raise GitError(f"{directory}/{entry.name} on {settings.VMPROV_GITOPS_BASE_BRANCH} is not a file")
            files[entry.name] = entry.read_text(encoding="utf-8")
        return files


def push_removal(*, branch: str, directory: str, message: str) -> PushResult:
    """Commit the removal of `directory` (as vmprov) on `branch`, made from the base branch, and push it. Idempotent:
    when the branch no longer holds the directory, nothing is committed or pushed."""
    with working_copy(branch) as git:
        _refuse_links(git.workdir, directory)
        if not (git.workdir / directory).exists():
            return PushResult(branch, directory, git("rev-parse", "HEAD"), pushed=False)
        git("rm", "-r", "--quiet", "--", directory)
        git("commit", "--quiet", "--message", message)
        commit = git("rev-parse", "HEAD")
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        logger.info("pushed the removal of %s to %s (%s)", directory, branch, commit[:12])
        return PushResult(branch, directory, commit, pushed=True)


def differing_files(files: Mapping[str, str], rendered: Mapping[str, str]) -> list[str]:
    """The names whose content differs between two directories' files (either side missing counts)."""
    return sorted(name for name in set(files) | set(rendered) if files.get(name) != rendered.get(name))


def merge_and_delete(branch: str, message: str) -> MergeResult:
    """After apply: merge the request's branch into the base branch and delete it.

    When the base branch refuses the push (protected), the branch stays and the result says so.
    """
    base = settings.VMPROV_GITOPS_BASE_BRANCH
    with working_copy(branch) as git:
        error = None
        for _attempt in range(3):
            # Someone else may push to the base branch meanwhile (non-fast-forward): merge again on its new tip.
            git("fetch", "--quiet", "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}")
            git("checkout", "--quiet", "-B", base, f"origin/{base}")
            git("merge", "--quiet", "--no-ff", "--message", message, f"origin/{branch}")
            commit = git("rev-parse", "HEAD")
            try:
                git("push", "--quiet", "origin", f"HEAD:refs/heads/{base}")
                break
            except GitError as refused:
                error = refused
        else:
            return MergeResult(
                merged=False,
                commit=commit,
                message=f"{base} refused the merge ({error}); branch {branch} is left for a person to merge",
            )
        git("push", "--quiet", "origin", "--delete", branch, check=False)
    return MergeResult(merged=True, commit=commit, message=f"merged {branch} into {base} and deleted it")


def delete_branch(branch: str, expected_head: str) -> str:
    """Delete a closed request's branch while it still points at `expected_head` (the commit vmprov pushed).

    A branch somebody else moved stays for a person to look at. Returns what happened, in words for the history.
    """
    url = repository_url()
    with _scratch() as git:
        git("init", "--quiet")
        head = _remote_heads(git, [branch], remote=url).get(branch)
        if head is None:
            return f"Branch {branch} is gone already."
        if head != expected_head:
            return f"Branch {branch} is left in place: it holds {head[:12]}, not vmprov's commit {expected_head[:12]}."
        # The lease makes the deletion lose to a push that lands in between.
        git("push", "--quiet", f"--force-with-lease=refs/heads/{branch}:{expected_head}", url, f":refs/heads/{branch}")
    return f"Deleted branch {branch}."
