"""Atlantis I/O: the one module that asks Atlantis to plan or apply a VM's directory through its API.

The contract is /work/shared/reference/atlantis-api.md (Atlantis v0.34 … v0.47). What this module keeps to:

- The request is checked before it is sent (`build_payload`): a non-empty `Repository` with a `/`, a `Ref` that is a
  valid Git branch name, the exact `Type`, one `Paths` entry with a safe relative `Directory`. No `PR`: up to v0.44 an
  API call without one uses PR 0, and from v0.44.1 an invented PR number fails. Anything wrong raises
  `AtlantisConfigError` before any HTTP call, so Atlantis never answers "request … is missing fields".
- The token travels only in the `X-Atlantis-Token` header. It is read from the settings for each call and never kept
  on an object, logged, or put in a message.
- Up to v0.44 every API call without a PR shares one working directory and one lock key on the Atlantis side: calls
  for the same repository must never overlap. Each call holds a Redis lock keyed by the repository (across processes
  and hosts). When a call was sent but never answered (timeout, dropped connection) Atlantis may still be working,
  so the lock is left to expire on its own instead of being released.
- Any non-200 answer is a failure; so is a 200 with no project (nothing was planned). A project's `Error` is
  serialized by Atlantis as `{}`, its text lost: the message then points at Atlantis's log at the time of the call.
- An apply that times out or loses its connection raises `AtlantisOutcomeUnknown`: it may have happened, and the
  caller must not retry blindly. A plan in the same situation is an ordinary failure result.

Settings (read at each call): ATLANTIS_URL, ATLANTIS_TOKEN, ATLANTIS_REPO, ATLANTIS_VCS_TYPE, ATLANTIS_PLAN_TIMEOUT,
ATLANTIS_APPLY_TIMEOUT, ATLANTIS_CONNECT_TIMEOUT, ATLANTIS_LOCK_WAIT, ATLANTIS_LOCK_MARGIN.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from redis.exceptions import LockError, RedisError

logger = logging.getLogger(__name__)

VCS_TYPES = ("Github", "Gitlab", "Gitea")
# Valid for Atlantis's parser, but its API answers "not yet implemented" for them.
UNSUPPORTED_VCS_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")
TOKEN_HEADER = "X-Atlantis-Token"
DEFAULT_WORKSPACE = "default"

DEFAULT_PLAN_TIMEOUT = 900
DEFAULT_APPLY_TIMEOUT = 3600
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_LOCK_WAIT = 120
DEFAULT_LOCK_MARGIN = 60
# Sending a request body of a few hundred bytes never takes long; a stuck write is a dead connection.
WRITE_TIMEOUT = 30

# Atlantis's `Command` numbers (server/events/command/name.go).
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

_PLAN_COUNTS = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy\.")
_NO_CHANGES = re.compile(r"^\s*No changes\.", re.MULTILINE)
_SUMMARY_LINE = re.compile(r"^(Plan: .*|No changes\..*|Apply complete!.*)$", re.MULTILINE)
_WORKSPACE = re.compile(r"[A-Za-z0-9._~-]+")
# Characters git refuses anywhere in a ref name (besides control characters): `git check-ref-format` rules 4, 5, 10.
_REF_FORBIDDEN = set(" ~^:?*[\\")


class AtlantisError(Exception):
    """Base of this module's errors. Messages never hold the token."""


class AtlantisConfigError(AtlantisError):
    """A setting or an argument makes a request Atlantis would refuse; raised before any HTTP call."""


class AtlantisOutcomeUnknown(AtlantisError):
    """An apply was sent but no answer came back: it may have happened. Do not retry without checking."""

    def __init__(self, message: str, *, branch: str, directory: str, called_at: datetime) -> None:
        super().__init__(message)
        self.branch = branch
        self.directory = directory
        self.called_at = called_at


@dataclass(frozen=True)
class ProjectResult:
    """One project (directory and workspace) of an Atlantis answer."""

    directory: str
    workspace: str
    ok: bool
    # PlanSuccess.TerraformOutput for a plan, ApplySuccess for an apply ("" when the project failed).
    output: str = ""
    # What went wrong, for people: the project's Failure, or what can be said about its Error.
    failure: str = ""
    command: str = ""


