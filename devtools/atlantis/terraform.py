"""What `terraform plan` and `terraform apply` make of a project directory, as far as the Atlantis double needs it.

A plan needs every `*.tf` to parse (python-hcl2), a backend (the double's workflow policy: the state must outlive
Atlantis's working directory) and a value for every variable (defaults, `terraform.tfvars`, `*.auto.tfvars`, their
`.json` forms, the workflow's `-var-file`s). A resource's attributes (literals, `var.x`, a dynamic block's `each.key`
/ `each.value.x`) are flat paths (`num_cpus`, `disk[0].size`), compared with the backend's state refreshed through
the provider: created, updated in place, replaced (a change under `clone` forces a new VM, as in the vsphere
provider), destroyed; a shrinking disk fails. An apply carries the changes out through the provider, recording each
in the state. The texts are Terraform's (answers/terraform-output.json); attribute lines are flat paths, not
Terraform's nested blocks. A provider creates, reads (paths, None when gone), updates and deletes; an exception is
its error. `SimulatedProvider` touches nothing; `devtools.vsphere_provider.VCenterProvider` works in vcsim.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import hcl2

from devtools.atlantis.fixtures import fixture

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, with_comments=False, explicit_blocks=False, preserve_heredocs=False
)
# python-hcl2 8.x fails on the escapes `$${` and `%%{` unless a whole interpolation follows; Terraform accepts them
# (vmprov writes them whenever someone typed `${`): read as placeholders, then as the literal text.
_ESCAPES = {"$${": "\ue000", "%%{": "\ue001"}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*)\.(key|value(?:\.[A-Za-z_]\w*)?|[A-Za-z_][\w-]*)\}")
_ORDER = ("create", "update", "delete", "replace")
_UNKNOWN = object()  # an id known after apply
NO_BACKEND = (  # the double's server-side workflow policy, not a Terraform text
    "Error: No backend configured\n\nNo terraform block declares a backend: the state would stay in Atlantis's "
    "working directory and be lost after the apply.\n"
)
# A state: address -> Resource, per backend block (its type and settings, e.g. vmprov's per-VM `schema_name`).
States = dict[str, dict[str, "Resource"]]


@dataclass
class Resource:
    id: str
    attributes: dict[str, Any]  # path -> value


@dataclass
class Change:
    """ "create", "update", "replace" or "delete"; `changed`: the paths that differ; `forcing`: the replacing ones."""

    address: str
    action: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    changed: list[str] = field(default_factory=list)
    forcing: list[str] = field(default_factory=list)


@dataclass
class Run:
    """One project's plan: its output and changes, or the error text (which only Atlantis's log shows)."""

    ok: bool
    output: str = ""
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # every declared variable, defaults applied
    changes: list[Change] = field(default_factory=list)
    state_key: str = ""


class SimulatedProvider:
    """Creates nothing real: made-up ids, no drift, updates and deletes that always succeed."""

    create = staticmethod(lambda directory, values, attributes: str(uuid.uuid4()))
    read = staticmethod(lambda resource_id: {})
    update = delete = staticmethod(lambda *args: None)


def text(key: str, /, **fields: Any) -> str:
    """One of Terraform's texts, its `$placeholders` filled."""
    return Template(fixture("terraform-output")[key]).substitute(fields)


def read_hcl(text: str) -> dict[str, Any]:
    """A configuration or values file as python-hcl2 reads it. python-hcl2 8.x mutates shared contexts: one lock for
    every parse in the process, kept on the hcl2 module so that vmprov's own reader takes the same one."""
    for escape, placeholder in _ESCAPES.items():
        text = text.replace(escape, placeholder)
    with hcl2.__dict__.setdefault("_serialization_lock", threading.Lock()):
        document = json.dumps(hcl2.loads(text, serialization_options=_OPTIONS), ensure_ascii=False)
    return json.loads(document.replace("\ue000", "${").replace("\ue001", "%{"))


def read_tfvars(text: str, file_name: str) -> dict[str, Any]:
    """name -> value of a values file (HCL, or JSON for `*.json`)."""
    return json.loads(text) if file_name.endswith(".json") else read_hcl(text)


