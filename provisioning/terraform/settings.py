"""How vmprov renders, read from Django settings once, and what it decides: the backend block with its per-VM key.

Settings: `VMPROV_TF_BACKEND` (backend type, default pg), `VMPROV_TF_BACKEND_CONFIG` (its non-secret settings, a
dict or JSON text), `VMPROV_TFVARS_FILE` (the values file name) and `VMPROV_HOT_ADD` (new VMs get CPU and memory
hot add, default true). `settings_problems()` lists what is wrong with
them without raising, for the start-up system check; `render_settings()` builds `RenderSettings` from them once
(a test's `override_settings` clears it through Django's `setting_changed` signal).

The backend block's state key is the one part of the committed `.tf` files that differs per request (Terraform
cannot take it from a variable). It is built from the datacenter id and the VM name reduced to `[a-z0-9-]` (see
`state_name()`), so no user text reaches it unfiltered. A directory vmprov did not render gets its key from its path
in the repository instead (`directory_state_name()`), for `ensure_config_structure`.

Outside Django (the `vmprov-ensure-config-structure` script) the same three names are read from the environment by
`RenderSettings.from_environment()`; nothing here needs Django settings unless asked to read them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from provisioning.terraform.hcl import hcl_string, hcl_value, is_identifier
from provisioning.terraform.spec import MachineSpec

DEFAULT_BACKEND = "pg"
DEFAULT_TFVARS_FILE = "terraform.tfvars"
# The one values file name that Atlantis must pass with -var-file (Terraform does not load it by itself).
MACHINE_INPUTS_TFVARS_FILE = "machine_inputs.tfvars"
SETTING_NAMES = frozenset({"VMPROV_TF_BACKEND", "VMPROV_TF_BACKEND_CONFIG", "VMPROV_TFVARS_FILE", "VMPROV_HOT_ADD"})

# Backend type -> the attributes that must differ per VM (the first is the state key proper). For http the lock
# URLs, when configured, must follow the state URL, or every VM would share one lock.
PER_STATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "pg": ("schema_name",),
    "s3": ("key",),
    "azurerm": ("key",),
    "gcs": ("prefix",),
    "consul": ("path",),
    "local": ("path",),
    "http": ("address", "lock_address", "unlock_address"),
}
STATE_PLACEHOLDER = "{state}"
# Used when VMPROV_TF_BACKEND_CONFIG does not set the state key attribute. http has no sensible default URL.
_DEFAULT_STATE_KEYS = {
    "pg": "vmprov_{state}",
    "s3": "vmprov/{state}.tfstate",
    "azurerm": "vmprov/{state}.tfstate",
    "gcs": "vmprov/{state}",
    "consul": "vmprov/{state}",
    "local": "{state}.tfstate",
}
# The rendered files are committed to a Git repository: credentials must come from the backend's own environment
# variables (PG_CONN_STR, AWS_SECRET_ACCESS_KEY, ARM_ACCESS_KEY, CONSUL_HTTP_TOKEN, TF_HTTP_PASSWORD, ...).
SECRET_BACKEND_SETTINGS = frozenset(
    {
        "conn_str",
        "password",
        "access_key",
        "secret_key",
        "token",
        "access_token",
        "sas_token",
        "client_secret",
        "client_certificate_password",
        "credentials",
        "encryption_key",
        "ca_file",
        "cert_file",
        "key_file",
        "client_private_key_pem",
    }
)
# PostgreSQL silently truncates identifiers to 63 bytes, which would make two long schema names share a state.
_PG_IDENTIFIER_BYTES = 63

_TFVARS_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.tfvars")
_STATE_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class RenderSettings:
    """How vmprov renders: the state backend (type and non-secret settings) and the values file name."""

    backend: str = DEFAULT_BACKEND
    # Non-secret backend settings, e.g. {"bucket": "tfstate", "region": "eu-west-1"} for s3. Setting the state key
    # attribute (pg schema_name, s3 key, http address, ...) gives a pattern: "{state}" is replaced by the VM's
    # state name; without "{state}" the value is a prefix the state name is appended to.
    backend_config: Mapping[str, Any] = field(default_factory=dict)
    tfvars_file: str = DEFAULT_TFVARS_FILE
    # New VMs get CPU and memory hot add, so that a later resize can grow them without restarting the guest.
    hot_add: bool = True

    def __post_init__(self) -> None:
        problems = _render_settings_problems(self.backend, self.backend_config, self.tfvars_file)
        if problems:
            raise ImproperlyConfigured("; ".join(problems))

    @classmethod
    def from_django(cls) -> RenderSettings:
        """Read VMPROV_TF_BACKEND, VMPROV_TF_BACKEND_CONFIG (JSON text or a dict) and VMPROV_TFVARS_FILE."""
        return cls(
            backend=_configured_backend(),
            backend_config=_configured_backend_config(),
            tfvars_file=configured_tfvars_file(),
            hot_add=bool(getattr(django_settings, "VMPROV_HOT_ADD", True)),
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> RenderSettings:
        """Read the environment variables vmprov's Django settings are made from, with the same defaults."""
        return cls(
            backend=environ.get("VMPROV_TF_BACKEND") or DEFAULT_BACKEND,
            backend_config=parse_backend_config(environ.get("VMPROV_TF_BACKEND_CONFIG") or "{}"),
            tfvars_file=environ.get("VMPROV_TFVARS_FILE") or DEFAULT_TFVARS_FILE,
        )


