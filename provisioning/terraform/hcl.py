"""HCL literals: the only way a value reaches a rendered Terraform file.

Every string goes through `hcl_string()`, which escapes what could end the string or start an interpolation, so a
user's text can never become HCL syntax. The other helpers build numbers, booleans, tuples and objects on it, and
`aligned_attributes()` lines attributes up the way `terraform fmt` does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control and format characters (incl. bidi overrides, zero-width characters, line/paragraph separators) are
# written as \u escapes: Terraform reads back the same character, and the file shows no invisible text.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def is_identifier(name: Any) -> bool:
    """Whether `name` can be an HCL attribute name or object key as it is (no quoting)."""
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


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
        if not is_identifier(key):
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
        if not is_identifier(name):
            raise ValueError(f"attribute name {name!r} is not an HCL identifier")
        if "\n" in literal:
            raise ValueError(f"attribute {name} must be a one-line literal")
    width = max((len(name) for name, _ in attributes), default=0)
    return [f"{name.ljust(width)} = {literal}" for name, literal in attributes]
