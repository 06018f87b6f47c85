"""Day-2 edits of a delivered VM's directory as it stands on the base branch: the values file changed in place (a
new size, new notes), and the tombstone that makes Terraform destroy the VM.

A change never renders today's templates again: an old directory keeps its own `machine.tf`, `variables.tf` and
`providers.tf`, since re-rendering them could bring new settings onto an old VM (hot add, say, which would restart it
on its first resize). Only the lines of the values asked for are rewritten, each value through `hcl_value()`, and the
file is read back: it must parse, and differ from the original in exactly those values (a comment after a value stays).

A decommission keeps the directory's providers, backend, variables and values, and replaces the file that declares the
VM's resource with a comment: a normal plan then destroys the VM ("0 to add, 0 to change, 1 to destroy"). Removing
the directory instead would make Atlantis plan nothing for it and leave the VM and its state behind.

Plain data in and out (file name -> content): no models, no Git.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provisioning.terraform.hcl import hcl_value
from provisioning.terraform.hcl_reader import blocks, is_meta_key, labelled_blocks, parse_hcl

VM_RESOURCE = ("vsphere_virtual_machine", "vm")
# Request field -> the variable of vmprov's values file that holds it (the first disk's size is inside `disks`).
VALUE_NAMES = {"num_cpus": "num_cpus", "memory_mb": "memory_mb", "notes": "annotation"}


class EditRefused(ValueError):
    """The directory cannot be edited safely as asked; the message says why, for people."""


def values_file_of(files: Mapping[str, str], preferred: str) -> str:
    """The directory's values file: `preferred` (the configured name) when there, else its one `*.tfvars` file."""
    if preferred in files:
        return preferred
    candidates = sorted(name for name in files if name.endswith(".tfvars"))
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise EditRefused(f"the directory has no single values file to edit ({preferred} not there; .tfvars: {found})")
    return candidates[0]


def _parsed(text: str, what: str) -> dict[str, Any]:
    try:
        return parse_hcl(text)
    except Exception as error:  # python-hcl2 raises its parser's own exception types
        raise EditRefused(f"{what} does not parse: {str(error).splitlines()[0]}") from None


def _literal_value(name: str, literal: str) -> Any:
    """`literal` as the parser reads it back (strings stay in python-hcl2's form, so they compare like for like)."""
    return parse_hcl(f"{name} = {literal}\n")[name]


def edit_values(text: str, changes: Mapping[str, Any]) -> str:
    """`text` (a values file) with the variables in `changes` (num_cpus, memory_mb, notes, disk_size_gb: the first
    disk's size) set to their new values, every other byte kept. Raises EditRefused when a value is not where vmprov
    writes it (one `name = value` line; `size = N` in the first object of `disks = [`), or when the result reads
    back as anything else than the original with exactly these values changed."""
    before = _parsed(text, "the values file")
    expected = dict(before)
    edited = text
    for field, value in changes.items():
        if field == "disk_size_gb":
            edited = _edit_first_disk(edited, value)
            disks = [dict(disk) for disk in before.get("disks") or []]
            if not disks:
                raise EditRefused("the values file lists no disks")
            disks[0]["size"] = value
            expected["disks"] = disks
            continue
        name = VALUE_NAMES[field]
        literal = hcl_value(value)
        setting = re.compile(rf"^[ \t]*{name}[ \t]*=", re.MULTILINE)
        if len(setting.findall(edited)) != 1:
            raise EditRefused(f"{name} is set on {len(setting.findall(edited))} lines of the values file, not on one")
        shape = _STRING if isinstance(value, str) else _NUMBER
        line = re.compile(rf"^([ \t]*{name}[ \t]*=[ \t]*){shape}(?=[ \t]*(?:(?:#|//).*)?$)", re.MULTILINE)
        if line.search(edited) is None:
            raise EditRefused(f"{name} is not one literal on its own line of the values file")
        edited = line.sub(lambda match, literal=literal: match.group(1) + literal, edited)
        expected[name] = _literal_value(name, literal)
    after = _parsed(edited, "the edited values file")
    if _values(after) != _values(expected):
        after, expected = _values(after), _values(expected)
        wrong = sorted(name for name in set(after) | set(expected) if after.get(name) != expected.get(name))
        raise EditRefused(f"the edit would change more than was asked: {', '.join(wrong)}")
    return edited


def _values(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if not is_meta_key(name)}


# A value as vmprov writes it: a whole number, or one quoted string (escapes included) on one line.
_NUMBER = r"(-?\d+)"
_STRING = r'("(?:[^"\\\n]|\\.)*")'
_DISKS = re.compile(r"^[ \t]*disks[ \t]*=[ \t]*\[", re.MULTILINE)
_FIRST_SIZE = re.compile(r"(\{[^{}]*?\bsize\s*=\s*)(\d+)")


def _edit_first_disk(text: str, size_gb: int) -> str:
    start = _DISKS.search(text)
    if start is None:
        raise EditRefused("the values file sets no disks = [ ... ] list")
    found = _FIRST_SIZE.search(text, start.end())
    if found is None:
        raise EditRefused("the first disk of the values file has no size = N")
    return text[: found.start(2)] + str(int(size_gb)) + text[found.end(2) :]


def tombstone(files: Mapping[str, str], request_id: int) -> dict[str, str]:
    """The directory's files with the VM's resource removed: the file that declares it (and nothing else) becomes a
    comment saying why. Raises EditRefused when no file, or more than one, declares it, or that file holds more."""
    holders = []
    for name, text in files.items():
        if not name.endswith(".tf"):
            continue
        document = _parsed(text, name)
        resources = [
            (kind, label)
            for block in blocks(document.get("resource"))
            for kind, named in labelled_blocks(block)
            for label, _body in labelled_blocks(named)
        ]
        if VM_RESOURCE in resources:
            others = [key for key in document if not is_meta_key(key) and key != "resource"]
            if len(resources) != 1 or others:
                raise EditRefused(
                    f"{name} declares more than the VM ({', '.join(others + [f'{k}.{n}' for k, n in resources])}): "
                    "vmprov cannot remove the VM alone; a person decommissions it"
                )
            holders.append(name)
    if len(holders) != 1:
        raise EditRefused(f"{len(holders)} files declare {'.'.join(VM_RESOURCE)}: vmprov expects exactly one")
    comment = (
        f"# Decommissioned by vmprov request #{request_id}: the VM's resource is gone from this directory, so that\n"
        "# Terraform destroys the VM. Providers, backend, variables and values stay: the destroy needs them to be\n"
        "# planned and applied. vmprov removes this directory once the VM is gone from vCenter.\n"
    )
    return {**files, holders[0]: comment}