@dataclass
class AtlantisResult:
    """The outcome of one plan or apply call. `message` is safe to show to anyone (no token, no full output)."""

    command: str
    ok: bool
    http_status: int | None
    message: str
    projects: list[ProjectResult] = field(default_factory=list)
    branch: str = ""
    directory: str = ""
    # False when nothing reached Atlantis (unreachable, lock not had, Redis down): retrying is then safe.
    sent: bool = True
    # True when nothing was sent because of vmprov's own lock (another call for the repository, or Redis down):
    # the same call can simply be made again a little later.
    retry_later: bool = False
    called_at: datetime | None = None
    duration: float = 0.0

    def output_text(self) -> str:
        """Every project's output; with several projects each is headed by its directory and workspace."""
        with_output = [project for project in self.projects if project.output]
        if len(self.projects) <= 1:
            return with_output[0].output if with_output else ""
        return "\n\n".join(f"# {p.directory} ({p.workspace})\n{p.output}" for p in with_output)

    def summary(self) -> str:
        """One line: Terraform's summary line(s) when it worked, the message otherwise."""
        if not self.ok:
            return self.message
        lines = []
        for project in self.projects:
            found = _SUMMARY_LINE.findall(project.output)
            lines.append(found[-1].strip() if found else f"{project.directory}: done")
        return " ".join(lines) if lines else self.message


@dataclass(frozen=True)
class _Config:
    url: str
    repo: str
    vcs_type: str
    timeout: float
    connect_timeout: float
    lock_wait: float
    lock_margin: float


# --- Pure helpers ---------------------------------------------------------------------------------------------


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


def _repository_problem(repo: Any) -> str | None:
    if not isinstance(repo, str) or not repo.strip():
        return "is not set"
    if "/" not in repo:
        return f"{repo!r} has no '/': it must be owner/repo (GitLab: the full group path)"
    if repo != repo.strip() or any(part == "" or part != part.strip() for part in repo.split("/")):
        return f"{repo!r} must be owner/repo with no empty part and no surrounding spaces"
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in repo):
        return f"{repo!r} contains a control character"
    return None


def _vcs_type_problem(vcs_type: Any) -> str | None:
    if not isinstance(vcs_type, str) or not vcs_type:
        return f"is not set (one of {', '.join(VCS_TYPES)})"
    if vcs_type in VCS_TYPES:
        return None
    if vcs_type in UNSUPPORTED_VCS_TYPES:
        return f"{vcs_type!r}: Atlantis's API does not implement it yet (use one of {', '.join(VCS_TYPES)})"
    exact = [name for name in VCS_TYPES if name.lower() == vcs_type.strip().lower()]
    if exact:
        return f"{vcs_type!r} must be spelled exactly {exact[0]!r}"
    return f"{vcs_type!r} is not one of {', '.join(VCS_TYPES)}"


