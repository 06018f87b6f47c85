"""Atlantis's settings, read and checked once: `AtlantisConfig`, `settings_problems()`, `AtlantisConfigError`.

Settings: ATLANTIS_URL, ATLANTIS_TOKEN, ATLANTIS_REPO, ATLANTIS_VCS_TYPE, ATLANTIS_PLAN_TIMEOUT, ATLANTIS_APPLY_TIMEOUT,
ATLANTIS_CONNECT_TIMEOUT, ATLANTIS_LOCK_WAIT, ATLANTIS_LOCK_MARGIN, ATLANTIS_REF_MODE.

- ATLANTIS_REF_MODE says what `Ref` names: "branch" (the request's branch; every version) or "commit" (the commit
  vmprov pushed, with the branch as `base_branch`; Atlantis v0.46 and newer resolve it and check that it is on the
  branch). With "commit" Atlantis plans and applies exactly vmprov's commit, whatever else the branch receives.

- No ATLANTIS_URL means Atlantis is not configured. That is a legitimate state (a demo, an instance that only collects
  requests): `settings_problems()` has nothing to say about it, and plan/apply raise AtlantisConfigError.
- Otherwise every setting must make requests Atlantis accepts, and `settings_problems()` lists what does not (a Django
  system check reports it at start-up). Calls then rely on the checked config instead of checking again.
- The config is built on first use and cached; Django's `setting_changed` signal (override_settings, pytest-django's
  `settings` fixture) clears the cache.
- The token is Atlantis's `--api-secret` (`ATLANTIS_API_SECRET`): without one on the server its API is disabled. It is
  kept only on the cached config, hidden from its repr, and `AtlantisConfig.scrub()` takes it out of any text vmprov
  hands out, whatever Atlantis or a proxy echoes.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Exactly as Atlantis spells them (Gitea from v0.28).
VCS_TYPES = ("Github", "Gitlab", "Gitea")
# Valid for Atlantis's parser, but its API answers "not yet implemented" for them.
UNSUPPORTED_VCS_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")

DEFAULT_PLAN_TIMEOUT = 900
# An apply is one synchronous HTTP call in which Atlantis plans again first: a clone with guest customization can
# take tens of minutes.
DEFAULT_APPLY_TIMEOUT = 3600
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_LOCK_WAIT = 120
DEFAULT_LOCK_MARGIN = 60
REF_MODES = ("branch", "commit")


class AtlantisConfigError(Exception):
    """Atlantis is not configured or misconfigured, or a request names a branch or directory Atlantis would refuse.
    Raised before any HTTP call; the message never holds the token."""


@dataclass(frozen=True)
class AtlantisConfig:
    """The checked ATLANTIS_* settings. `url` has no trailing slash and never holds credentials."""

    url: str
    token: str = field(repr=False)
    repo: str
    vcs_type: str
    plan_timeout: float
    apply_timeout: float
    connect_timeout: float
    lock_wait: float
    lock_margin: float
    ref_mode: str = "branch"

    def timeout(self, command: str) -> float:
        """How long to wait for Atlantis's answer to `command` ("plan" or "apply")."""
        return self.apply_timeout if command == "apply" else self.plan_timeout

    def scrub(self, text: str) -> str:
        """`text` without the token: defence in depth for every message, output and log line."""
        if len(self.token) >= 6 and self.token in text:
            return text.replace(self.token, "[token]")
        return text


def current_config() -> AtlantisConfig:
    """The checked configuration. Raises AtlantisConfigError when Atlantis is not configured or misconfigured."""
    reading = _read_settings()
    if reading.problems:
        raise AtlantisConfigError("; ".join(reading.problems))
    if reading.config is None:
        raise AtlantisConfigError("ATLANTIS_URL is not set (e.g. https://atlantis.example.com)")
    return reading.config


