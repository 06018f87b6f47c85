"""What a VM's Terraform directory must hold before Atlantis can plan it, checked and completed.

`ensure_config_structure(path)` parses every `*.tf` file of one directory with python-hcl2 (so a comment that
mentions `provider "vsphere"` counts for nothing, and a provider block in `versions.tf` counts as much as one in
`providers.tf`), then:

- adds what is missing from `terraform_templates/providers.tf.template` (the vsphere entry of
  `required_providers`, `required_version`, the `provider "vsphere"` block) and from `variables.tf.template`
  (only the declarations the directory uses and lacks: Terraform refuses a variable declared twice, and a
  declared variable without a default would have to be given a value even when nothing uses it);
- never rewrites a file it did not write: when `providers.tf` / `variables.tf` already exist, the additions go to
  `vmprov_providers.tf` / `vmprov_variables.tf`;
- reports what it cannot fix: no `main.tf`/`machine.tf`, no values file, no backend, a variable used but declared
  nowhere (vmprov cannot guess its type), a required variable that no loaded values file sets, duplicates.

Values files count only when Terraform loads them: `terraform.tfvars`, `terraform.tfvars.json`, `*.auto.tfvars`,
`*.auto.tfvars.json`, plus the files Atlantis passes with `-var-file` (`var_files`, by default the
`VMPROV_TFVARS_FILE` setting when that names another file, e.g. `machine_inputs.tfvars`).

With `check=True` nothing is written. A second run after a fix finds nothing to do. The push of a request's
rendered files runs the check only: those files are complete by construction, so anything it would add is a bug to
report, not something to patch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioning.terraform.hcl_reader import blocks, is_meta_key, labelled_blocks, parse_hcl, variable_references
from provisioning.terraform.settings import DEFAULT_TFVARS_FILE, MACHINE_INPUTS_TFVARS_FILE, configured_tfvars_file
from provisioning.terraform.templates import (
    PROVIDER_SOURCE,
    PROVIDER_VERSION,
    TemplatePiece,
    providers_template_pieces,
    providers_text,
    variables_template_pieces,
    variables_text,
)

MAIN_FILES = ("main.tf", "machine.tf")
VALUES_FILES = (DEFAULT_TFVARS_FILE, MACHINE_INPUTS_TFVARS_FILE)
# Where additions go when the conventional file already exists (and belongs to someone else).
PROVIDERS_FILES = ("providers.tf", "vmprov_providers.tf")
VARIABLES_FILES = ("variables.tf", "vmprov_variables.tf")
OWN_FILES = frozenset({PROVIDERS_FILES[1], VARIABLES_FILES[1]})


@dataclass
class StructureReport:
    """What ensure_config_structure found in one directory, what is missing, and what it did (or would do)."""

    path: Path
    check: bool
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # Fixes: done, or (with check=True) to be done.
    actions: list[str] = field(default_factory=list)
    # Missing things vmprov cannot fix; a person has to.
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing left to do: no problem, and in check mode nothing to fix either."""
        return not self.problems and not (self.check and self.actions)

    def shortfall(self) -> str:
        """One line for an error message: what is missing, what cannot be fixed, what would be added."""
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)}")
        parts += self.problems
        if self.check:
            parts += [f"would {action}" for action in self.actions]
        return "; ".join(parts) or "nothing"

    def lines(self) -> list[str]:
        """The report as plain lines for people."""
        verb = "would" if self.check else "did"
        lines = [f"{self.path}:"]
        lines += [f"  found: {item}" for item in self.found]
        lines += [f"  missing: {item}" for item in self.missing]
        lines += [f"  {verb}: {item}" for item in self.actions]
        lines += [f"  problem: {item}" for item in self.problems]
        lines += [f"  note: {item}" for item in self.notes]
        if self.problems:
            lines.append("  result: cannot be fixed automatically")
        elif self.check and self.actions:
            lines.append("  result: incomplete (run without --check to fix)")
        elif self.actions:
            lines.append("  result: fixed")
        else:
            lines.append("  result: complete")
        return lines


# --- What the directory holds ------------------------------------------------------------------------------------


@dataclass
class _Inventory:
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


def _read_tf(inventory: _Inventory, file_name: str, document: dict[str, Any]) -> None:
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


