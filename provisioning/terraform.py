"""Terraform rendering: the one place that turns a VM request into Terraform files.

This module owns the plain description of a request (`MachineSpec`, with its `TemplateSpec`), the rendering
settings (`RenderSettings`, read from Django settings), the HCL escaping of values (`hcl_string` and the small
helpers built on it), the per-VM state key, and the Jinja templates in `terraform_templates/`.

Rules it keeps:
- User input reaches Terraform only through the values file (`terraform.tfvars`, or `machine_inputs.tfvars` when
  Atlantis passes `-var-file`), and only as literals made by `hcl_value()`/`hcl_string()`. `providers.tf`,
  `variables.tf` and `machine.tf` are the same for every request, with one exception: the backend block's state
  key, which Terraform cannot take from a variable. That key is built from the datacenter id and the VM name
  reduced to `[a-z0-9-]` (see `state_name()`), so no user text reaches it unfiltered.
- The output is byte for byte what `terraform fmt` writes (the tests run the real `terraform fmt -check`).
- It never imports models: callers build a `MachineSpec` from whatever they store.

Templates: the `*.j2` files are the sources. `providers.tf.template` and `variables.tf.template` (which
`provisioning.structure` copies into directories that lack them) are those renders without the per-request part,
i.e. without the backend block; tests fail when they drift, and `UPDATE_GOLDEN=1` rewrites them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "terraform_templates"

PROVIDER_SOURCE = "hashicorp/vsphere"
PROVIDER_VERSION = "~> 2.4.0"
REQUIRED_TERRAFORM_VERSION = ">= 1.0.0"

DEFAULT_BACKEND = "pg"
DEFAULT_TFVARS_FILE = "terraform.tfvars"
# The one values file name that Atlantis must pass with -var-file (Terraform does not load it by itself).
MACHINE_INPUTS_TFVARS_FILE = "machine_inputs.tfvars"

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

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TFVARS_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.tfvars")
_STATE_UNSAFE = re.compile(r"[^a-z0-9-]+")
# The vsphere provider manages 1 to 4 SCSI controllers and numbers disks across them, 15 per controller (the
# controller's own SCSI slot is already left out of the count): unit_number 0 to 15 * scsi_controller_count - 1.
MAX_SCSI_CONTROLLERS = 4
DISKS_PER_SCSI_CONTROLLER = 15


class InvalidMachineSpec(ValueError):
    """A MachineSpec that cannot become a valid clone; `problems` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --- HCL literals -----------------------------------------------------------------------------------------------

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control and format characters (incl. bidi overrides, zero-width characters, line/paragraph separators) are
# written as \u escapes: Terraform reads back the same character, and the file shows no invisible text.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def hcl_string(value: str) -> str:
    """Quote `value` as an HCL string literal that Terraform reads back unchanged.

    Escapes backslash, double quote, newline, CR, tab and other control/format characters, and doubles the `$`
    or `%` of `${` and `%{` so that no template interpolation or directive can start inside the value.
    """
    if not isinstance(value, str):
        raise TypeError(f"hcl_string takes a str, not {type(value).__name__}")
    out = ['"']
    for index, char in enumerate(value):
        if char in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[char])
        elif char in "$%" and value.startswith("{", index + 1):
            out.append(char * 2)
        else:
            category = unicodedata.category(char)
            if category == "Cs":
                raise ValueError(f"lone surrogate U+{ord(char):04X} at position {index} cannot be written to HCL")
            if category in _ESCAPED_CATEGORIES:
                code = ord(char)
                out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
            else:
                out.append(char)
    out.append('"')
    return "".join(out)


def hcl_number(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"hcl_number takes an int, not {type(value).__name__}")
    return str(value)


def hcl_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"hcl_bool takes a bool, not {type(value).__name__}")
    return "true" if value else "false"


def hcl_list(values: Sequence[Any]) -> str:
    """A one-line HCL tuple, each element through hcl_value()."""
    return "[" + ", ".join(hcl_value(value) for value in values) + "]"


