"""A Terraform simulation: what `terraform plan` and `terraform apply` do with a project directory, as far as the
Atlantis double (devtools.atlantis) needs it to run a VM's whole life; it imports nothing of vmprov.

A plan needs each `*.tf` to parse, a backend (the double's policy: a state must outlive the working directory) and
a value for each variable. Resources are evaluated into flat attribute paths (`num_cpus`, `disk[0].size`) and
compared with the backend's state as the provider reads it now: created, updated in place, replaced (a change
under `clone` forces a new VM, as in the vsphere provider) or destroyed. An apply carries the changes out through
the provider (`SimulatedProvider`, or devtools.vsphere_provider's in vcsim). Texts: output.json, Terraform's.
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

TEXTS = json.loads((Path(__file__).resolve().parent / "output.json").read_text(encoding="utf-8"))
_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, with_comments=False, explicit_blocks=False, preserve_heredocs=False
)
# python-hcl2 8.x fails on `$${` and `%%{` unless a whole interpolation follows; Terraform accepts them (vmprov
# writes them whenever someone typed `${`): read as placeholders, then as the literal text.
_ESCAPES = {"$${": "\ue000", "%%{": "\ue001"}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*)\.(key|value(?:\.[A-Za-z_]\w*)?|[A-Za-z_][\w-]*)\}")
_DISK_SIZE = re.compile(r"disk\[\d+\]\.size")
_ORDER, _UNKNOWN = ("create", "update", "delete", "replace"), object()  # _UNKNOWN: an id known after apply
NO_BACKEND = (  # the double's server-side workflow policy, not a Terraform text
    "Error: No backend configured\n\nNo terraform block declares a backend: the state would stay in Atlantis's "
    "working directory and be lost after the apply.\n"
)
States = dict[str, dict[str, "Resource"]]  # backend block (type and settings, as JSON) -> address -> resource


class PlanError(Exception):
    """What Terraform prints when the plan fails."""


@dataclass
class Resource:
    id: str
    attributes: dict[str, Any]  # path -> value


@dataclass
class Change:
    """What a plan does to one resource (`action`: create, update, replace or delete), with its attributes before
    (as refreshed) and after (as configured); `changed`: the paths that differ, `forcing`: those that replace it."""

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
    """A provider (create, read, update, delete; an exception is its error) that touches nothing: made-up ids, no
    drift, updates and deletes that always succeed. `read` gives attribute paths as they are now, None when gone."""

    def create(self, directory: Path, values: dict[str, Any], attributes: dict[str, Any]) -> str:
        return str(uuid.uuid4())

    def read(self, resource_id: str) -> dict[str, Any] | None:
        return {}

    def update(self, resource_id: str, values: dict[str, Any], attributes: dict[str, Any], changed: list[str]) -> None:
        pass

    def delete(self, resource_id: str) -> None:
        pass


def text(key: str, /, **fields: Any) -> str:
    """One of Terraform's texts, its `$placeholders` filled."""
    return Template(TEXTS[key]).substitute(fields)


def read_hcl(text: str) -> dict[str, Any]:
    """A configuration or values file, read by python-hcl2 under one process-wide lock (8.x mutates shared contexts;
    the lock is kept on the module so that vmprov's own reader takes it too)."""
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
    try:
        documents = {path.name: _read(path, "configuration in") for path in sorted(directory.glob("*.tf"))}
        blocks = [block for document in documents.values() for block in document.get("terraform", [])]
        if not (backends := [found for block in blocks if (found := block.get("backend") or block.get("cloud"))]):
            raise PlanError(NO_BACKEND)
        values, key = _values(directory, documents, var_files), json.dumps(backends[0], sort_keys=True, default=str)
        state, provider = (states or {}).get(key, {}), provider or SimulatedProvider()
        changes, drifts = _changes(directory, documents, values, state, provider)
    except PlanError as error:
        return Run(False, error=str(error))
    return Run(True, _plan_output(changes, drifts), values=values, changes=changes, state_key=key)


def apply(run: Run, directory: Path, states: States, provider: Any) -> str:
    """Carry out `run`'s changes through `provider`, recording each in `states` as it succeeds; Terraform's apply
    output. A provider's exception propagates (the apply failed) after what succeeded before it was recorded."""
    output, counts, state = "", {"added": 0, "changed": 0, "destroyed": 0}, states.setdefault(run.state_key, {})
    for change in run.changes:
        address, values, started = change.address, dict(run.values), time.monotonic()
        if change.action in ("delete", "replace"):
            output += text("destroying", address=address, id=change.id)
            provider.delete(change.id)
            del state[address]
            output += text("destroyed", address=address, elapsed=_elapsed(started))
            counts["destroyed"] += 1
        if change.action in ("create", "replace"):
            output += text("creating", address=address)
            state[address] = Resource(provider.create(directory, values, change.after), change.after)
            output += text("created", address=address, elapsed=_elapsed(started), id=state[address].id)
            counts["added"] += 1
        if change.action == "update":
            output += text("modifying", address=address, id=change.id)
            provider.update(change.id, values, change.after, change.changed)
            state[address] = Resource(change.id, change.after)
            output += text("modified", address=address, elapsed=_elapsed(started), id=change.id)
            counts["changed"] += 1
    return output + text("apply_summary", **counts)


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        return read_tfvars(path.read_text(encoding="utf-8"), path.name)
    except Exception as error:  # python-hcl2's lark errors are of many kinds; JSON's
        raise PlanError(f"Error: Invalid {what} {path.name}\n\n{error}\n") from None