def _inventory(directory: Path) -> _Inventory:
    inventory = _Inventory()
    for path in sorted(directory.glob("*.tf")):
        try:
            document = parse_hcl(path.read_text(encoding="utf-8"))
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            inventory.unreadable.append(f"{path.name} cannot be parsed: {_first_line(error)}")
            continue
        _read_tf(inventory, path.name, document)
    for path in sorted(directory.glob("*.tf.json")):
        # Terraform loads these too; vmprov does not read JSON syntax, so it could add a duplicate.
        inventory.unreadable.append(f"{path.name} is Terraform JSON syntax, which vmprov does not inspect")
    return inventory


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _values_file_names(path: Path) -> set[str]:
    """Top-level variable names a values file sets (HCL or JSON)."""
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".json"):
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    else:
        document = parse_hcl(text)
    return {key for key in document if not is_meta_key(key)}


def _loaded_values_files(directory: Path, var_files: Sequence[str]) -> list[str]:
    names = [name for name in ("terraform.tfvars", "terraform.tfvars.json") if (directory / name).is_file()]
    names += sorted(path.name for path in directory.glob("*.auto.tfvars") if path.is_file())
    names += sorted(path.name for path in directory.glob("*.auto.tfvars.json") if path.is_file())
    names += [name for name in var_files if name not in names]
    return names


# --- The check and the fix ----------------------------------------------------------------------------------------


def _default_var_files() -> list[str]:
    configured = configured_tfvars_file()
    return [] if configured == DEFAULT_TFVARS_FILE else [configured]


def _target(directory: Path, names: tuple[str, str]) -> str:
    """The conventional file if it is free, else vmprov's own file (created or appended to)."""
    return names[0] if not (directory / names[0]).exists() else names[1]


def _where(files: Iterable[str]) -> str:
    return ", ".join(sorted(set(files)))


def ensure_config_structure(
    path: str | Path,
    check: bool = False,
    var_files: Sequence[str] | None = None,
) -> StructureReport:
    """Check one Terraform directory and, unless `check`, add what vmprov's templates can supply.

    `var_files` are the values files Atlantis passes with -var-file; by default VMPROV_TFVARS_FILE when it is not
    terraform.tfvars (which Terraform loads by itself).
    """
    directory = Path(path)
    report = StructureReport(path=directory, check=check)
    if not directory.is_dir():
        report.problems.append("not a directory")
        return report
    var_files = list(_default_var_files() if var_files is None else var_files)
    inventory = _inventory(directory)
    report.problems.extend(inventory.unreadable)

    _check_main_file(directory, report)
    values = _check_values_files(directory, var_files, report)
    _check_duplicates(inventory, report)
    _check_backend(inventory, report)

    provider_pieces = _missing_provider_pieces(inventory, report)
    added_refs = set().union(*(piece.refs for piece in provider_pieces))
    variable_pieces = _missing_variable_pieces(inventory, added_refs, report)
    _check_values(inventory, variable_pieces, values, report)

    if inventory.unreadable:
        # What could not be read may already declare what we would add; adding it could make a duplicate.
        if provider_pieces or variable_pieces:
            report.notes.append("nothing was added because some files could not be read")
        return report
    for pieces, names, render in (
        (provider_pieces, PROVIDERS_FILES, providers_text),
        (variable_pieces, VARIABLES_FILES, variables_text),
    ):
        if pieces:
            _add(directory, _target(directory, names), render(pieces), pieces, report)
    return report


def _check_main_file(directory: Path, report: StructureReport) -> None:
    main_files = [name for name in MAIN_FILES if (directory / name).is_file()]
    if main_files:
        report.found.append(f"main file {', '.join(main_files)}")
    else:
        report.missing.append(" or ".join(MAIN_FILES))
        report.problems.append(f"no {' or '.join(MAIN_FILES)}: nothing defines the VM")


def _check_values_files(directory: Path, var_files: Sequence[str], report: StructureReport) -> set[str] | None:
    """Names the loaded values files set (None when a values file cannot be read)."""
    present = [name for name in VALUES_FILES if (directory / name).is_file()]
    if not present:
        report.missing.append(" or ".join(VALUES_FILES))
        report.problems.append(f"no {' or '.join(VALUES_FILES)}: no values for the VM's variables")
    for name in var_files:
        if not (directory / name).is_file():
            report.problems.append(f"Atlantis passes -var-file={name}, which does not exist here (plans would fail)")
    loaded = _loaded_values_files(directory, var_files)
    for name in present:
        if name not in loaded:
            report.notes.append(
                f"{name} is not loaded: Terraform reads it only with -var-file={name} "
                f"(set VMPROV_TFVARS_FILE={name} if the Atlantis workflow passes it)"
            )
    names: set[str] = set()
    readable = True
    for name in loaded:
        file = directory / name
        if not file.is_file():
            continue
        try:
            file_names = _values_file_names(file)
        except Exception as error:  # hcl2 (lark) or JSON errors
            report.problems.append(f"{name} cannot be parsed: {_first_line(error)}")
            readable = False
            continue
        names |= file_names
        report.found.append(f"values file {name} (loaded, {len(file_names)} values)")
    return names if readable else None


