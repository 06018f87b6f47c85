"""Rendering: a `MachineSpec` into the files of its Terraform directory, and the hash that identifies them.

Rules it keeps:
- User input reaches Terraform only through the values file (`terraform.tfvars`, or `machine_inputs.tfvars` when
  Atlantis passes `-var-file`), and only as literals made by `hcl_value()`/`hcl_string()`. `providers.tf`,
  `variables.tf` and `machine.tf` are the same for every request rendered with the same settings, with one
  exception: the backend block's state key, which Terraform cannot take from a variable (see
  `provisioning.terraform.settings`). `VMPROV_HOT_ADD` turns CPU and memory hot add on in `machine.tf`.
- The output is byte for byte what `terraform fmt` writes (the tests run the real `terraform fmt -check`).
- The files are complete by construction: `ensure_config_structure` finds nothing to add to them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

from provisioning.terraform.hcl import aligned_attributes, hcl_object, hcl_string, hcl_value
from provisioning.terraform.settings import RenderSettings, backend_attributes, render_settings
from provisioning.terraform.spec import DISKS_PER_SCSI_CONTROLLER, InvalidMachineSpec, MachineSpec, spec_problems
from provisioning.terraform.templates import (
    PROVIDER_SOURCE,
    PROVIDER_VERSION,
    REQUIRED_TERRAFORM_VERSION,
    template_text,
)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(template_text),
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

    Without `settings`, the ones from Django settings (`render_settings()`). Raises InvalidMachineSpec when the
    spec cannot make a valid clone, ImproperlyConfigured for bad settings.
    """
    settings = settings or render_settings()
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
        "machine.tf": environment.get_template("machine.tf.j2").render(
            tfvars_file=settings.tfvars_file, hot_add=settings.hot_add
        ),
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
