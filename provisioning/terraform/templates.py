"""The files of the `terraform_templates` package, and the standalone templates cut into pieces.

The `*.j2` files are the sources of every render. `providers.tf.template` and `variables.tf.template` (which
`ensure_config_structure` copies into directories that lack them) are those renders without the per-request part,
i.e. without the backend block; tests fail when they drift, and `UPDATE_GOLDEN=1` rewrites them.

The files are read through importlib.resources, so they are found when vmprov is installed as a package too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from provisioning.terraform.hcl_reader import parse_hcl, variable_references

TEMPLATES: Traversable = files("terraform_templates")
PROVIDERS_TEMPLATE = "providers.tf.template"
VARIABLES_TEMPLATE = "variables.tf.template"

# What the templates pin: the vsphere provider and the Terraform version.
PROVIDER_SOURCE = "hashicorp/vsphere"
PROVIDER_VERSION = "~> 2.4.0"
REQUIRED_TERRAFORM_VERSION = ">= 1.0.0"


def template_text(name: str) -> str:
    """The text of one file of `terraform_templates`."""
    return TEMPLATES.joinpath(name).read_text(encoding="utf-8")


# --- The standalone templates, cut into the pieces that can be added one by one -----------------------------------

_BLOCK_START = re.compile(r"[a-z_]+( \"[^\"]*\")* \{")
_VARIABLE_START = re.compile(r'variable "([^"]+)" \{')


@dataclass(frozen=True)
class TemplatePiece:
    kind: str  # "required_providers" | "required_version" | "provider" | "variable"
    name: str
    text: str
    refs: frozenset[str]
    has_default: bool = False

    @property
    def description(self) -> str:
        if self.kind == "variable":
            return f'variable "{self.name}"'
        if self.kind == "provider":
            return f'provider "{self.name}"'
        if self.kind == "required_providers":
            return f"required_providers {self.name}"
        return "required_version"


def _chunks(lines: list[str], indent: str) -> list[list[str]]:
    """Items of an fmt'd body at `indent`, each with the comment lines right above it. A block item ends at the
    closing brace at the same indent; an attribute is one line."""
    chunks: list[list[str]] = []
    pending: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if current is not None:
            current.append(line)
            if line == indent + "}":
                chunks.append(current)
                current = None
        elif not line.strip():
            pending = []
        elif line.startswith(indent + "#"):
            pending.append(line)
        elif line.endswith("{") and _BLOCK_START.fullmatch(line[len(indent) :]):
            current = [*pending, line]
            pending = []
        else:
            chunks.append([*pending, line])
            pending = []
    if current is not None:
        raise ValueError(f"unclosed block in template: {current[-1]!r}")
    return chunks


def _piece(kind: str, name: str, lines: list[str], has_default: bool = False) -> TemplatePiece:
    text = "\n".join(lines) + "\n"
    return TemplatePiece(kind, name, text, frozenset(variable_references(_parse_piece(kind, text))), has_default)


def _parse_piece(kind: str, text: str) -> dict[str, Any]:
    # Items of the terraform block are not valid at top level; parse them inside one.
    return parse_hcl("terraform {\n" + text + "}\n" if kind.startswith("required_") else text)


def providers_template_pieces() -> list[TemplatePiece]:
    """providers.tf.template cut into: required_providers vsphere, required_version, provider "vsphere"."""
    pieces = []
    for chunk in _chunks(template_text(PROVIDERS_TEMPLATE).splitlines(), ""):
        head = next(line for line in chunk if not line.startswith("#"))
        if head == "terraform {":
            for item in _chunks(chunk[chunk.index(head) + 1 : -1], "  "):
                kind = next(line.split()[0] for line in item if not line.lstrip().startswith("#"))
                pieces.append(_piece(kind, "vsphere" if kind == "required_providers" else "", item))
        elif head == 'provider "vsphere" {':
            pieces.append(_piece("provider", "vsphere", chunk))
        else:
            raise ValueError(f"unexpected block in {PROVIDERS_TEMPLATE}: {head}")
    return pieces


def variables_template_pieces() -> list[TemplatePiece]:
    """variables.tf.template cut into one piece per variable declaration (with its comment lines)."""
    pieces = []
    for chunk in _chunks(template_text(VARIABLES_TEMPLATE).splitlines(), ""):
        head = next(line for line in chunk if not line.startswith("#"))
        match = _VARIABLE_START.fullmatch(head)
        if not match:
            raise ValueError(f"unexpected block in {VARIABLES_TEMPLATE}: {head}")
        has_default = any(line.split("=")[0].strip() == "default" for line in chunk if "=" in line)
        pieces.append(_piece("variable", match.group(1), chunk, has_default))
    return pieces


def providers_text(pieces: Iterable[TemplatePiece]) -> str:
    """HCL for the chosen providers pieces, in template order: terraform block items, then the provider block."""
    pieces = list(pieces)
    terraform_items = "".join(piece.text for piece in pieces if piece.kind.startswith("required_"))
    parts = [f"terraform {{\n{terraform_items}}}\n"] if terraform_items else []
    parts += [piece.text for piece in pieces if piece.kind == "provider"]
    return "\n".join(parts)


def variables_text(pieces: Iterable[TemplatePiece]) -> str:
    return "\n".join(piece.text for piece in pieces)