def hcl_object(values: Mapping[str, Any]) -> str:
    """A one-line HCL object (`{ a = 1, b = "x" }`, as terraform fmt keeps it), values through hcl_value()."""
    if not values:
        return "{}"
    for key in values:
        if not isinstance(key, str) or not _IDENTIFIER.fullmatch(key):
            raise ValueError(f"object key {key!r} is not an HCL identifier")
    return "{ " + ", ".join(f"{key} = {hcl_value(value)}" for key, value in values.items()) + " }"


def hcl_value(value: Any) -> str:
    """Any supported Python value as an HCL literal; strings always go through hcl_string()."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, bool):
        return hcl_bool(value)
    if isinstance(value, int):
        return hcl_number(value)
    if isinstance(value, Mapping):
        return hcl_object(value)
    if isinstance(value, list | tuple):
        return hcl_list(value)
    raise TypeError(f"no HCL literal for {type(value).__name__}")


def aligned_attributes(attributes: Sequence[tuple[str, str]]) -> list[str]:
    """`name = literal` lines with the `=` aligned, as terraform fmt aligns consecutive one-line attributes."""
    for name, literal in attributes:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"attribute name {name!r} is not an HCL identifier")
        if "\n" in literal:
            raise ValueError(f"attribute {name} must be a one-line literal")
    width = max((len(name) for name, _ in attributes), default=0)
    return [f"{name.ljust(width)} = {literal}" for name, literal in attributes]


# --- What a request needs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateDisk:
    """One disk of the template, as the inventory reports it. `unit_number` is the vsphere provider's bus-wide
    number (bus * 15 + unit, the controller's slot skipped), not vSphere's per-controller one."""

    label: str
    size_gb: int
    thin: bool = True
    eagerly_scrub: bool = False
    unit_number: int | None = None


@dataclass(frozen=True)
class TemplateSpec:
    """The template to clone: what the clone must copy from it."""

    uuid: str
    guest_id: str
    scsi_type: str
    firmware: str
    nic_types: tuple[str, ...]
    disks: tuple[TemplateDisk, ...]
    # SCSI controllers the clone manages: the highest bus with a template disk + 1 (the inventory's count).
    scsi_controller_count: int = 1

    def __post_init__(self) -> None:
        # Accept lists and dicts (the inventory's JSON shape) but keep the spec immutable.
        object.__setattr__(self, "nic_types", tuple(self.nic_types))
        disks = tuple(disk if isinstance(disk, TemplateDisk) else TemplateDisk(**disk) for disk in self.disks)
        object.__setattr__(self, "disks", disks)

    @classmethod
    def from_inventory(cls, template: Mapping[str, Any]) -> TemplateSpec:
        """From the inventory cache's template entry (`uuid`, `guest_id`, `scsi_type`, `firmware`, ...)."""
        # Missing fields become empty strings, which spec_problems() then names. Entries cached before
        # scsi_controller_count existed had every disk numbered as if on one controller.
        return cls(
            uuid=template.get("uuid") or "",
            guest_id=template.get("guest_id") or "",
            scsi_type=template.get("scsi_type") or "",
            firmware=template.get("firmware") or "bios",
            nic_types=tuple(template.get("nic_types") or ()),
            disks=tuple(
                TemplateDisk(
                    label=disk["label"],
                    size_gb=disk["size_gb"],
                    thin=bool(disk.get("thin", True)),
                    eagerly_scrub=bool(disk.get("eagerly_scrub", False)),
                    unit_number=disk.get("unit_number"),
                )
                for disk in template.get("disks") or ()
            ),
            scsi_controller_count=template.get("scsi_controller_count", 1),
        )


@dataclass(frozen=True)
class MachineSpec:
    """Everything one VM request needs, as plain data. Empty network settings mean DHCP."""

    vm_name: str
    datacenter_id: str
    datacenter_name: str
    cluster_id: str
    cluster_name: str
    resource_pool_id: str
    datastore_id: str
    network_id: str
    # Relative to the datacenter's vm folder, "" for its root, with `/` inside a name escaped as %2f.
    folder: str
    template: TemplateSpec
    num_cpus: int
    memory_mb: int
    # Size of the first disk; the template's other disks keep their size.
    disk_size_gb: int
    domain: str
    ipv4_address: str = ""
    ipv4_prefix: int | None = None
    ipv4_gateway: str = ""
    dns_servers: tuple[str, ...] = ()
    annotation: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.template, Mapping):
            object.__setattr__(self, "template", TemplateSpec.from_inventory(self.template))
        if isinstance(self.dns_servers, str):
            raise TypeError("dns_servers is a sequence of addresses, not one string")
        object.__setattr__(self, "dns_servers", tuple(self.dns_servers))

    @property
    def dhcp(self) -> bool:
        return not self.ipv4_address


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def spec_problems(spec: MachineSpec) -> list[str]:
    """Why `spec` cannot become a valid clone (empty when it can). Callers may show these to people."""
    problems = []
    for name in ("vm_name", "datacenter_id", "resource_pool_id", "datastore_id", "network_id", "domain"):
        if not getattr(spec, name):
            problems.append(f"{name} is empty")
    template = spec.template
    for name in ("uuid", "guest_id", "scsi_type", "firmware"):
        if not getattr(template, name):
            problems.append(f"the template's {name} is empty")
    if not template.nic_types:
        problems.append("the template has no network adapter")
    if not template.disks:
        problems.append("the template has no disk")
    for name in ("num_cpus", "memory_mb", "disk_size_gb"):
        value = getattr(spec, name)
        if not _is_int(value) or value < 1:
            problems.append(f"{name} must be a whole number of at least 1, not {value!r}")
    if template.disks and _is_int(spec.disk_size_gb) and spec.disk_size_gb < template.disks[0].size_gb:
        problems.append(
            f"disk_size_gb {spec.disk_size_gb} is smaller than the template's first disk "
            f"({template.disks[0].size_gb} GB): a clone cannot shrink a disk"
        )
    problems.extend(_disk_number_problems(template))
    problems.extend(_network_problems(spec))
    return problems