def _check_duplicates(inventory: _Inventory, report: StructureReport) -> None:
    for name, files in sorted(inventory.declared.items()):
        if len(files) > 1:
            report.problems.append(f'variable "{name}" is declared {len(files)} times ({_where(files)})')
    if len(inventory.provider_blocks) > 1:
        report.problems.append(f'provider "vsphere" is configured {len(inventory.provider_blocks)} times')
    if len(inventory.required_providers) > 1:
        report.problems.append(
            f"required_providers appears {len(inventory.required_providers)} times "
            f"({_where(inventory.required_providers)}); Terraform allows one"
        )
    if len(inventory.backends) > 1:
        report.problems.append(f"{len(inventory.backends)} backend blocks; Terraform allows one")


def _check_backend(inventory: _Inventory, report: StructureReport) -> None:
    for kind, file_name in inventory.backends:
        report.found.append(f'backend "{kind}" in {file_name}')
    if not inventory.backends:
        report.missing.append("backend block")
        report.problems.append(
            "no backend block: the state would live in Atlantis's working copy and be lost; vmprov cannot pick "
            "the per-VM state key for you"
        )


def _missing_provider_pieces(inventory: _Inventory, report: StructureReport) -> list[TemplatePiece]:
    wanted = []
    if inventory.vsphere_required:
        report.found.append(f"required_providers vsphere in {_where(inventory.vsphere_required)}")
    elif inventory.required_providers:
        report.missing.append("required_providers vsphere")
        report.problems.append(
            f"required_providers in {_where(inventory.required_providers)} has no vsphere entry; add "
            f'vsphere = {{ source = "{PROVIDER_SOURCE}", version = "{PROVIDER_VERSION}" }} there '
            "(a module may have only one required_providers block)"
        )
    else:
        report.missing.append("required_providers vsphere")
        wanted.append("required_providers")
    if inventory.required_version:
        report.found.append(f"required_version in {_where(inventory.required_version)}")
    else:
        report.missing.append("required_version")
        wanted.append("required_version")
    if inventory.provider_blocks:
        report.found.append(f'provider "vsphere" in {_where(inventory.provider_blocks)}')
    else:
        report.missing.append('provider "vsphere" block')
        wanted.append("provider")
    return [piece for piece in providers_template_pieces() if piece.kind in wanted]


def _missing_variable_pieces(
    inventory: _Inventory, added_refs: set[str], report: StructureReport
) -> list[TemplatePiece]:
    report.found.append(f"{len(inventory.declared)} variables declared, {len(inventory.referenced)} used")
    undeclared = (set(inventory.referenced) | added_refs) - set(inventory.declared)
    template = {piece.name: piece for piece in variables_template_pieces()}
    for name in sorted(undeclared - set(template)):
        used_in = _where(inventory.referenced.get(name, []))
        report.missing.append(f'declaration of variable "{name}"')
        report.problems.append(
            f"var.{name} is used in {used_in} but declared nowhere, and vmprov's template does not declare it: "
            "declare it (with its type) yourself"
        )
    wanted = undeclared & set(template)
    for name in sorted(wanted):
        report.missing.append(f'declaration of variable "{name}"')
    # Template order keeps the written file close to the template.
    return [piece for name, piece in template.items() if name in wanted]


def _check_values(
    inventory: _Inventory, added: list[TemplatePiece], values: set[str] | None, report: StructureReport
) -> None:
    if values is None:
        return  # an unreadable values file was reported already; guessing what it sets helps nobody
    required = {name for name in inventory.declared if name not in inventory.with_default}
    required |= {piece.name for piece in added if not piece.has_default}
    unset = sorted(required - values)
    report.missing.extend(f'a value for variable "{name}"' for name in unset)
    if unset:
        report.problems.append(
            f"no loaded values file sets {', '.join(unset)}, declared without a default "
            "(a plan with -input=false fails)"
        )


def _add(directory: Path, file_name: str, text: str, pieces: list[TemplatePiece], report: StructureReport) -> None:
    what = ", ".join(piece.description for piece in pieces)
    target = directory / file_name
    if target.exists():
        if file_name not in OWN_FILES:
            raise AssertionError(f"refusing to change {target}")  # _target() never picks someone else's file
        action = f"append to {file_name}: {what}"
        content = target.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text
    else:
        action = f"write {file_name}: {what}"
        content = text
    report.actions.append(action)
    if not report.check:
        target.write_text(content, encoding="utf-8")
        report.written.append(file_name)