def settings_problems() -> list[str]:
    """What is wrong with the ATLANTIS_* settings, one sentence each; [] when they are fine or Atlantis is not
    configured at all (no ATLANTIS_URL). Never raises."""
    return list(_read_settings().problems)


@dataclass(frozen=True)
class _Reading:
    config: AtlantisConfig | None
    problems: tuple[str, ...]


@functools.cache
def _read_settings() -> _Reading:
    url = getattr(settings, "ATLANTIS_URL", "") or ""
    if not url:
        return _Reading(config=None, problems=())
    problems = []
    if problem := _url_problem(url):
        problems.append(problem)
    token = getattr(settings, "ATLANTIS_TOKEN", "")
    if problem := _token_problem(token):
        problems.append(problem)
    repo = getattr(settings, "ATLANTIS_REPO", "")
    if problem := _repository_problem(repo):
        problems.append(f"ATLANTIS_REPO {problem}")
    vcs_type = getattr(settings, "ATLANTIS_VCS_TYPE", "Github")
    if problem := _vcs_type_problem(vcs_type):
        problems.append(f"ATLANTIS_VCS_TYPE {problem}")
    ref_mode = getattr(settings, "ATLANTIS_REF_MODE", "branch")
    if ref_mode not in REF_MODES:
        problems.append(f"ATLANTIS_REF_MODE must be 'branch' or 'commit' (Atlantis v0.46+), not {ref_mode!r}")
    seconds = {}
    for name, default in (
        ("ATLANTIS_PLAN_TIMEOUT", DEFAULT_PLAN_TIMEOUT),
        ("ATLANTIS_APPLY_TIMEOUT", DEFAULT_APPLY_TIMEOUT),
        ("ATLANTIS_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        ("ATLANTIS_LOCK_WAIT", DEFAULT_LOCK_WAIT),
        ("ATLANTIS_LOCK_MARGIN", DEFAULT_LOCK_MARGIN),
    ):
        value = getattr(settings, name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"{name} must be a positive number of seconds, not {value!r}")
        else:
            seconds[name] = float(value)
    if problems:
        return _Reading(config=None, problems=tuple(problems))
    config = AtlantisConfig(
        url=url.rstrip("/"),
        token=token,
        repo=repo,
        vcs_type=vcs_type,
        plan_timeout=seconds["ATLANTIS_PLAN_TIMEOUT"],
        apply_timeout=seconds["ATLANTIS_APPLY_TIMEOUT"],
        connect_timeout=seconds["ATLANTIS_CONNECT_TIMEOUT"],
        lock_wait=seconds["ATLANTIS_LOCK_WAIT"],
        lock_margin=seconds["ATLANTIS_LOCK_MARGIN"],
        ref_mode=ref_mode,
    )
    return _Reading(config=config, problems=())


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ATLANTIS_"):
        _read_settings.cache_clear()


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return f"ATLANTIS_URL must be a string, not {type(url).__name__}"
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "ATLANTIS_URL must not hold credentials: the token goes in ATLANTIS_TOKEN"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Shown without anything up to an '@': whatever precedes one may be a password.
        return f"ATLANTIS_URL must be an http(s) URL with a host name, not {url.rsplit('@', 1)[-1]!r}"
    return None


def _token_problem(token: Any) -> str | None:
    if not token:
        return "ATLANTIS_TOKEN is not set (Atlantis's --api-secret)"
    if not isinstance(token, str) or token != token.strip() or any(not " " <= char <= "~" for char in token):
        # Said without showing it: an HTTP header carries visible ASCII only, and edge spaces are stripped.
        return "ATLANTIS_TOKEN holds characters an HTTP header cannot carry (or edge spaces)"
    return None


def _repository_problem(repo: Any) -> str | None:
    """Atlantis's `Repository` is owner/repo (GitLab: the full group path); a name without '/' crashes its GitHub
    lookups with a 500."""
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
    """Atlantis reads `Type` case-sensitively: "github" is "not a valid type"."""
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