def _disk_number_problems(template: TemplateSpec) -> list[str]:
    count = template.scsi_controller_count
    if not _is_int(count) or not 1 <= count <= MAX_SCSI_CONTROLLERS:
        return [f"the template's scsi_controller_count must be 1 to {MAX_SCSI_CONTROLLERS}, not {count!r}"]
    limit = count * DISKS_PER_SCSI_CONTROLLER
    problems, seen = [], set()
    for disk in template.disks:
        unit = disk.unit_number
        if unit is None:
            continue
        if not _is_int(unit) or not 0 <= unit < limit:
            controllers = f"{count} SCSI controller{'s' if count > 1 else ''}"
            problems.append(f"disk unit_number {unit!r} is outside 0 to {limit - 1} ({controllers})")
        elif unit in seen:
            problems.append(f"disk unit_number {unit} is used twice")
        seen.add(unit)
    if len(template.disks) > limit:
        problems.append(f"the template has {len(template.disks)} disks; {count} SCSI controller(s) hold {limit}")
    return problems


def _network_problems(spec: MachineSpec) -> list[str]:
    if spec.dhcp:
        if spec.ipv4_prefix is not None or spec.ipv4_gateway or spec.dns_servers:
            return ["DHCP (no ipv4_address) takes no prefix, gateway or DNS servers"]
        return []
    problems = []
    if not _is_int(spec.ipv4_prefix) or not 1 <= spec.ipv4_prefix <= 32:
        return [f"ipv4_prefix must be 1 to 32 for a static address, not {spec.ipv4_prefix!r}"]
    try:
        interface = ipaddress.IPv4Interface(f"{spec.ipv4_address}/{spec.ipv4_prefix}")
    except ValueError:
        return [f"ipv4_address {spec.ipv4_address!r} is not an IPv4 address"]
    if not spec.ipv4_gateway:
        problems.append("a static address needs ipv4_gateway")
    else:
        try:
            gateway = ipaddress.IPv4Address(spec.ipv4_gateway)
        except ValueError:
            problems.append(f"ipv4_gateway {spec.ipv4_gateway!r} is not an IPv4 address")
        else:
            # The provider requires it: the gateway must be local to the customized interface.
            if gateway not in interface.network:
                problems.append(f"ipv4_gateway {gateway} is outside {interface.network}")
    for server in spec.dns_servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            problems.append(f"DNS server {server!r} is not an IP address")
    return problems


