"""What `terraform init` + `terraform plan -input=false` and `terraform apply` make of a project directory, as far as
the Atlantis double needs it, read with python-hcl2.

Planning: every `*.tf` must parse; a backend must be declared (the double's server-side workflow policy: without one
the state would be lost with Atlantis's working directory); values come from the files Terraform loads by itself
(`terraform.tfvars`, `*.auto.tfvars`, their `.json` forms) and the workflow's `-var-file`s; a variable with no default
and no value fails the plan. Each resource's attributes are evaluated from the configuration (literals, `var.x`,
a dynamic block's `each.key` / `each.value.x`), then compared with the backend's state (`state.StateStore`), refreshed
first through the provider (what vCenter shows now):

- in the configuration, not in the state: created;
- in both, differing: updated in place, or replaced when a changed attribute is under `clone` (the vsphere provider
  forces a new VM for any change there); a first disk that would shrink fails the plan with the provider's error;
- in the state, not in the configuration: destroyed;
- refreshed values that differ from the applied ones are shown first, as Terraform's drift note.

Applying carries out a run's changes through the provider, in that order (a replacement destroys, then creates),
and records each in the state as it succeeds. The texts are Terraform's (answers/terraform-output.json, plan_text).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from devtools.atlantis import plan_text
from devtools.atlantis.state import Provider, SimulatedProvider, StateResource, StateStore

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, with_comments=False, explicit_blocks=False, preserve_heredocs=False
)
# python-hcl2 (8.1.4) fails on the escapes `$${` and `%%{` unless a whole interpolation follows, which Terraform
# accepts (vmprov writes them whenever someone typed `${`): they are read as placeholders, then as the literal text.
_ESCAPES = {"$${": "\ue000", "%%{": "\ue001"}
_LITERALS = {"\ue000": "${", "\ue001": "%{"}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\.(key|value(?:\.[A-Za-z_][A-Za-z0-9_]*)?|[A-Za-z_][\w-]*)\}")
_DISK_SIZE = re.compile(r"^disk\[(\d+)\]\.size$")
NO_BACKEND = (
    "Error: No backend configured\n\nNo terraform block declares a backend: the state would stay in Atlantis's "
    "working directory and be lost after the apply. (The local Atlantis's server-side workflow policy.)\n"
)


@dataclass
class ResourceChange:
    """What a plan does to one resource, with its attributes before (the refreshed state) and after (configured)."""

    address: str
    action: str  # "create", "update", "replace" or "delete"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    resource_id: str = ""
    changed: list[str] = field(default_factory=list)  # attribute paths that differ
    forcing: list[str] = field(default_factory=list)  # those that force a replacement

    @property
    def type(self) -> str:
        return self.address.split(".")[0]

    @property
    def name(self) -> str:
        return self.address.split(".")[1]


@dataclass
class TerraformRun:
    """One project's plan: its output and changes, or the error text (which only Atlantis's log shows)."""

    ok: bool
    output: str = ""
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # every declared variable, defaults applied
    resources: list[str] = field(default_factory=list)  # addresses of the resources in the configuration
    changes: list[ResourceChange] = field(default_factory=list)
    state_key: str = ""


def read_hcl(text: str) -> dict[str, Any]:
    """A configuration or values file as python-hcl2 reads it: strings unquoted and unescaped, heredocs as strings."""
    for escape, placeholder in _ESCAPES.items():
        text = text.replace(escape, placeholder)
    # python-hcl2 8.x is not thread-safe (shared, mutated default serialization contexts): one lock for every parse
    # in the process, kept on the hcl2 module so vmprov's own reader takes the same one.
    with hcl2.__dict__.setdefault("_serialization_lock", threading.Lock()):
        return _literal(hcl2.loads(text, serialization_options=_OPTIONS))


def read_tfvars(text: str, file_name: str) -> dict[str, Any]:
    """name -> value of a values file (HCL, or JSON for `*.json`)."""
    return json.loads(text) if file_name.endswith(".json") else read_hcl(text)


def plan(
    directory: Path,
    var_files: Sequence[str] = (),
    states: StateStore | None = None,
    provider: Provider | None = None,
) -> TerraformRun:
    """Plan `directory` as `terraform init` + `terraform plan -input=false -var-file=...` would, against its backend's
    state in `states` (none: an empty state), refreshed through `provider` (see the module)."""
    documents = {}
    for path in sorted(directory.glob("*.tf")):
        try:
            documents[path.name] = read_hcl(path.read_text(encoding="utf-8"))
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            return TerraformRun(ok=False, error=f"Error: Invalid configuration in {path.name}\n\n{error}\n")
    terraform_blocks = [block for document in documents.values() for block in document.get("terraform", [])]
    backends = [block.get("backend") or block.get("cloud") for block in terraform_blocks]
    backends = [backend for backend in backends if backend]
    if not backends:
        return TerraformRun(ok=False, error=NO_BACKEND)

    declared = {name: (file, body) for file, document in documents.items() for name, body in _labelled(document)}
    values = {name: body["default"] for name, (_file, body) in declared.items() if "default" in body}
    for name in var_files:
        if not (directory / name).is_file():
            return TerraformRun(ok=False, error=plan_text.text("missing_var_file", file=name))
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

    configured = {
        f"{kind}.{name}": (file, _evaluate(body, values))
        for file, document in documents.items()
        for block in document.get("resource", [])
        for kind, named in block.items()
        for name, body in named.items()
        if _expression(body.get("count", 1), values, {}) != 0  # `count = 0`: no instance
    }
    state_key = StateStore.key(backends[0])
    state = (states or StateStore()).resources(state_key)
    refreshed, drifts = _refresh(state, provider or SimulatedProvider())
    changes = []
    for address, (file, after) in configured.items():
        if address not in refreshed:
            changes.append(ResourceChange(address, "create", after=after))
            continue
        before = refreshed[address]
        changed = _differences(before.attributes, after)
        if not changed:
            continue
        shrunk = _shrunk_disk(before.attributes, after, changed)
        if shrunk is not None:
            return TerraformRun(ok=False, error=_shrink_error(directory, file, address, after, *shrunk))
        forcing = [path for path in changed if path.startswith("clone")]
        action = "replace" if forcing else "update"
        changes.append(ResourceChange(address, action, before.attributes, after, before.id, changed, forcing))
    for address, resource in refreshed.items():
        if address not in configured:
            changes.append(ResourceChange(address, "delete", before=resource.attributes, resource_id=resource.id))
    return TerraformRun(
        ok=True,
        output=plan_text.plan_output(changes, drifts),
        values=values,
        resources=list(configured),
        changes=changes,
        state_key=state_key,
    )


def apply(run: TerraformRun, directory: Path, states: StateStore, provider: Provider) -> str:
    """Carry out `run`'s changes through `provider`, recording each in the state as it succeeds; Terraform's apply
    output. A provider's exception propagates (the apply failed) after what succeeded before it was recorded."""
    output = ""
    counts = {"added": 0, "changed": 0, "destroyed": 0}
    for change in run.changes:
        if change.action in ("delete", "replace"):
            started = time.monotonic()
            output += plan_text.text("destroying", address=change.address, id=change.resource_id)
            provider.delete(change.resource_id)
            states.remove(run.state_key, change.address)
            output += plan_text.text("destroyed", address=change.address, elapsed=_elapsed(started))
            counts["destroyed"] += 1
        if change.action in ("create", "replace"):
            started = time.monotonic()
            output += plan_text.text("creating", address=change.address)
            resource_id = provider.create(directory, dict(run.values), change.after)
            states.put(run.state_key, change.address, StateResource(resource_id, change.after, dict(run.values)))
            output += plan_text.text("created", address=change.address, elapsed=_elapsed(started), id=resource_id)
            counts["added"] += 1
        if change.action == "update":
            started = time.monotonic()
            output += plan_text.text("modifying", address=change.address, id=change.resource_id)
            provider.update(change.resource_id, dict(run.values), change.after, change.changed)
            resource = StateResource(change.resource_id, change.after, dict(run.values))
            states.put(run.state_key, change.address, resource)
            output += plan_text.text("modified", address=change.address, elapsed=_elapsed(started), id=resource.id)
            counts["changed"] += 1
    return output + plan_text.text("apply_summary", **counts)


