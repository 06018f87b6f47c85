"""System checks: vmprov's delivery settings are checked once, when a process starts (`manage.py check`, which
`scripts/run` runs before anything else; gunicorn itself runs no checks), not on a user's submit.

Each owner module says what is wrong with its own settings (`settings_problems()`); this module turns that into
Django check messages with stable ids:

- vmprov.E002 Git (VMPROV_GITOPS_*, VMPROV_GIT_*)
- vmprov.E003 Atlantis (ATLANTIS_*)
- vmprov.E004 Terraform backend and values file (VMPROV_TF_BACKEND*, VMPROV_TFVARS_FILE)
- vmprov.E005 request limits, auto-approval and ready checks (VMPROV_MIN_*/MAX_*, VMPROV_AUTO_APPROVE_*, ...)
- vmprov.E006 SECRET_KEY (the settings leave it empty when unset, so that `--help` works without it)

vmprov.E001 (vSphere) is the inventory app's.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from provisioning import atlantis, gitops
from provisioning.terraform import settings as rendering


def _errors(check_id: str, problems: list[str], hint: str) -> list[Error]:
    return [Error(problem, hint=hint, id=check_id) for problem in problems]


@register(Tags.compatibility)
def git_settings(app_configs=None, **kwargs) -> list[Error]:
    return _errors("vmprov.E002", gitops.settings_problems(), "See README: Connecting a real Git repository.")


@register(Tags.compatibility)
def atlantis_settings(app_configs=None, **kwargs) -> list[Error]:
    return _errors("vmprov.E003", atlantis.settings_problems(), "See README: Connecting Atlantis.")


@register(Tags.compatibility)
def terraform_settings(app_configs=None, **kwargs) -> list[Error]:
    return _errors("vmprov.E004", rendering.settings_problems(), "See README: the state backend settings.")


def limit_problems() -> list[str]:
    problems = []
    for field, (low, high) in settings.VMPROV_LIMITS.items():
        if low < 1 or high < low:
            problems.append(f"the {field} bounds ({low}, {high}) must be positive, the minimum not above the maximum")
    for field, limit in (settings.VMPROV_AUTO_APPROVE or {}).items():
        if limit < settings.VMPROV_LIMITS[field][0]:
            problems.append(f"the auto-approval limit for {field} ({limit}) is below the form's minimum")
    for name in ("VMPROV_READY_CHECKS", "VMPROV_READY_CHECK_SECONDS"):
        if getattr(settings, name) < 1:
            problems.append(f"{name} must be at least 1")
    return problems


@register(Tags.compatibility)
def limit_settings(app_configs=None, **kwargs) -> list[Error]:
    return _errors("vmprov.E005", limit_problems(), "See README: Configuration.")


@register(Tags.security)
def secret_key_setting(app_configs=None, **kwargs) -> list[Error]:
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django's answer to an empty key
        secret_key = ""
    if secret_key:
        return []
    hint = "Set SECRET_KEY or SECRET_KEY_FILE (the web server and the workers must share it), or DEBUG=true locally."
    return [Error("SECRET_KEY is not set", hint=hint, id="vmprov.E006")]