def plan(directory: Path, var_files=(), states: States | None = None, provider: Any = None) -> Run:
    """Plan `directory` as `terraform init` + `terraform plan -input=false -var-file=...` would (see the module)."""
    documents = {}
    for path in sorted(directory.glob("*.tf")):
        try:
            documents[path.name] = read_hcl(path.read_text(encoding="utf-8"))
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            return Run(False, error=f"Error: Invalid configuration in {path.name}\n\n{error}\n")
    blocks = [block for document in documents.values() for block in document.get("terraform", [])]
    if not (backends := [backend for block in blocks if (backend := block.get("backend") or block.get("cloud"))]):
        return Run(False, error=NO_BACKEND)
    declared = {name: (file, body) for file, doc in documents.items() for name, body in _blocks(doc, "variable")}
    values = {name: body["default"] for name, (_file, body) in declared.items() if "default" in body}
    if missing := [name for name in var_files if not (directory / name).is_file()]:
        return Run(False, error=text("missing_var_file", file=missing[0]))
    loaded = [name for name in ("terraform.tfvars", "terraform.tfvars.json") if (directory / name).is_file()]
    loaded += sorted(path.name for suffix in ("", ".json") for path in directory.glob(f"*.auto.tfvars{suffix}"))
    for name in [*loaded, *var_files]:
        try:
            values.update(read_tfvars((directory / name).read_text(encoding="utf-8"), name))
        except Exception as error:  # lark's errors, or JSON's
            return Run(False, error=f"Error: Invalid values file {name}\n\n{error}\n")
    if missing := [(name, file) for name, (file, _body) in declared.items() if name not in values]:
        errors = [
            _diagnostic(
                "required_variable", directory / file, rf'\s*variable\s+"{re.escape(name)}"\s*\{{', variable=name
            )
            for name, file in missing
        ]
        return Run(False, error="\n".join(errors))
    values = {name: value for name, value in values.items() if name in declared}
    configured = {
        f"{kind}.{name}": (file, _flatten(_evaluate(body, values, {})))
        for file, document in documents.items()
        for kind, named in _blocks(document, "resource")
        for name, body in named.items()
        if _expression(body.get("count", 1), values, {}) != 0  # `count = 0`: no instance
    }
    state_key = json.dumps(backends[0], sort_keys=True, default=str)
    changes, drifts, refreshed, provider = [], [], {}, provider or SimulatedProvider()
    for address, resource in ({} if states is None else states).get(state_key, {}).items():
        if (now := provider.read(resource.id)) is not None:
            current = resource.attributes | {path: value for path, value in now.items() if path in resource.attributes}
            refreshed[address] = Resource(resource.id, current)
            if drifted := _differences(resource.attributes, current):
                drifts.append(Change(address, "update", resource.attributes, current, resource.id, drifted))
    for address, (file, after) in configured.items():
        if address not in refreshed:
            changes.append(Change(address, "create", after=after))
        elif changed := _differences(before := refreshed[address].attributes, after):
            for path in (path for path in changed if re.fullmatch(r"disk\[\d+\]\.size", path)):
                if (
                    isinstance(before.get(path), int)
                    and isinstance(after.get(path), int)
                    and after[path] < before[path]
                ):
                    label, (kind, name) = after.get(path.replace("size", "label")), address.split(".")
                    fields = {"label": label, "old": before[path], "new": after[path], "type": kind, "name": name}
                    pattern = rf'\s*resource\s+"{re.escape(kind)}"\s+"{re.escape(name)}"'
                    error = _diagnostic("disk_shrunk", directory / file, pattern, address=address, **fields)
                    return Run(False, error=error)
            forcing = [path for path in changed if path.startswith("clone")]
            action = "replace" if forcing else "update"
            changes.append(Change(address, action, before, after, refreshed[address].id, changed, forcing))
    changes += [
        Change(address, "delete", old.attributes, id=old.id)
        for address, old in refreshed.items()
        if address not in configured
    ]
    return Run(True, _plan_output(changes, drifts), values=values, changes=changes, state_key=state_key)


def apply(run: Run, directory: Path, states: States, provider: Any) -> str:
    """Carry out `run`'s changes through `provider`, recording each in `states` as it succeeds; Terraform's apply
    output. A provider's exception propagates (the apply failed) after what succeeded before it was recorded."""
    output, counts, state = "", {"added": 0, "changed": 0, "destroyed": 0}, states.setdefault(run.state_key, {})
    for change in run.changes:
        address, started = change.address, time.monotonic()
        if change.action in ("delete", "replace"):
            output += text("destroying", address=address, id=change.id)
            provider.delete(change.id)
            del state[address]
            output += text("destroyed", address=address, elapsed=_elapsed(started))
            counts["destroyed"] += 1
        if change.action in ("create", "replace"):
            output += text("creating", address=address)
            state[address] = Resource(provider.create(directory, dict(run.values), change.after), change.after)
            output += text("created", address=address, elapsed=_elapsed(started), id=state[address].id)
            counts["added"] += 1
        if change.action == "update":
            output += text("modifying", address=address, id=change.id)
            provider.update(change.id, dict(run.values), change.after, change.changed)
            state[address] = Resource(change.id, change.after)
            output += text("modified", address=address, elapsed=_elapsed(started), id=change.id)
            counts["changed"] += 1
    return output + text("apply_summary", **counts)


def _elapsed(started: float) -> str:
    """A duration as Go prints a time.Duration rounded to the second: 59s, 1m0s."""
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _blocks(document: dict[str, Any], kind: str) -> list[tuple[str, Any]]:
    """(label, body) of every `kind "label" { }` block."""
    return [(label, body) for block in document.get(kind, []) for label, body in block.items()]