def _render_settings_problems(backend: Any, backend_config: Any, tfvars_file: Any) -> list[str]:
    """Everything wrong with these rendering settings, in the words of the Django settings that hold them."""
    problems = []
    known_backend = isinstance(backend, str) and backend in PER_STATE_ATTRIBUTES
    if not known_backend:
        problems.append(f"VMPROV_TF_BACKEND {backend!r} is not one of {', '.join(sorted(PER_STATE_ATTRIBUTES))}")
    if not isinstance(tfvars_file, str) or not _TFVARS_FILE_NAME.fullmatch(tfvars_file):
        problems.append(f"VMPROV_TFVARS_FILE {tfvars_file!r} must be a plain file name ending in .tfvars")
    if not isinstance(backend_config, Mapping):
        problems.append("VMPROV_TF_BACKEND_CONFIG must be a JSON object")
        return problems
    for name, value in backend_config.items():
        if not is_identifier(name):
            problems.append(f"VMPROV_TF_BACKEND_CONFIG: {name!r} is not a backend setting name")
        elif name in SECRET_BACKEND_SETTINGS:
            problems.append(
                f"VMPROV_TF_BACKEND_CONFIG must not hold {name!r}: rendered files are committed to Git; "
                "give secrets to Atlantis through the backend's environment variables"
            )
        elif not _is_backend_value(value):
            problems.append(
                f"VMPROV_TF_BACKEND_CONFIG: {name} must be a string, number, true/false or a list of strings"
            )
    if not known_backend:
        return problems
    state_attributes = PER_STATE_ATTRIBUTES[backend]
    for name in state_attributes:
        if name in backend_config and not isinstance(backend_config[name], str):
            problems.append(f"VMPROV_TF_BACKEND_CONFIG: {name} must be a string")
    if backend not in _DEFAULT_STATE_KEYS and state_attributes[0] not in backend_config:
        problems.append(f"the {backend} backend needs {state_attributes[0]} in VMPROV_TF_BACKEND_CONFIG")
    return problems


def _is_backend_value(value: Any) -> bool:
    if isinstance(value, str | bool | int):
        return True
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# --- Reading Django settings ------------------------------------------------------------------------------------


def _configured_backend() -> Any:
    """VMPROV_TF_BACKEND as set (default pg), not yet checked."""
    return getattr(django_settings, "VMPROV_TF_BACKEND", None) or DEFAULT_BACKEND


