"""Terraform's human output for the double's plans and applies: the texts of answers/terraform-output.json, and a
resource's attribute lines as Terraform's plan renderer lays them out.

- a created resource lists every attribute it sets (`+ name = "web01"`, `id` known after apply);
- an updated one shows what changes (`~ num_cpus = 2 -> 4`), its `id` and `name`, and counts the rest as hidden;
- a replaced one (`-/+`) marks the attributes that force the replacement;
- a destroyed one lists what goes (`- name = "web01" -> null`);
- drift (what changed outside Terraform since the last apply) comes first, in its own note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from string import Template
from typing import TYPE_CHECKING, Any

from devtools.atlantis.fixtures import fixture

if TYPE_CHECKING:
    from devtools.atlantis.terraform import ResourceChange

_ACTION_ORDER = ("create", "update", "delete", "replace")
_IDENTIFYING = ("id", "name")


def text(key: str, /, **fields: Any) -> str:
    """One of Terraform's texts, its `$placeholders` filled."""
    return Template(fixture("terraform-output")[key]).substitute(fields)


def plan_output(changes: list[ResourceChange], drifts: list[ResourceChange]) -> str:
    """The plan as `terraform plan` prints it: the drift note, the symbols, each change, the summary line."""
    if not changes:
        return text("no_changes")
    output = ""
    if drifts:
        output += text("drift_intro") + "".join(_resource(drift, "resource_drifted") for drift in drifts)
        output += text("drift_outro")
    actions = {change.action for change in changes}
    symbols = fixture("terraform-output")["action_symbols"]
    output += text("plan_intro") + "".join(f"{symbols[action]}\n" for action in _ACTION_ORDER if action in actions)
    output += text("plan_actions")
    templates = {
        "create": "resource_created",
        "update": "resource_updated",
        "replace": "resource_replaced",
        "delete": "resource_destroyed",
    }
    output += "".join(_resource(change, templates[change.action]) for change in changes)
    count = {action: sum(change.action == action for change in changes) for action in _ACTION_ORDER}
    return output + text(
        "plan_summary",
        add=count["create"] + count["replace"],
        change=count["update"],
        destroy=count["delete"] + count["replace"],
    )


def _resource(change: ResourceChange, template: str) -> str:
    if change.action == "create":
        lines = _all_lines({"id": None, **(change.after or {})}, 6, "+", "")
    elif change.action == "delete":
        lines = _all_lines({"id": change.resource_id, **(change.before or {})}, 6, "-", " -> null")
    else:
        before = {"id": change.resource_id, **(change.before or {})}
        after = {"id": change.resource_id, **(change.after or {})}
        changed, forcing = set(change.changed), set(change.forcing)
        if change.action == "replace":
            after["id"] = None
            changed.add("id")
        lines = _changed_lines(before, after, "", 6, changed, forcing)
    attributes = "".join(f"{line}\n" if line else "\n" for line in lines)
    return text(template, address=change.address, type=change.type, name=change.name, attributes=attributes)


def _value(value: Any) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def _is_blocks(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _split(*attributes: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(attribute names, block names) of one or more bodies, each sorted."""
    keys = sorted({key for body in attributes for key in body})
    blocks = [key for key in keys if any(_is_blocks(body.get(key)) for body in attributes)]
    return [key for key in keys if key not in blocks], blocks


def _all_lines(attributes: dict[str, Any], indent: int, symbol: str, suffix: str) -> list[str]:
    """Every attribute and block of a created (`+`) or destroyed (`-`) resource; nulls are left out, as Terraform
    leaves them, except a created resource's id, which is known after apply."""
    pad = " " * indent
    names, blocks = _split(attributes)
    shown = [name for name in names if attributes[name] is not None or (name == "id" and symbol == "+")]
    width = max((len(name) for name in shown), default=0)
    lines = []
    for name in shown:
        value = "(known after apply)" if attributes[name] is None else _value(attributes[name])
        lines.append(f"{pad}{symbol} {name.ljust(width)} = {value}{suffix}")
    for name in blocks:
        for item in attributes[name]:
            lines += ["", f"{pad}{symbol} {name} {{", *_all_lines(item, indent + 4, symbol, suffix), f"{pad}  }}"]
    return lines


def _changed_lines(
    before: dict[str, Any], after: dict[str, Any], prefix: str, indent: int, changed: set[str], forcing: set[str]
) -> list[str]:
    """An updated (or replaced) body: changed attributes `~ old -> new`, its id and name, the rest counted."""
    pad = " " * indent
    names, blocks = _split(before, after)
    width = max((len(name) for name in names), default=0)
    lines, hidden = [], 0
    for name in names:
        path = f"{prefix}.{name}" if prefix else name
        if path in changed:
            new = "(known after apply)" if name == "id" and after.get(name) is None else _value(after.get(name))
            note = " # forces replacement" if path in forcing else ""
            lines.append(f"{pad}~ {name.ljust(width)} = {_value(before.get(name))} -> {new}{note}")
        elif not prefix and name in _IDENTIFYING:
            lines.append(f"{pad}  {name.ljust(width)} = {_value(after.get(name))}")
        else:
            hidden += 1
    if hidden:
        lines.append(f"{pad}  # ({hidden} unchanged attribute{'s' if hidden > 1 else ''} hidden)")
    hidden_blocks = 0
    for name in blocks:
        olds, news = before.get(name) or [], after.get(name) or []
        for index in range(max(len(olds), len(news))):
            path = f"{prefix}.{name}[{index}]" if prefix else f"{name}[{index}]"
            if not _touches(path, changed):
                hidden_blocks += 1
                continue
            old = olds[index] if index < len(olds) else {}
            new = news[index] if index < len(news) else {}
            inner = _changed_lines(old, new, path, indent + 4, changed, forcing)
            lines += ["", f"{pad}~ {name} {{", *inner, f"{pad}  }}"]
    if hidden_blocks:
        lines += ["", f"{pad}  # ({hidden_blocks} unchanged block{'s' if hidden_blocks > 1 else ''} hidden)"]
    return lines


def _touches(path: str, changed: Iterable[str]) -> bool:
    return any(item == path or item.startswith((f"{path}.", f"{path}[")) for item in changed)