def _evaluate(body: dict[str, Any], values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The attributes a body configures: blocks as lists of attribute dicts, `dynamic` blocks expanded."""
    attributes: dict[str, Any] = {}
    for key, raw in body.items():
        if key == "dynamic":
            for name, dynamic in _blocks({"dynamic": raw}, "dynamic"):
                items = _expression(dynamic["for_each"], values, each) or []
                content = dynamic["content"][0] if isinstance(dynamic["content"], list) else dynamic["content"]
                pairs = enumerate(items) if isinstance(items, list) else items.items()
                attributes[name] = [_evaluate(content, values, {**each, name: pair}) for pair in pairs]
        elif key not in ("count", "lifecycle"):  # meta-arguments, not attributes
            is_block = isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw)
            attributes[key] = (
                [_evaluate(item, values, each) for item in raw] if is_block else _expression(raw, values, each)
            )
    return attributes


def _expression(raw: Any, values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> Any:
    """A literal, a whole `${var.x}` / `${disk.value.x}` / `${disk.key}` (its value, of any type), or a string with
    such references inside (substituted as text). Anything else stays as written."""

    def resolve(match: re.Match) -> tuple[bool, Any]:
        root, path = match[1], match[2]
        if root == "var":
            return path in values, values.get(path)
        key, item = each.get(root, (None, None))
        field_name = path.removeprefix("value.")
        if root not in each or path in ("key", "value"):
            return root in each, key if path == "key" else item
        return isinstance(item, dict) and field_name in item, item.get(field_name) if isinstance(item, dict) else None

    if not isinstance(raw, str):
        return raw
    if (whole := _REFERENCE.fullmatch(raw)) and (found := resolve(whole))[0]:
        return found[1]
    return _REFERENCE.sub(lambda match: str(found[1]) if (found := resolve(match))[0] else match[0], raw)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Attribute paths -> leaf values: `num_cpus`, `disk[0].size`, `clone[0].customize[0].domain`."""
    if isinstance(value, dict):
        return {path: leaf for key, item in value.items() for path, leaf in _flatten(item, f"{prefix}.{key}").items()}
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return {path: leaf for i, item in enumerate(value) for path, leaf in _flatten(item, f"{prefix}[{i}]").items()}
    return {prefix.lstrip("."): value}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def _diagnostic(key: str, path: Path, pattern: str, **fields: Any) -> str:
    """Terraform's diagnostic `key`, pointing at the first line of `path` that matches `pattern`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next((number for number, found in enumerate(lines, 1) if re.match(pattern, found)), 1)
    source_line = f"{line:4d}: {lines[line - 1] if lines else ''}"
    return text(key, file=path.name, line=line, source_line=source_line, **fields)


def _plan_output(changes: list[Change], drifts: list[Change]) -> str:
    """The plan as `terraform plan -no-color` prints it: drift, the symbols, each change, the summary line."""
    if not changes:
        return text("no_changes")
    output = (
        text("drift_intro") + "".join(_resource(drift, "drift") for drift in drifts) + text("drift_outro")
        if drifts
        else ""
    )
    actions = [action for action in _ORDER if any(change.action == action for change in changes)]
    output += text("plan_intro") + "".join(
        f"{fixture('terraform-output')['action_symbols'][action]}\n" for action in actions
    )
    output += text("plan_actions") + "".join(_resource(change, change.action) for change in changes)
    count = {action: sum(change.action == action for change in changes) for action in _ORDER}
    add, destroy = count["create"] + count["replace"], count["delete"] + count["replace"]
    return output + text("plan_summary", add=add, change=count["update"], destroy=destroy)


def _resource(change: Change, template: str) -> str:
    """One resource's block: every attribute of a created (`+`) or destroyed (`-`) one; what changes in an updated
    one (`~`, `# forces replacement`), its id and name, the rest counted as hidden."""
    before, after = {"id": change.id, **change.before}, {"id": change.id, **change.after}
    changed, shown, lines, hidden = {*change.changed}, change.action not in ("create", "delete"), [], 0
    if change.action in ("create", "replace"):
        after["id"], changed = _UNKNOWN, changed | {"id"}
    for path in sorted(before.keys() | after.keys()):
        old, new = _value(before.get(path)), _value(after.get(path))
        if change.action == "create" and after.get(path) is not None:
            lines.append(("+", path, new))
        elif change.action == "delete" and before.get(path) is not None:
            lines.append(("-", path, f"{old} -> null"))
        elif shown and path in changed:
            lines.append(("~", path, f"{old} -> {new}" + " # forces replacement" * (path in change.forcing)))
        elif shown and path in ("id", "name"):
            lines.append((" ", path, new))
        else:
            hidden += shown
    width = max((len(path) for _symbol, path, _value in lines), default=0)
    attributes = "".join(f"      {symbol} {path.ljust(width)} = {value}\n" for symbol, path, value in lines)
    attributes += f"        # ({hidden} unchanged attribute{'s' * (hidden > 1)} hidden)\n" if hidden else ""
    kind, name = change.address.split(".")
    return text(f"resource_{template}", address=change.address, type=kind, name=name, attributes=attributes)


def _value(value: Any) -> str:
    return (
        "(known after apply)"
        if value is _UNKNOWN
        else "null"
        if value is None
        else json.dumps(value, ensure_ascii=False)
    )