def _values(directory: Path, documents: dict[str, Any], var_files) -> dict[str, Any]:
    """Each variable's value: its default, then terraform.tfvars, `*.auto.tfvars` (and their `.json` forms) and the
    workflow's `-var-file`s, in that order."""
    declared = {name: (file, body) for file, doc in documents.items() for name, body in _blocks(doc, "variable")}
    values = {name: body["default"] for name, (_file, body) in declared.items() if "default" in body}
    if missing := [name for name in var_files if not (directory / name).is_file()]:
        raise PlanError(text("missing_var_file", file=missing[0]))
    files = [directory / name for name in ("terraform.tfvars", "terraform.tfvars.json")]
    files += sorted([*directory.glob("*.auto.tfvars"), *directory.glob("*.auto.tfvars.json")])
    for path in [path for path in files if path.is_file()] + [directory / name for name in var_files]:
        values |= _read(path, "values file")
    unset = [(name, file) for name, (file, _body) in declared.items() if name not in values]
    if unset:
        pattern = r'\s*variable\s+"{}"\s*\{{'
        errors = [
            _diagnostic("required_variable", directory / file, pattern, name, variable=name) for name, file in unset
        ]
        raise PlanError("\n".join(errors))
    return {name: value for name, value in values.items() if name in declared}


def _changes(directory: Path, documents: dict, values: dict, state: dict, provider: Any) -> tuple[list, list]:
    """What the plan does to each resource, against the state as the provider reads it now; and what drifted."""
    configured = {
        f"{kind}.{name}": (file, _flatten(_evaluate(body, values, {})))
        for file, document in documents.items()
        for kind, named in _blocks(document, "resource")
        for name, body in named.items()
        if _expression(body.get("count", 1), values, {}) != 0  # `count = 0`: no instance
    }
    changes, drifts, refreshed = [], [], {}
    for address, resource in state.items():
        if (now := provider.read(resource.id)) is not None:
            current = resource.attributes | {path: value for path, value in now.items() if path in resource.attributes}
            refreshed[address] = Resource(resource.id, current)
            if drifted := _differences(resource.attributes, current):
                drifts.append(Change(address, "update", resource.attributes, current, resource.id, drifted))
    for address, (file, after) in configured.items():
        if address not in refreshed:
            changes.append(Change(address, "create", after=after))
        elif changed := _differences(before := refreshed[address].attributes, after):
            if shrunk := _shrunk_disk(before, after, changed):  # the vsphere provider refuses it at plan time
                (kind, name), pattern = address.split("."), r'\s*resource\s+"{}"\s+"{}"'
                fields = {"type": kind, "name": name, "address": address, **shrunk}
                raise PlanError(_diagnostic("disk_shrunk", directory / file, pattern, kind, name, **fields))
            forcing = [path for path in changed if path.startswith("clone")]  # the vsphere provider's ForceNew
            action = "replace" if forcing else "update"
            changes.append(Change(address, action, before, after, refreshed[address].id, changed, forcing))
    gone = [(address, old) for address, old in refreshed.items() if address not in configured]
    return changes + [Change(address, "delete", old.attributes, id=old.id) for address, old in gone], drifts


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
        if key in ("count", "lifecycle"):  # meta-arguments, not attributes
            continue
        if key == "dynamic":
            for name, dynamic in _blocks({"dynamic": raw}, "dynamic"):
                items = _expression(dynamic["for_each"], values, each) or []
                content = dynamic["content"][0] if isinstance(dynamic["content"], list) else dynamic["content"]
                pairs = enumerate(items) if isinstance(items, list) else items.items()
                attributes[name] = [_evaluate(content, values, {**each, name: pair}) for pair in pairs]
        elif _is_blocks(raw):
            attributes[key] = [_evaluate(item, values, each) for item in raw]
        else:
            attributes[key] = _expression(raw, values, each)
    return attributes


