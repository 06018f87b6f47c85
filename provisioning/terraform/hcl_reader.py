"""Reading HCL documents as python-hcl2 gives them: blocks, their labels, the variables an expression uses, and the
type of a literal value.

python-hcl2 8 keeps quotes around strings and labels ('"vsphere"') and marks blocks with __is_block__; version 7
drops both. Expressions are "${...}" in both. The helpers below accept either.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import hcl2

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# python-hcl2 8.x serializes with module-level default `SerializationContext` objects that it mutates and restores
# around nested expressions: two threads parsing at once can leave one of them set for good (a bare `var.x` then
# reads without its `${}`). Every parse in this process takes one lock, kept on the hcl2 module so that any other
# reader in the process (the tests' Atlantis double, a server thread) can take the same one without importing vmprov.
HCL2_LOCK: threading.Lock = hcl2.__dict__.setdefault("_serialization_lock", threading.Lock())


def parse_hcl(text: str) -> dict[str, Any]:
    """hcl2.loads(), working around python-hcl2's handling of the `$${` and `%%{` escapes.

    python-hcl2 fails on an escaped `$${` or `%%{` that is not followed by a complete expression and a `}`
    (amplify-education/python-hcl2#238; seen with 8.1.4), which Terraform accepts. vmprov's own values files
    contain such text whenever a user typed `${`. Both escapes stand for literal text, which is never a variable
    reference or a name, so they are blanked out before parsing; nothing read from the result depends on them.
    """
    with HCL2_LOCK:
        return hcl2.loads(text.replace("$${", "__{").replace("%%{", "__{"))


def unquoted_label(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def is_meta_key(key: str) -> bool:
    """Whether `key` is python-hcl2's bookkeeping (__is_block__, __comments__, __start_line__, ...), not HCL."""
    return key.startswith("__")


def blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def labelled_blocks(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """The (label, body) pairs of blocks with one label, e.g. `variable "x" {}` or `provider "vsphere" {}`."""
    pairs = []
    for block in blocks(value):
        for key, body in block.items():
            if not is_meta_key(key) and isinstance(body, dict):
                pairs.append((unquoted_label(key), body))
    return pairs


def _template_refs(text: str, start: int, refs: set[str], closing: str | None = None) -> int:
    """Collect `var.NAME` from the interpolations and directives of template text (a string's content); literal
    text, `$${` and `%%{` count for nothing. Returns the index after `closing` (or the end of the text)."""
    index = start
    while index < len(text):
        char = text[index]
        if closing and char == closing:
            return index + 1
        if char == "\\":
            index += 2
        elif char in "$%" and text.startswith(char + "{", index + 1):
            index += 3
        elif char in "$%" and text.startswith("{", index + 1):
            index = _expression_refs(text, index + 2, refs)
        else:
            index += 1
    return index


def _expression_refs(text: str, start: int, refs: set[str]) -> int:
    """Collect `var.NAME` from an expression up to its closing brace; returns the index after that brace."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _template_refs(text, index + 1, refs, closing='"')
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index + 1
            depth -= 1
        elif char.isalpha() or char == "_":
            word = _IDENT.match(text, index)
            end = word.end()
            # `x.var.y` is an attribute called var, not a variable reference.
            follows_dot = index > 0 and text[index - 1] == "."
            if word.group() == "var" and not follows_dot and text.startswith(".", end):
                name = _IDENT.match(text, end + 1)
                if name:
                    refs.add(name.group())
                    end = name.end()
            index = end
            continue
        index += 1
    return index


def variable_references(document: Any) -> set[str]:
    """Names of every `var.NAME` used anywhere in a parsed document: attributes, block labels and keys, strings,
    interpolations, dynamic blocks, for expressions. Comments are not looked at."""
    refs: set[str] = set()
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if is_meta_key(key):
                    continue
                _template_refs(key, 0, refs)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            _template_refs(item, 0, refs)
    return refs


def _is_expression(text: str) -> bool:
    return text.startswith("${") and text.endswith("}")


def literal_type(value: Any, hcl_syntax: bool = True) -> str | None:
    """The Terraform type constraint a literal value shows, as Terraform infers it for a variable declared
    without a type: "string", "number", "bool", "list(T)" for elements of one type, "map(T)" for values of one
    type, "object({ a = T, b = U })" otherwise. None when the value shows no type: null, an empty collection, a
    list mixing types, an object whose keys are not names, or an expression (a values file holds literals only).

    `value` is a values file's value as python-hcl2 (`hcl_syntax`) or the json module gives it.
    """
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if hcl_syntax and _is_expression(value):
            # python-hcl2 hands some number literals (1e3) over as expressions.
            try:
                float(value[2:-1])
            except ValueError:
                return None
            return "number"
        return "string"
    if isinstance(value, list):
        types = {literal_type(item, hcl_syntax) for item in value}
        if len(types) != 1 or None in types:
            return None
        return f"list({types.pop()})"
    if isinstance(value, dict):
        items = {unquoted_label(key): item for key, item in value.items() if not is_meta_key(key)}
        types = {key: literal_type(item, hcl_syntax) for key, item in items.items()}
        if not types or None in types.values():
            return None
        if len(set(types.values())) == 1:
            return f"map({next(iter(types.values()))})"
        if not all(_IDENT.fullmatch(key) for key in types):
            return None
        return "object({ " + ", ".join(f"{key} = {kind}" for key, kind in sorted(types.items())) + " })"
    return None