def _elapsed(started: float) -> str:
    """A duration as Go prints a time.Duration rounded to the second: 59s, 1m0s."""
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


# --- Evaluating a resource's attributes --------------------------------------------------------------------------


def _evaluate(body: dict[str, Any], values: dict[str, Any], each: dict[str, tuple[Any, Any]] | None = None) -> dict:
    """The attributes a resource body configures: blocks as lists of attribute dicts, `dynamic` blocks expanded."""
    each = each or {}
    attributes: dict[str, Any] = {}
    for key, raw in body.items():
        if key in ("count", "lifecycle"):
            continue  # meta-arguments, not attributes
        if key == "dynamic":
            for block in raw:
                for name, dynamic in block.items():
                    items = _expression(dynamic["for_each"], values, each) or []
                    pairs = enumerate(items) if isinstance(items, list) else items.items()
                    content = dynamic["content"][0] if isinstance(dynamic["content"], list) else dynamic["content"]
                    attributes[name] = [_evaluate(content, values, {**each, name: pair}) for pair in pairs]
        elif isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw):
            attributes[key] = [_evaluate(item, values, each) for item in raw]
        else:
            attributes[key] = _expression(raw, values, each)
    return attributes


def _expression(raw: Any, values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> Any:
    """A literal, a whole `${var.x}` / `${disk.value.x}` / `${disk.key}` (its value, of any type), or a string with
    such references inside (substituted as text). Anything else stays as written."""
    if not isinstance(raw, str):
        return raw
    whole = _REFERENCE.fullmatch(raw)
    if whole:
        found, value = _resolve(whole, values, each)
        return value if found else raw
    return _REFERENCE.sub(lambda match: _as_text(match, values, each), raw)


def _resolve(match: re.Match, values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> tuple[bool, Any]:
    root, path = match.group(1), match.group(2)
    if root == "var":
        return path in values, values.get(path)
    if root in each:
        key, item = each[root]
        if path == "key":
            return True, key
        if path == "value":
            return True, item
        field_name = path.removeprefix("value.")
        return isinstance(item, dict) and field_name in item, item.get(field_name) if isinstance(item, dict) else None
    return False, None


def _as_text(match: re.Match, values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> str:
    found, value = _resolve(match, values, each)
    return str(value) if found else match.group(0)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Attribute paths -> leaf values: `num_cpus`, `disk[0].size`, `clone[0].customize[0].domain`."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat |= _flatten(item, f"{prefix}.{key}" if prefix else key)
        return flat
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        flat = {}
        for index, item in enumerate(value):
            flat |= _flatten(item, f"{prefix}[{index}]")
        return flat
    return {prefix: value}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old, new = _flatten(before), _flatten(after)
    return sorted(path for path in set(old) | set(new) if old.get(path) != new.get(path))


def _set_path(attributes: dict[str, Any], path: str, value: Any) -> None:
    """Set one attribute path (as `_flatten` writes them) inside nested attributes, when the path exists."""
    target: Any = attributes
    parts = re.findall(r"([^.\[\]]+)(?:\[(\d+)\])?", path)
    for index, (name, position) in enumerate(parts):
        last = index == len(parts) - 1
        if not isinstance(target, dict) or name not in target:
            return
        if position:
            blocks = target[name]
            if not isinstance(blocks, list) or int(position) >= len(blocks):
                return
            target = blocks[int(position)]
        elif last:
            target[name] = value
        else:
            target = target[name]


def _refresh(
    state: dict[str, StateResource], provider: Provider
) -> tuple[dict[str, StateResource], list[ResourceChange]]:
    """The state as the provider finds the objects now (objects that are gone dropped), and what drifted."""
    refreshed, drifts = {}, []
    for address, resource in state.items():
        current = provider.read(resource.id)
        if current is None:
            continue
        attributes = json.loads(json.dumps(resource.attributes))
        for path, value in current.items():
            _set_path(attributes, path, value)
        changed = _differences(resource.attributes, attributes)
        if changed:
            drifts.append(ResourceChange(address, "update", resource.attributes, attributes, resource.id, changed))
        refreshed[address] = StateResource(resource.id, attributes, resource.values)
    return refreshed, drifts


def _shrunk_disk(before: dict[str, Any], after: dict[str, Any], changed: list[str]) -> tuple[str, int, int] | None:
    """(disk label, old size, new size) of the first disk the change would shrink, if any."""
    old, new = _flatten(before), _flatten(after)
    for path in changed:
        disk = _DISK_SIZE.match(path)
        if disk and isinstance(old.get(path), int) and isinstance(new.get(path), int) and new[path] < old[path]:
            label = new.get(f"disk[{disk.group(1)}].label") or f"disk{disk.group(1)}"
            return label, old[path], new[path]
    return None


def _shrink_error(directory: Path, file: str, address: str, after: dict, label: str, old: int, new: int) -> str:
    kind, name = address.split(".")
    line, source_line = _declaration(directory / file, rf'\s*resource\s+"{re.escape(kind)}"\s+"{re.escape(name)}"')
    return plan_text.text(
        "disk_shrunk",
        label=label,
        old=old,
        new=new,
        address=address,
        file=file,
        line=line,
        type=kind,
        name=name,
        source_line=source_line,
    )


# --- Reading the configuration -----------------------------------------------------------------------------------


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


def _declaration(path: Path, pattern: str) -> tuple[int, str]:
    """The line number of the first line of `path` matching `pattern`, and that line as Terraform quotes it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next((number for number, text in enumerate(lines, 1) if re.match(pattern, text)), 1)
    return line, f"{line:4d}: {lines[line - 1] if lines else ''}"


def _required(directory: Path, name: str, file: str) -> str:
    """Terraform's diagnostic for a variable with no default and no value, pointing at its declaration."""
    line, source_line = _declaration(directory / file, r'\s*variable\s+"' + re.escape(name) + r'"\s*\{')
    return plan_text.text("required_variable", file=file, line=line, source_line=source_line, variable=name)