def _expression(raw: Any, values: dict[str, Any], each: dict[str, tuple[Any, Any]]) -> Any:
    """A literal, a whole `${var.x}` / `${disk.value.x}` / `${disk.key}` (its value, of any type), or a string with
    such references inside (substituted as text). Anything else stays as written."""

    def resolve(match: re.Match) -> tuple[bool, Any]:
        root, path = match[1], match[2]
        if root == "var":
            return path in values, values.get(path)
        key, item = each.get(root, (None, {}))
        if root not in each or path in ("key", "value"):
            return root in each, key if path == "key" else item
        return isinstance(item, dict) and path[6:] in item, item.get(path[6:]) if isinstance(item, dict) else None

    if not isinstance(raw, str):
        return raw
    if (whole := _REFERENCE.fullmatch(raw)) and (found := resolve(whole))[0]:
        return found[1]
    return _REFERENCE.sub(lambda match: str(found[1]) if (found := resolve(match))[0] else match[0], raw)


def _is_blocks(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Attribute paths -> leaf values: `num_cpus`, `disk[0].size`, `clone[0].customize[0].domain`."""
    if isinstance(value, dict):
        return {path: leaf for key, item in value.items() for path, leaf in _flatten(item, f"{prefix}.{key}").items()}
    if _is_blocks(value):
        return {path: leaf for i, item in enumerate(value) for path, leaf in _flatten(item, f"{prefix}[{i}]").items()}
    return {prefix.lstrip("."): value}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def _shrunk_disk(before: dict[str, Any], after: dict[str, Any], changed: list[str]) -> dict[str, Any] | None:
    """The label, old and new size of the first disk the change would shrink, if any."""
    for path in filter(_DISK_SIZE.fullmatch, changed):
        old, new = before.get(path), after.get(path)
        if all(isinstance(size, int) and not isinstance(size, bool) for size in (old, new)) and new < old:
            return {
                "label": after.get(path.replace("size", "label")) or f"disk{path[5 : path.index(']')]}",
                "old": old,
                "new": new,
            }
    return None


def _diagnostic(key: str, path: Path, pattern: str, *labels: str, **fields: Any) -> str:
    """Terraform's diagnostic `key`, at the first line of `path` matching `pattern` (its `{}`: the `labels`)."""
    lines, pattern = path.read_text(encoding="utf-8").splitlines(), pattern.format(*map(re.escape, labels))
    line = next((number for number, found in enumerate(lines, 1) if re.match(pattern, found)), 1)
    return text(key, file=path.name, line=line, source_line=f"{line:4d}: {lines[line - 1] if lines else ''}", **fields)


def _plan_output(changes: list[Change], drifts: list[Change]) -> str:
    """The plan as `terraform plan -no-color` prints it: drift, the symbols, each change, the summary line."""
    if not changes:
        return text("no_changes")
    symbols = TEXTS["action_symbols"]
    drifted = "".join(_resource(drift, "drift") for drift in drifts)
    output = text("drift_intro") + drifted + text("drift_outro") if drifts else ""
    output += text("plan_intro") + "".join(f"{symbols[action]}\n" for action in _ORDER if _count(changes, action))
    output += text("plan_actions") + "".join(_resource(change, change.action) for change in changes)
    add, change, destroy = (
        _count(changes, *actions) for actions in (("create", "replace"), ("update",), ("delete", "replace"))
    )
    return output + text("plan_summary", add=add, change=change, destroy=destroy)


def _count(changes: list[Change], *actions: str) -> int:
    return sum(change.action in actions for change in changes)


def _resource(change: Change, template: str) -> str:
    """One resource's block: every attribute of a created (`+`) or destroyed (`-`) one; what changes in an updated
    one (`~`, `# forces replacement`), its id and name, the rest counted as hidden."""
    before, after = {"id": change.id, **change.before}, {"id": change.id, **change.after}
    changed, lines, hidden = {*change.changed}, [], 0
    if change.action in ("create", "replace"):
        after["id"], changed = _UNKNOWN, changed | {"id"}
    for path in sorted(before.keys() | after.keys()):
        old, new = _value(before.get(path)), _value(after.get(path))
        if change.action in ("create", "delete"):
            shown = (before if change.action == "delete" else after).get(path) is not None
            lines += [("-", path, f"{old} -> null") if change.action == "delete" else ("+", path, new)] * shown
        elif path in changed:
            lines.append(("~", path, f"{old} -> {new}" + " # forces replacement" * (path in change.forcing)))
        elif path in ("id", "name"):
            lines.append((" ", path, new))
        else:
            hidden += 1
    width = max((len(path) for _symbol, path, _value in lines), default=0)
    attributes = "".join(f"      {symbol} {path.ljust(width)} = {value}\n" for symbol, path, value in lines)
    attributes += f"        # ({hidden} unchanged attribute{'s' * (hidden > 1)} hidden)\n" if hidden else ""
    kind, name = change.address.split(".")
    return text(f"resource_{template}", address=change.address, type=kind, name=name, attributes=attributes)


def _value(value: Any) -> str:
    return "(known after apply)" if value is _UNKNOWN else json.dumps(value, ensure_ascii=False)
