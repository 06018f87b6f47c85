"""The two calls vmprov makes to Atlantis, `plan()` and `apply()`, and what one call goes through.

A call: the checked config, the request body, the repository's lock (provisioning.atlantis.lock), `before_send`, one
POST (provisioning.atlantis.transport), then the answer read into an AtlantisResult (provisioning.atlantis.response).
Failures of Atlantis or of the network never raise: they are the result's Outcome. Only AtlantisConfigError is
raised (Atlantis not configured, or a branch or directory it would refuse), before anything is sent.

When the request went out and no answer came back, the result is UNANSWERED and the lock is left to expire: Atlantis
may still be working in its shared directory. For an apply that means the apply may have happened; it is never
retried blindly.

Every result leaves here with the token scrubbed from its message and outputs, and each call is logged at INFO
without its output (the output only at DEBUG).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from provisioning.atlantis import transport
from provisioning.atlantis.config import AtlantisConfig, current_config
from provisioning.atlantis.lock import RepositoryBusy, repository_lock
from provisioning.atlantis.payload import build_payload, encode
from provisioning.atlantis.response import interpret_response, utc_text
from provisioning.atlantis.result import AtlantisResult, Outcome

logger = logging.getLogger(__name__)


Hook = Callable[[], None]


def plan(
    branch: str, directory: str, *, commit: str = "", before_send: Hook | None = None, after_answer: Hook | None = None
) -> AtlantisResult:
    """Ask Atlantis to plan `directory` on `branch` (at `commit` when ATLANTIS_REF_MODE is "commit").

    `before_send` runs once the repository's lock is held, just before the request goes out; whatever it raises
    propagates and nothing is sent. `after_answer` runs under the same lock once the call is over (answered or not).
    Delivery checks the branch in both: Atlantis works from whatever the branch holds. Raises AtlantisConfigError
    only (see the module's docstring)."""
    return _call("plan", branch, directory, commit, before_send, after_answer)


def apply(
    branch: str, directory: str, *, commit: str = "", before_send: Hook | None = None, after_answer: Hook | None = None
) -> AtlantisResult:
    """Ask Atlantis to apply `directory` on `branch`; Atlantis plans it again first, in the same call. The hooks are
    plan()'s. An UNANSWERED result means the apply may have happened: check before trying again. Raises
    AtlantisConfigError like plan()."""
    return _call("apply", branch, directory, commit, before_send, after_answer)


def _call(
    command: str,
    branch: str,
    directory: str,
    commit: str,
    before_send: Hook | None,
    after_answer: Hook | None,
) -> AtlantisResult:
    config = current_config()
    body = encode(build_payload(config, branch, directory, commit))
    called_at = datetime.now(UTC)
    started = time.monotonic()
    try:
        with repository_lock(config, transport.longest_call(config, command)) as lock:
            if before_send is not None:
                before_send()
            try:
                status, answer = transport.post(config, command, body)
            except transport.NotSent as error:
                result = AtlantisResult(command=command, outcome=Outcome.NOT_SENT, message=str(error))
            except transport.Unanswered as error:
                lock.leave_to_expire()
                logger.warning(
                    "atlantis %s of %s on %s got no answer (%s); the lock on %s is kept until it expires",
                    command,
                    directory,
                    branch,
                    config.scrub(str(error)),
                    config.repo,
                )
                result = _unanswered(command, branch, directory, str(error), called_at, time.monotonic() - started)
            else:
                result = interpret_response(
                    command, status, answer, called_at=called_at, branch=branch, directory=directory
                )
            if after_answer is not None:
                after_answer()
    except RepositoryBusy as busy:
        result = AtlantisResult(command=command, outcome=Outcome.BUSY, message=str(busy))
    result.branch, result.directory, result.called_at = branch, directory, called_at
    result.duration = time.monotonic() - started
    _scrub(result, config)
    logger.info(
        "atlantis %s repo=%s branch=%s directory=%s status=%s outcome=%s duration=%.1fs: %s",
        command,
        config.repo,
        branch,
        directory,
        result.http_status,
        result.outcome.value,
        result.duration,
        result.summary()[:300],
    )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("atlantis %s output for %s:\n%s", command, directory, result.output_text())
    return result


def _unanswered(
    command: str, branch: str, directory: str, error: str, called_at: datetime, waited: float
) -> AtlantisResult:
    if command == "apply":
        message = (
            f"Atlantis did not answer the apply of {directory} on {branch} ({error}, after {waited:.0f} s): the apply "
            f"may have happened. Check vCenter and Atlantis's log around {utc_text(called_at)} before trying again."
        )
    else:
        message = (
            f"Atlantis did not answer the plan of {directory} on {branch} ({error}, after {waited:.0f} s); it may "
            f"still be planning: see its log around {utc_text(called_at)}."
        )
    return AtlantisResult(command=command, outcome=Outcome.UNANSWERED, message=message)


def _scrub(result: AtlantisResult, config: AtlantisConfig) -> None:
    """Whatever Atlantis or a proxy echoed, no text of the result holds the token."""
    result.message = config.scrub(result.message)
    result.projects = [
        dataclasses.replace(project, output=config.scrub(project.output), failure=config.scrub(project.failure))
        for project in result.projects
    ]
