"""The Atlantis double's answers: fixtures transcribed from Atlantis's (and Terraform's) source at a named release.

Each `answers/<name>.json` holds a `source` (repository, tag, commit, file and function the answer was read from), the
answer itself (`status`, `body`, ...) and, where a later release answers differently, `variants`: a list of
`{"since": "0.45.0", "source": ..., <keys it changes>}`. Strings may hold `$placeholders`: `answer()` fills those of
`body`, `error` and `log`; `fill()` fills any other part.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

ANSWERS = Path(__file__).resolve().parent / "answers"


@cache
def fixture(name: str) -> dict[str, Any]:
    return json.loads((ANSWERS / f"{name}.json").read_text(encoding="utf-8"))


def version_tuple(version: str) -> tuple[int, int, int]:
    """A version as (major, minor, patch), missing parts 0: "0.45" is (0, 45, 0)."""
    major, minor, patch = ([int(part) for part in re.findall(r"\d+", version)] + [0, 0, 0])[:3]
    return major, minor, patch


def answer(name: str, version: str = "0.44.0", **fields: Any) -> dict[str, Any]:
    """The fixture `name` as the given Atlantis version answers it, its body, error and log filled from `fields`."""
    found = {key: value for key, value in fixture(name).items() if key != "variants"}
    for variant in fixture(name).get("variants", []):
        if version_tuple(version) >= version_tuple(variant["since"]):
            found.update({key: value for key, value in variant.items() if key != "since"})
    return {key: fill(value, fields) if key in ("body", "error", "log") else value for key, value in found.items()}


def fill(value: Any, fields: dict[str, Any]) -> Any:
    """`value` with every `$placeholder` in its strings replaced; a missing field raises KeyError. A deep copy:
    the cached fixtures stay untouched."""
    if isinstance(value, str):
        return Template(value).substitute(fields) if "$" in value else value
    if isinstance(value, dict):
        return {key: fill(item, fields) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, fields) for item in value]
    return value
