"""Reading a Terraform directory: the blocks its *.tf files declare and use, the values files Terraform loads and
what they set, and where the directory sits in its Git repository (which the backend's state key is made from)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from provisioning.terraform.hcl_reader import blocks, is_meta_key, labelled_blocks, parse_hcl, variable_references

# --- What the directory holds ------------------------------------------------------------------------------------


@dataclass
class DirectoryContents:
    """Everything found in the directory's *.tf files, by file name."""

    declared: dict[str, list[str]] = field(default_factory=dict)
    with_default: set[str] = field(default_factory=set)
    referenced: dict[str, list[str]] = field(default_factory=dict)
    vsphere_required: list[str] = field(default_factory=list)
    required_providers: list[str] = field(default_factory=list)
    required_version: list[str] = field(default_factory=list)
    provider_blocks: list[str] = field(default_factory=list)
    backends: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _read_tf(inventory: DirectoryContents, file_name: str, document: dict[str, Any]) -> None:
    for name, body in labelled_blocks(document.get("variable")):
        inventory.declared.setdefault(name, []).append(file_name)
        if "default" in body:
            inventory.with_default.add(name)
    for name in variable_references(document):
        inventory.referenced.setdefault(name, []).append(file_name)
    for name, body in labelled_blocks(document.get("provider")):
        if name == "vsphere" and "alias" not in body:
            inventory.provider_blocks.append(file_name)
    for terraform in blocks(document.get("terraform")):
        for providers in blocks(terraform.get("required_providers")):
            inventory.required_providers.append(file_name)
            if "vsphere" in providers:
                inventory.vsphere_required.append(file_name)
        if "required_version" in terraform:
            inventory.required_version.append(file_name)
        for kind, _ in labelled_blocks(terraform.get("backend")):
            inventory.backends.append((kind, file_name))
        if blocks(terraform.get("cloud")):
            inventory.backends.append(("cloud", file_name))


def read_directory(directory: Path) -> DirectoryContents:
    inventory = DirectoryContents()
    for path in sorted(directory.glob("*.tf")):
        try:
            document = parse_hcl(path.read_text(encoding="utf-8"))
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            inventory.unreadable.append(f"{path.name} cannot be parsed: {first_line(error)}")
            continue
        _read_tf(inventory, path.name, document)
    for path in sorted(directory.glob("*.tf.json")):
        # Terraform loads these too; vmprov does not read JSON syntax, so it could add a duplicate.
        inventory.unreadable.append(f"{path.name} is Terraform JSON syntax, which vmprov does not inspect")
    return inventory


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class Value:
    """A variable's value in a values file, as python-hcl2 (hcl_syntax) or the json module gives it."""

    file_name: str
    value: Any
    hcl_syntax: bool


def values_in_file(path: Path) -> dict[str, Value]:
    """The top-level values a values file sets (HCL or JSON)."""
    text = path.read_text(encoding="utf-8")
    hcl_syntax = not path.name.endswith(".json")
    if hcl_syntax:
        document = parse_hcl(text)
    else:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    return {key: Value(path.name, value, hcl_syntax) for key, value in document.items() if not is_meta_key(key)}


def loaded_values_files(directory: Path, var_files: Sequence[str]) -> list[str]:
    """The values files Terraform loads, in its order: a later file's value wins."""
    names = [name for name in ("terraform.tfvars", "terraform.tfvars.json") if (directory / name).is_file()]
    # Terraform takes the *.auto.tfvars and *.auto.tfvars.json files together, in lexical order.
    names += sorted(
        path.name
        for pattern in ("*.auto.tfvars", "*.auto.tfvars.json")
        for path in directory.glob(pattern)
        if path.is_file()
    )
    names += [name for name in var_files if name not in names]
    return names


# --- Where the directory sits in its repository: the backend's state key ----------------------------------------

# A Git hook (pre-commit) may run with these set for the repository it runs in; they would make git answer for the
# current directory instead of finding the work tree around the directory asked about.
_GIT_LOCATION_VARIABLES = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_PREFIX"})


def repository_root(directory: Path) -> Path | None:
    """The top level of the Git work tree that holds `directory`; None outside one (or without git)."""
    environment = {name: value for name, value in os.environ.items() if name not in _GIT_LOCATION_VARIABLES}
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=directory,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


class NoStateKey(Exception):
    """Why no state key can be made for a directory."""


def path_in_repository(directory: Path, repo_root: Path | None) -> PurePosixPath:
    root = repo_root if repo_root is not None else repository_root(directory)
    if root is None:
        raise NoStateKey(
            "it is not inside a Git repository: pass --repo-root (the root of the repository Atlantis plans), "
            "since the state key is made from the directory's path below that root"
        )
    try:
        relative = directory.resolve().relative_to(Path(root).resolve())
    except ValueError:
        raise NoStateKey(f"it is not below the repository root {root}") from None
    if not relative.parts:
        raise NoStateKey("it is the repository root itself, and the state key is made from the path below the root")
    return PurePosixPath(relative.as_posix())