def parse_backend_config(text: str) -> Any:
    """VMPROV_TF_BACKEND_CONFIG's JSON text as Python data, not yet checked otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"VMPROV_TF_BACKEND_CONFIG is not valid JSON: {error}") from None


def _configured_backend_config() -> Any:
    """VMPROV_TF_BACKEND_CONFIG as Python data, JSON text decoded, not yet checked otherwise."""
    config = getattr(django_settings, "VMPROV_TF_BACKEND_CONFIG", None) or {}
    return parse_backend_config(config) if isinstance(config, str) else config


def configured_tfvars_file() -> str:
    """The values file name from VMPROV_TFVARS_FILE (default terraform.tfvars)."""
    return getattr(django_settings, "VMPROV_TFVARS_FILE", None) or DEFAULT_TFVARS_FILE


def settings_problems() -> list[str]:
    """What is wrong with the rendering settings (empty when nothing); never raises. For the system check."""
    problems = []
    try:
        config = _configured_backend_config()
    except ImproperlyConfigured as error:
        problems.append(str(error))
        config = {}
    return problems + _render_settings_problems(_configured_backend(), config, configured_tfvars_file())


@lru_cache(maxsize=1)
def render_settings() -> RenderSettings:
    """The rendering settings from Django settings, read and checked once per process."""
    return RenderSettings.from_django()


@receiver(setting_changed)
def _forget_render_settings(*, setting: str, **kwargs: Any) -> None:
    # Django settings are fixed in production; only tests change them (override_settings sends this signal).
    if setting in SETTING_NAMES:
        render_settings.cache_clear()


# --- State key --------------------------------------------------------------------------------------------------


def _state_part(value: str) -> str:
    """`value` reduced to [a-z0-9-]. Anything changed on the way gets a short hash, so two different inputs
    cannot end up with the same state (e.g. `Web.01` and `web-01`)."""
    cleaned = _STATE_UNSAFE.sub("-", value.lower()).strip("-") or "x"
    if cleaned != value:
        cleaned = f"{cleaned}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return cleaned


def state_name(spec: MachineSpec) -> str:
    """The VM's state name, `<datacenter id>_<vm name>`: only [a-z0-9_-], and `_` occurs once, between the two."""
    return f"{_state_part(spec.datacenter_id)}_{_state_part(spec.vm_name)}"


def directory_state_name(relative_path: PurePosixPath) -> str:
    """The state name of a directory vmprov did not render, from its path below the repository root: each part
    reduced to [a-z0-9-], joined by `__` (`vms/dc1/web01` -> `vms__dc1__web01`). A request's state name holds one
    single `_`, so the two kinds never share a state."""
    parts = [part for part in relative_path.parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"{relative_path} is not a path below the repository root")
    return "__".join(_state_part(part) for part in parts)


def _per_state_value(pattern: str, name: str, backend: str) -> str:
    if STATE_PLACEHOLDER in pattern:
        # str.replace, not str.format: the pattern is configuration and may hold other braces.
        value = pattern.replace(STATE_PLACEHOLDER, name)
    elif backend == "pg":
        value = f"{pattern}_{name}" if pattern else name
    else:
        value = f"{pattern.rstrip('/')}/{name}"
    if backend == "pg" and len(value.encode()) > _PG_IDENTIFIER_BYTES:
        digest = hashlib.sha256(value.encode()).hexdigest()[:10]
        value = value.encode()[: _PG_IDENTIFIER_BYTES - len(digest) - 1].decode(errors="ignore") + "-" + digest
    return value


def backend_attributes(spec: MachineSpec, settings: RenderSettings) -> list[tuple[str, str]]:
    """The backend block's attributes as (name, HCL literal): the per-VM key(s) first, then the configured rest."""
    return state_backend_attributes(state_name(spec), settings)


def state_backend_attributes(name: str, settings: RenderSettings) -> list[tuple[str, str]]:
    """The backend block's attributes for the state called `name`: its key(s) first, then the configured rest."""
    config = dict(settings.backend_config)
    attributes = []
    for index, attribute in enumerate(PER_STATE_ATTRIBUTES[settings.backend]):
        pattern = config.pop(attribute, None)
        if pattern is None:
            if index > 0:
                continue  # optional extras (http lock URLs) only when configured
            pattern = _DEFAULT_STATE_KEYS[settings.backend]
        attributes.append((attribute, hcl_string(_per_state_value(pattern, name, settings.backend))))
    attributes.extend((key, hcl_value(config[key])) for key in sorted(config))
    return attributes
