"""requirements/constraints.txt is the lock of pyproject.toml: one file for every supported Python, pinning each
dependency the project and its test extra declare to a version the declared range allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "constraints.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lock_pins() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if not line or line.lstrip().startswith("#"):
            continue
        pinned = Requirement(line)
        (specifier,) = pinned.specifier
        assert specifier.operator == "==", f"the lock pins exact versions only: {line}"
        pins[canonicalize_name(pinned.name)] = Version(specifier.version)
    return pins


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = lock_pins()
    outside = {}
    for text in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]:
        requirement = Requirement(text)
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            outside[text] = str(pinned or "not pinned")
    assert outside == {}, "pyproject.toml changed without the lock: update it (README, 'the lock')"


def test_lock_is_written_for_every_supported_python():
    # pip-compile, or uv without --universal, would pin for the one interpreter it ran on.
    command = next(line for line in LOCK.read_text().splitlines() if "pip compile" in line)
    oldest = re.fullmatch(r">=(3\.\d+)", PROJECT["requires-python"]).group(1)
    assert "--universal" in command.split()
    assert f"--python-version {oldest}" in command