def build_payload(branch: str, directory: str, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
    """The JSON body of a plan or apply request, checked: raises AtlantisConfigError for anything Atlantis would
    refuse or misread. Keys are spelled exactly as Atlantis's APIRequest declares them."""
    repo = getattr(settings, "ATLANTIS_REPO", "")
    vcs_type = getattr(settings, "ATLANTIS_VCS_TYPE", "Github")
    problems = []
    if problem := _repository_problem(repo):
        problems.append(f"ATLANTIS_REPO {problem}")
    if problem := _vcs_type_problem(vcs_type):
        problems.append(f"ATLANTIS_VCS_TYPE {problem}")
    if problem := branch_name_problem(branch):
        problems.append(f"the branch {branch!r} is not a valid Git branch name: {problem}")
    if problem := directory_problem(directory):
        problems.append(f"the directory {directory!r} is not a repository-relative directory: {problem}")
    if not isinstance(workspace, str) or not _WORKSPACE.fullmatch(workspace) or workspace in (".", ".."):
        problems.append(f"the workspace {workspace!r} is not a Terraform workspace name")
    if problems:
        raise AtlantisConfigError("; ".join(problems))
    payload = {
        "Repository": repo,
        "Ref": branch,
        "Type": vcs_type,
        "Paths": [{"Directory": directory, "Workspace": workspace}],
    }
    _check_payload(payload)
    return payload


def _check_payload(payload: dict[str, Any]) -> None:
    """The payload as Atlantis will decode it: the three required strings non-empty, nothing else that matters."""
    decoded = json.loads(_encode(payload))
    missing = [
        key for key in ("Repository", "Ref", "Type") if not isinstance(decoded.get(key), str) or not decoded[key]
    ]
    if missing or "PR" in decoded or not decoded.get("Paths"):
        raise AtlantisConfigError(f"refusing to send an incomplete Atlantis request (missing: {', '.join(missing)})")


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def lock_key(repo: str) -> str:
    """The Redis key of the per-repository lock (cache.lock() builds the same with make_key)."""
    from django.core.cache import cache

    return cache.make_key(_lock_name(repo))


def _lock_name(repo: str) -> str:
    return "atlantis:" + repo


# --- Settings ------------------------------------------------------------------------------------------------------


def _number_setting(name: str, default: float) -> float:
    value = getattr(settings, name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise AtlantisConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _config(command: str) -> _Config:
    url = getattr(settings, "ATLANTIS_URL", "") or ""
    parts = urlsplit(url)
    if not url:
        raise AtlantisConfigError("ATLANTIS_URL is not set (e.g. https://atlantis.example.com)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AtlantisConfigError(f"ATLANTIS_URL must be an http(s) URL with a host name, not {_shown_url(url)!r}")
    if parts.username or parts.password:
        raise AtlantisConfigError("ATLANTIS_URL must not hold credentials: the token goes in ATLANTIS_TOKEN")
    token = getattr(settings, "ATLANTIS_TOKEN", "")
    if not token:
        raise AtlantisConfigError("ATLANTIS_TOKEN is not set (Atlantis's --api-secret)")
    if not isinstance(token, str) or token != token.strip() or any(not " " <= char <= "~" for char in token):
        # Said without showing it: an HTTP header carries visible ASCII only, and edge spaces are stripped.
        raise AtlantisConfigError("ATLANTIS_TOKEN holds characters an HTTP header cannot carry (or edge spaces)")
    timeout_name, timeout_default = (
        ("ATLANTIS_APPLY_TIMEOUT", DEFAULT_APPLY_TIMEOUT)
        if command == "apply"
        else ("ATLANTIS_PLAN_TIMEOUT", DEFAULT_PLAN_TIMEOUT)
    )
    return _Config(
        url=url.rstrip("/"),
        repo=getattr(settings, "ATLANTIS_REPO", ""),
        vcs_type=getattr(settings, "ATLANTIS_VCS_TYPE", "Github"),
        timeout=_number_setting(timeout_name, timeout_default),
        connect_timeout=_number_setting("ATLANTIS_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        lock_wait=_number_setting("ATLANTIS_LOCK_WAIT", DEFAULT_LOCK_WAIT),
        lock_margin=_number_setting("ATLANTIS_LOCK_MARGIN", DEFAULT_LOCK_MARGIN),
    )


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return parts._replace(netloc=parts.hostname or "").geturl()
    return url


def _scrub(text: str) -> str:
    """Defence in depth: no text this module hands out may hold the token, whatever Atlantis or a proxy echoes."""
    token = getattr(settings, "ATLANTIS_TOKEN", "") or ""
    if len(token) >= 6 and token in text:
        return text.replace(token, "[token]")
    return text


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- The calls -------------------------------------------------------------------------------------------------------


def plan(branch: str, directory: str) -> AtlantisResult:
    """Ask Atlantis to plan `directory` on `branch`. Never raises for Atlantis's or the network's failures (see the
    result's `ok` and `message`); raises AtlantisConfigError for settings or arguments Atlantis would refuse."""
    return _call("plan", branch, directory)


def apply(branch: str, directory: str, before_send: Callable[[], None] | None = None) -> AtlantisResult:
    """Ask Atlantis to apply `directory` on `branch` (Atlantis plans it again first, in the same call).

    `before_send` runs once the repository's lock is held, just before the request goes out; whatever it raises
    propagates and nothing is sent (delivery checks there that the branch still holds the planned commit).
    Raises AtlantisOutcomeUnknown when the request was sent but no answer came (timeout, dropped connection): the
    apply may have happened. Raises AtlantisConfigError like plan()."""
    return _call("apply", branch, directory, before_send)


class _NotSent(Exception):
    pass


class _Unanswered(Exception):
    pass


def _call(command: str, branch: str, directory: str, before_send: Callable[[], None] | None = None) -> AtlantisResult:
    config = _config(command)
    payload = build_payload(branch, directory)
    called_at = datetime.now(UTC)
    started = time.monotonic()

    def finish(result: AtlantisResult) -> AtlantisResult:
        result.branch, result.directory, result.called_at = branch, directory, called_at
        result.duration = time.monotonic() - started
        result.message = _scrub(result.message)
        logger.info(
            "atlantis %s repo=%s branch=%s directory=%s status=%s ok=%s sent=%s duration=%.1fs: %s",
            command,
            config.repo,
            branch,
            directory,
            result.http_status,
            result.ok,
            result.sent,
            result.duration,
            result.summary()[:300],
        )
        return result

    def not_sent(message: str, retry_later: bool = False) -> AtlantisResult:
        return finish(
            AtlantisResult(
                command=command, ok=False, http_status=None, message=message, sent=False, retry_later=retry_later
            )
        )

    lock, problem = _acquire_lock(config)
    if lock is None:
        return not_sent(problem, retry_later=True)
    release = True
    try:
        if before_send is not None:
            before_send()
        try:
            status, body = _post(config, command, payload)
        except _NotSent as error:
            return not_sent(str(error))
        except _Unanswered as error:
            # Atlantis may still be working in its shared PR-0 directory: let the lock expire rather than free it.
            release = False
            logger.warning(
                "atlantis %s of %s on %s got no answer (%s); the lock on %s is kept until it expires",
                command,
                directory,
                branch,
                error,
                config.repo,
            )
            if command == "apply":
                duration = time.monotonic() - started
                message = _scrub(
                    f"Atlantis did not answer the apply of {directory} on {branch} ({error}, after {duration:.0f} s): "
                    f"the apply may have happened. Check vCenter and Atlantis's log around {_utc(called_at)} "
                    "before trying again."
                )
                logger.info(
                    "atlantis apply repo=%s branch=%s directory=%s outcome=unknown", config.repo, branch, directory
                )
                raise AtlantisOutcomeUnknown(message, branch=branch, directory=directory, called_at=called_at) from None
            return finish(
                AtlantisResult(
                    command=command,
                    ok=False,
                    http_status=None,
                    message=f"The plan of {directory} on {branch} failed: {error}. Atlantis may still be planning; "
                    f"see its log around {_utc(called_at)}.",
                )
            )
        result = interpret_response(command, status, body, called_at=called_at, branch=branch, directory=directory)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("atlantis %s output for %s:\n%s", command, directory, _scrub(result.output_text()))
        return finish(result)
    finally:
        if release:
            try:
                lock.release()
            except (LockError, RedisError) as error:
                logger.warning("could not release the Atlantis lock for %s: %s", config.repo, error)


def _acquire_lock(config: _Config):
    """(lock, "") when had; (None, why) otherwise. Without Redis there is no call: Atlantis must never see two."""
    from django.core.cache import cache

    if not hasattr(cache, "lock"):
        raise AtlantisConfigError("the default cache must be django-redis: Atlantis calls are serialized by its lock")
    # Longer than the HTTP call can take, so that a crashed worker's lock still covers Atlantis's work.
    ttl = config.timeout + config.connect_timeout + WRITE_TIMEOUT + config.lock_margin
    try:
        lock = cache.lock(_lock_name(config.repo), timeout=ttl, blocking_timeout=config.lock_wait)
        acquired = lock.acquire()
    except (RedisError, OSError) as error:
        logger.error("atlantis: Redis is unavailable for the lock on %s: %s", config.repo, error)
        return None, (
            f"Redis is unavailable ({type(error).__name__}), and vmprov does not call Atlantis without its "
            f"per-repository lock; nothing was sent to Atlantis. Try again once Redis is back."
        )
    if not acquired:
        return None, (
            f"Another Atlantis call for {config.repo} is running (waited {config.lock_wait:.0f} s for it); "
            "nothing was sent to Atlantis. Try again later."
        )
    return lock, ""


@lru_cache(maxsize=1)
def _ssl_context():
    # Built once: loading the CA bundle costs more than a plan request's own overhead. SSL_CERT_FILE/SSL_CERT_DIR
    # are honoured as httpx honours them.
    return httpx.create_ssl_context()


def _post(config: _Config, command: str, payload: dict[str, Any]) -> tuple[int, bytes]:
    timeout = httpx.Timeout(connect=config.connect_timeout, read=config.timeout, write=WRITE_TIMEOUT, pool=5)
    url = f"{config.url}/api/{command}"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    # The token goes straight from the settings into the header of this one request.
    headers[TOKEN_HEADER] = getattr(settings, "ATLANTIS_TOKEN", "")
    try:
        # A fresh client (and connection) per call: a reused keep-alive connection that the server closed would
        # fail like a dropped answer, and an apply would wrongly be reported as of unknown outcome.
        with httpx.Client(timeout=timeout, follow_redirects=False, verify=_ssl_context()) as client:
            response = client.post(url, content=_encode(payload), headers=headers)
            return response.status_code, response.content
    except httpx.LocalProtocolError as error:
        raise _NotSent(f"the request to Atlantis could not be built ({error}); nothing was sent") from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as error:
        raise _NotSent(
            f"Atlantis at {_shown_url(config.url)} is unreachable ({type(error).__name__}: {error}); nothing was sent."
        ) from None
    except httpx.ProxyError as error:
        raise _NotSent(f"the proxy to Atlantis at {_shown_url(config.url)} refused the connection: {error}") from None
    except httpx.ReadTimeout:
        raise _Unanswered(f"no answer within {config.timeout:.0f} s (timed out)") from None
    except httpx.WriteTimeout:
        raise _Unanswered("timed out while sending the request") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as error:
        raise _Unanswered(
            f"the connection dropped before Atlantis answered ({type(error).__name__}: {error})"
        ) from None
    except httpx.TransportError as error:
        raise _Unanswered(f"the request failed after it was sent ({type(error).__name__}: {error})") from None


# --- Reading the answer ------------------------------------------------------------------------------------------


def interpret_response(
    command: str,
    status: int,
    body: bytes,
    *,
    called_at: datetime,
    branch: str = "",
    directory: str = "",
) -> AtlantisResult:
    """An AtlantisResult from Atlantis's HTTP status and body (any version from v0.19.8 on)."""
    what = f"{command} of {directory} on {branch}" if directory else command
    try:
        document = json.loads(body.decode("utf-8", errors="replace")) if body.strip() else None
    except json.JSONDecodeError:
        document = None

    if isinstance(document, dict) and "error" in document and "ProjectResults" not in document:
        return AtlantisResult(
            command=command,
            ok=False,
            http_status=status,
            message=f"Atlantis refused the {what}: {_error_body_message(status, str(document['error']))}",
        )
    if not isinstance(document, dict):
        shown = body[:200].decode("utf-8", errors="replace").strip()
        return AtlantisResult(
            command=command,
            ok=False,
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
    failed = [project for project in projects if not project.ok]
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
            ok=False,
            http_status=status,
            projects=projects,
            message=f"The {what} failed (HTTP {status}): " + "; ".join(problems),
        )
    result = AtlantisResult(command=command, ok=True, http_status=status, projects=projects, message="")
    result.message = f"The {what} succeeded: {result.summary()}"
    return result


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
    see_log = f"see its log at {_utc(called_at)}"
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
        ok=not problems,
        output=_scrub(output),
        failure=_scrub("; ".join(problems)),
        command=project_command,
    )