# --- Settings -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSettings:
    """How vmprov renders: the state backend (type and non-secret settings) and the values file name."""

    backend: str = DEFAULT_BACKEND
    # Non-secret backend settings, e.g. {"bucket": "tfstate", "region": "eu-west-1"} for s3. Setting the state key
    # attribute (pg schema_name, s3 key, http address, ...) gives a pattern: "{state}" is replaced by the VM's
    # state name; without "{state}" the value is a prefix the state name is appended to.
    backend_config: Mapping[str, Any] = field(default_factory=dict)
    tfvars_file: str = DEFAULT_TFVARS_FILE

    def __post_init__(self) -> None:
        if self.backend not in PER_STATE_ATTRIBUTES:
            raise ImproperlyConfigured(
                f"VMPROV_TF_BACKEND {self.backend!r} is not one of {', '.join(sorted(PER_STATE_ATTRIBUTES))}"
            )
        if not _TFVARS_FILE_NAME.fullmatch(self.tfvars_file):
            raise ImproperlyConfigured(
                f"VMPROV_TFVARS_FILE {self.tfvars_file!r} must be a plain file name ending in .tfvars"
            )
        if not isinstance(self.backend_config, Mapping):
            raise ImproperlyConfigured("VMPROV_TF_BACKEND_CONFIG must be a JSON object")
        for name, value in self.backend_config.items():
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
                raise ImproperlyConfigured(f"VMPROV_TF_BACKEND_CONFIG: {name!r} is not a backend setting name")
            if name in SECRET_BACKEND_SETTINGS:
                raise ImproperlyConfigured(
                    f"VMPROV_TF_BACKEND_CONFIG must not hold {name!r}: rendered files are committed to Git; "
                    "give secrets to Atlantis through the backend's environment variables"
                )
            if not _is_backend_value(value):
                raise ImproperlyConfigured(
                    f"VMPROV_TF_BACKEND_CONFIG: {name} must be a string, number, true/false or a list of strings"
                )
        for name in PER_STATE_ATTRIBUTES[self.backend]:
            if name in self.backend_config and not isinstance(self.backend_config[name], str):
                raise ImproperlyConfigured(f"VMPROV_TF_BACKEND_CONFIG: {name} must be a string")
        if self.backend not in _DEFAULT_STATE_KEYS and PER_STATE_ATTRIBUTES[self.backend][0] not in self.backend_config:
            raise ImproperlyConfigured(
                f"the {self.backend} backend needs {PER_STATE_ATTRIBUTES[self.backend][0]} in VMPROV_TF_BACKEND_CONFIG"
            )

    @classmethod
    def from_django(cls) -> RenderSettings:
        """Read VMPROV_TF_BACKEND, VMPROV_TF_BACKEND_CONFIG (JSON text or a dict) and VMPROV_TFVARS_FILE."""
        config = getattr(django_settings, "VMPROV_TF_BACKEND_CONFIG", None) or {}
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as error:
                raise ImproperlyConfigured(f"VMPROV_TF_BACKEND_CONFIG is not valid JSON: {error}") from None
        return cls(
            backend=getattr(django_settings, "VMPROV_TF_BACKEND", None) or DEFAULT_BACKEND,
            backend_config=config,
            tfvars_file=configured_tfvars_file(),
        )


def configured_tfvars_file() -> str:
    """The values file name from VMPROV_TFVARS_FILE (default terraform.tfvars)."""
    return getattr(django_settings, "VMPROV_TFVARS_FILE", None) or DEFAULT_TFVARS_FILE


def _is_backend_value(value: Any) -> bool:
    if isinstance(value, str | bool | int):
        return True
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


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
    name = state_name(spec)
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


