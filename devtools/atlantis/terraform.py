"""What `terraform init` + `terraform plan -input=false` make of a project directory, as far as the Atlantis double
needs it, read with python-hcl2: every `*.tf` must parse; a backend must be declared (the double's server-side
workflow policy: without one the state would be lost with Atlantis's working directory); values come from the files
Terraform loads by itself (`terraform.tfvars`, `*.auto.tfvars`, their `.json` forms) and the workflow's `-var-file`s;
a variable with no default and no value fails the plan. The texts are Terraform's (answers/terraform-output.json).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import hcl2

from devtools.atlantis.fixtures import fixture

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, with_comments=False, explicit_blocks=False, preserve_heredocs=False
)
# python-hcl2 (8.1.4) fails on the escapes `$${` and `%%{` unless a whole interpolation follows, which Terraform
# accepts (vmprov writes them whenever someone typed `${`): they are read as placeholders, then as the literal text.
_ESCAPES = {"$${": "\ue000", "%%{": "\ue001"}
_LITERALS = {"\ue000": "${", "\ue001": "%{"}
_VARIABLE_REFERENCE = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}")
NO_BACKEND = (
    "Error: No backend configured\n\nNo terraform block declares a backend: the state would stay in Atlantis's "
    "working directory and be lost after the apply. (The local Atlantis's server-side workflow policy.)\n"
)


@dataclass
class TerraformRun:
    """One project's plan: its output, or the error text (which only Atlantis's log shows)."""

    ok: bool
    output: str = ""
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # every declared variable, defaults applied
    resources: list[str] = field(default_factory=list)  # addresses of the resources to create


def read_hcl(text: str) -> dict[str, Any]:
    """A configuration or values file as python-hcl2 reads it: strings unquoted and unescaped, heredocs as strings."""
    for escape, placeholder in _ESCAPES.items():
        text = text.replace(escape, placeholder)
    return _literal(hcl2.loads(text, serialization_options=_OPTIONS))


def read_tfvars(text: str, file_name: str) -> dict[str, Any]:
    """name -> value of a values file (HCL, or JSON for `*.json`)."""
    return json.loads(text) if file_name.endswith(".json") else read_hcl(text)


def plan(directory: Path, var_files: Sequence[str] = ()) -> TerraformRun:
    """Plan `directory` as `terraform init` + `terraform plan -input=false -var-file=...` would (see the module)."""
    documents = {}
    for path in sorted(directory.glob("*.tf")):
        try:
            documents[path.name] = read_hcl(path.read_text(encoding="utf-8"))
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            return TerraformRun(ok=False, error=f"Error: Invalid configuration in {path.name}\n\n{error}\n")
    terraform_blocks = [block for document in documents.values() for block in document.get("terraform", [])]
    if not any(block.get("backend") or block.get("cloud") for block in terraform_blocks):
        return TerraformRun(ok=False, error=NO_BACKEND)

    declared = {name: (file, body) for file, document in documents.items() for name, body in _labelled(document)}
    values = {name: body["default"] for name, (_file, body) in declared.items() if "default" in body}
    for name in var_files:
        if not (directory / name).is_file():
            return TerraformRun(ok=False, error=_text("missing_var_file", file=name))
    auto_loaded = [name for name in ("terraform.tfvars", "terraform.tfvars.json") if (directory / name).is_file()]
    auto_loaded += sorted(path.name for suffix in ("", ".json") for path in directory.glob(f"*.auto.tfvars{suffix}"))
    for name in [*auto_loaded, *var_files]:
        try:
            values.update(read_tfvars((directory / name).read_text(encoding="utf-8"), name))
        except Exception as error:  # lark's errors, or JSON's
            return TerraformRun(ok=False, error=f"Error: Invalid values file {name}\n\n{error}\n")
    missing = [_required(directory, name, file) for name, (file, _body) in declared.items() if name not in values]
    if missing:
        return TerraformRun(ok=False, error="\n".join(missing))

    values = {name: value for name, value in values.items() if name in declared}
    created = [
        (kind, name, body)
        for document in documents.values()
        for block in document.get("resource", [])
        for kind, named in block.items()
        for name, body in named.items()
    ]
    output = _text("plan_header") + "".join(_created(kind, name, body, values) for kind, name, body in created)
    output += _text("plan_summary", add=len(created), change=0, destroy=0)
    return TerraformRun(
        ok=True, output=output, values=values, resources=[f"{kind}.{name}" for kind, name, _ in created]
    )


def apply_output(created: Iterable[tuple[str, float, str]]) -> str:
    """Terraform's apply output for resources created as (address, seconds it took, id)."""
    output, created = "", list(created)
    for address, seconds, resource_id in created:
        minutes, whole_seconds = divmod(round(seconds), 60)  # as Go prints a time.Duration: 59s, 1m0s
        elapsed = f"{minutes}m{whole_seconds}s" if minutes else f"{whole_seconds}s"
        output += _text("creating", address=address) + _text(
            "created", address=address, elapsed=elapsed, id=resource_id
        )
    return output + _text("apply_summary", added=len(created), changed=0, destroyed=0)


def simulated_apply(run: TerraformRun) -> str:
    """The apply output when nothing real is created: every resource of the plan, created at once."""
    return apply_output((address, 0, str(uuid.uuid4())) for address in run.resources)


def _text(key: str, /, **fields: Any) -> str:
    return Template(fixture("terraform-output")[key]).substitute(fields)


def _literal(value: Any) -> Any:
    if isinstance(value, str):
        for placeholder, text in _LITERALS.items():
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    return [_literal(item) for item in value] if isinstance(value, list) else value


def _labelled(document: dict[str, Any], kind: str = "variable") -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of the one-label blocks of a kind, e.g. every `variable "x" { }`."""
    return [(label, body) for block in document.get(kind, []) for label, body in block.items()]


def _required(directory: Path, name: str, file: str) -> str:
    """Terraform's diagnostic for a variable with no default and no value, pointing at its declaration."""
    lines = (directory / file).read_text(encoding="utf-8").splitlines()
    pattern = re.compile(r'\s*variable\s+"' + re.escape(name) + r'"\s*\{')
    line = next((number for number, text in enumerate(lines, 1) if pattern.match(text)), 1)
    source_line = f"{line:4d}: {lines[line - 1] if lines else ''}"
    return _text("required_variable", file=file, line=line, source_line=source_line, variable=name)


def _created(kind: str, name: str, body: dict[str, Any], values: dict[str, Any]) -> str:
    """A resource's entry in the plan: the attributes set straight from a variable, `id` known after apply."""
    attributes = {"id": "(known after apply)"}
    for key, raw in body.items():
        reference = _VARIABLE_REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
        if reference and values.get(reference.group(1)) is not None:
            attributes[key] = json.dumps(values[reference.group(1)], ensure_ascii=False)
    width = max(map(len, attributes))
    lines = "".join(f"      + {key.ljust(width)} = {attributes[key]}\n" for key in sorted(attributes))
    return _text("resource_created", address=f"{kind}.{name}", type=kind, name=name, attributes=lines)
