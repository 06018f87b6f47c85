"""The double's answers: `answers/<name>.json`, each transcribed from Atlantis's (or Terraform's) source at a release
its `source` names (repository, tag, commit, file, function). Where a later release answers differently, `variants`
lists `{"since": "0.45.0", "source": ..., <the keys it changes>}`. `$placeholders` in strings are filled by `fill`."""

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


def answer(name: str, version: str = "0.44.0", **fields: Any) -> dict[str, Any]:
    """The fixture `name` as Atlantis `version` answers it, its body, error and log filled from `fields`."""
    found = {key: value for key, value in fixture(name).items() if key != "variants"}
    for variant in fixture(name).get("variants", []):
        if _release(version) >= _release(variant["since"]):
            found |= {key: value for key, value in variant.items() if key != "since"}
    return {key: fill(value, fields) if key in ("body", "error", "log") else value for key, value in found.items()}


def fill(value: Any, fields: dict[str, Any]) -> Any:
    """A deep copy of `value` with every `$placeholder` in its strings filled (a missing field raises KeyError)."""
    if isinstance(value, dict):
        return {key: fill(item, fields) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, fields) for item in value]
    return Template(value).substitute(fields) if isinstance(value, str) and "$" in value else value


def _release(version: str) -> tuple[int, ...]:
    """ "0.45" as (0, 45, 0)."""
    return tuple(([int(part) for part in re.findall(r"\d+", version)] + [0, 0, 0])[:3])