# --- Rendering ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        # Output is HCL, not HTML; every value is already an HCL literal made by hcl_value().
        autoescape=False,  # noqa: S701
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _template_disks(spec: MachineSpec) -> list[dict[str, Any]]:
    disks = spec.template.disks
    used = {disk.unit_number for disk in disks if disk.unit_number is not None}
    # spec_problems() made sure there are enough free numbers on the template's controllers.
    limit = spec.template.scsi_controller_count * DISKS_PER_SCSI_CONTROLLER
    free = (unit for unit in range(limit) if unit not in used)
    result = []
    for index, disk in enumerate(disks):
        result.append(
            {
                "size": spec.disk_size_gb if index == 0 else disk.size_gb,
                "unit_number": disk.unit_number if disk.unit_number is not None else next(free),
                "thin_provisioned": disk.thin,
                "eagerly_scrub": disk.eagerly_scrub,
            }
        )
    return result


def tfvars_values(spec: MachineSpec) -> dict[str, Any]:
    """Every request variable's value, as plain Python data (None is HCL null)."""
    template = spec.template
    static = not spec.dhcp
    return {
        "vm_name": spec.vm_name,
        "annotation": spec.annotation,
        "template_uuid": template.uuid,
        "guest_id": template.guest_id,
        "scsi_type": template.scsi_type,
        "scsi_controller_count": template.scsi_controller_count,
        "firmware": template.firmware,
        "network_adapter_type": template.nic_types[0],
        "resource_pool_id": spec.resource_pool_id,
        "datastore_id": spec.datastore_id,
        "network_id": spec.network_id,
        "folder": spec.folder,
        "num_cpus": spec.num_cpus,
        "memory_mb": spec.memory_mb,
        "disks": _template_disks(spec),
        "domain": spec.domain,
        "ipv4_address": spec.ipv4_address if static else None,
        "ipv4_prefix": spec.ipv4_prefix if static else None,
        "ipv4_gateway": spec.ipv4_gateway if static else None,
        "dns_servers": list(spec.dns_servers),
    }


def _template_context() -> dict[str, str]:
    return {
        "provider_source": hcl_string(PROVIDER_SOURCE),
        "provider_version": hcl_string(PROVIDER_VERSION),
        "required_version": hcl_string(REQUIRED_TERRAFORM_VERSION),
    }


def render_providers(backend: Mapping[str, Any] | None) -> str:
    """providers.tf; with backend=None it is the standalone providers.tf.template."""
    return _environment().get_template("providers.tf.j2").render(backend=backend, **_template_context())


def render_variables() -> str:
    """variables.tf, which has no per-request part (it is also the standalone variables.tf.template)."""
    return _environment().get_template("variables.tf.j2").render()


def render(spec: MachineSpec, settings: RenderSettings | None = None) -> dict[str, str]:
    """File name -> content of the Terraform directory for one VM request.

    Raises InvalidMachineSpec when the spec cannot make a valid clone, ImproperlyConfigured for bad settings.
    """
    settings = settings or RenderSettings.from_django()
    problems = spec_problems(spec)
    if problems:
        raise InvalidMachineSpec(problems)
    values = tfvars_values(spec)
    literals = {name: hcl_value(value) for name, value in values.items()}
    literals["disks"] = [hcl_object(disk) for disk in values["disks"]]
    backend = {
        "label": hcl_string(settings.backend),
        "lines": aligned_attributes(backend_attributes(spec, settings)),
    }
    environment = _environment()
    return {
        "providers.tf": render_providers(backend),
        "variables.tf": render_variables(),
        "machine.tf": environment.get_template("machine.tf.j2").render(tfvars_file=settings.tfvars_file),
        settings.tfvars_file: environment.get_template("tfvars.j2").render(values=literals),
    }


def config_hash(files: Mapping[str, str]) -> str:
    """sha256 over the files' names and contents, in name order; each part is length-prefixed so that no two
    different sets of files hash alike."""
    digest = hashlib.sha256()
    for name in sorted(files):
        for part in (name.encode(), files[name].encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()
