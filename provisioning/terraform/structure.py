"""What a VM's Terraform directory must hold before Atlantis can plan it, checked and completed.

`ensure_config_structure(path)` parses every `*.tf` file of one directory with python-hcl2 (so a comment that
mentions `provider "vsphere"` counts for nothing, and a provider block in `versions.tf` counts as much as one in
`providers.tf`), then:

- adds what is missing from `terraform_templates/providers.tf.template` (the vsphere entry of
  `required_providers`, `required_version`, the `provider "vsphere"` block) and from `variables.tf.template`
  (only the declarations the directory uses and lacks: Terraform refuses a variable declared twice, and a
  declared variable without a default would have to be given a value even when nothing uses it);
- declares every other variable the directory uses and declares nowhere, typed from its value in a loaded values
  file (`hcl_reader.literal_type`), or untyped, with a note, when no value shows a type;
- adds a backend block when there is none: the configured backend (`RenderSettings`) with a state key made from the
  directory's path below the repository root (the Git top level, or `repo_root`), so two directories never share a
  state. A directory holding local state (`terraform.tfstate`) is refused instead: with a backend, its next plan
  would start from an empty state and create everything again; the report says how to migrate it;
- never rewrites a file it did not write: when `providers.tf` / `variables.tf` / `backend.tf` already exist, the
  additions go to `vmprov_providers.tf` / `vmprov_variables.tf` / `vmprov_backend.tf`;
- reports what it cannot fix: no `main.tf`/`machine.tf`, no values file, a required variable that no loaded values
  file sets, duplicates, a `required_providers` block of the user's without vsphere.

Values files count only when Terraform loads them: `terraform.tfvars`, `terraform.tfvars.json`, `*.auto.tfvars`,
`*.auto.tfvars.json`, plus the files Atlantis passes with `-var-file` (`var_files`, by default the values file
setting when that names another file, e.g. `machine_inputs.tfvars`).

With `check=True` nothing is written. A second run after a fix finds nothing to do. The push of a request's
rendered files runs the check only: those files are complete by construction, so anything it would add is a bug to
report, not something to patch. Given its `settings`, this module reads no Django settings (the command-line script
runs it where there are none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from provisioning.terraform.directory import (
    DirectoryContents,
    NoStateKey,
    Value,
    first_line,
    loaded_values_files,
    path_in_repository,
    read_directory,
    values_in_file,
)
from provisioning.terraform.hcl import aligned_attributes, hcl_string
from provisioning.terraform.hcl_reader import (
    literal_type,
)
from provisioning.terraform.settings import (
    DEFAULT_TFVARS_FILE,
    MACHINE_INPUTS_TFVARS_FILE,
    RenderSettings,
    directory_state_name,
    render_settings,
    state_backend_attributes,
)
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
BACKEND_FILES = ("backend.tf", "vmprov_backend.tf")
OWN_FILES = frozenset({PROVIDERS_FILES[1], VARIABLES_FILES[1], BACKEND_FILES[1]})
# Terraform's local state: the default workspace's file, and the other workspaces' directory.
LOCAL_STATE = ("terraform.tfstate", "terraform.tfstate.d")


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
        # A note may hold a block of HCL to copy: its lines stay together under the note.
        for note in self.notes:
            first, *rest = note.splitlines()
            lines += [f"  note: {first}", *(f"        {line}" for line in rest)]
        if self.problems:
            lines.append("  result: cannot be fixed automatically")
        elif self.check and self.actions:
            lines.append("  result: incomplete (run without --check to fix)")
        elif self.actions:
            lines.append("  result: fixed")
        else:
            lines.append("  result: complete")
        return lines


def backend_text(relative_path: PurePosixPath, settings: RenderSettings) -> str:
    """A terraform block holding the configured backend, its state key made from the directory's path."""
    attributes = aligned_attributes(state_backend_attributes(directory_state_name(relative_path), settings))
    body = "".join(f"    {line}\n" for line in attributes)
    return (
        "# One state per directory. A backend block cannot read variables, so its key is a literal, made from this\n"
        "# directory's path in the repository. Credentials come from the backend's own environment variables.\n"
        f"terraform {{\n  backend {hcl_string(settings.backend)} {{\n{body}  }}\n}}\n"
    )


# --- The check and the fix ----------------------------------------------------------------------------------------


def _default_var_files(settings: RenderSettings) -> list[str]:
    return [] if settings.tfvars_file == DEFAULT_TFVARS_FILE else [settings.tfvars_file]


def _target(directory: Path, names: tuple[str, str]) -> str:
    """The conventional file if it is free, else vmprov's own file (created or appended to)."""
    return names[0] if not (directory / names[0]).exists() else names[1]


def _where(files: Iterable[str]) -> str:
    return ", ".join(sorted(set(files)))


def ensure_config_structure(
    path: str | Path,
    check: bool = False,
    var_files: Sequence[str] | None = None,
    settings: RenderSettings | None = None,
    repo_root: str | Path | None = None,
) -> StructureReport:
    """Check one Terraform directory and, unless `check`, add what vmprov can supply.

    `settings` give the backend to add and the values file name; without them, Django's (`render_settings()`).
    `var_files` are the values files Atlantis passes with -var-file; by default the settings' values file when it
    is not terraform.tfvars (which Terraform loads by itself). `repo_root` is the root of the repository the state
    key's path starts from; by default the top level of the Git work tree holding the directory.
    """
    directory = Path(path)
    report = StructureReport(path=directory, check=check)
    if not directory.is_dir():
        report.problems.append("not a directory")
        return report
    settings = settings or render_settings()
    var_files = list(_default_var_files(settings) if var_files is None else var_files)
    inventory = read_directory(directory)
    report.problems.extend(inventory.unreadable)

    _check_main_file(directory, report)
    values = _check_values_files(directory, var_files, report)
    _check_duplicates(inventory, report)
    local_state = [name for name in LOCAL_STATE if (directory / name).exists()]
    backend = _check_backend(directory, inventory, settings, repo_root, local_state, report)

    provider_pieces = _missing_provider_pieces(inventory, report)
    added_refs = set().union(*(piece.refs for piece in provider_pieces))
    variable_pieces = _missing_variable_pieces(inventory, added_refs, values, report)
    _check_values(inventory, variable_pieces, values, report)

    anything = provider_pieces or variable_pieces or backend
    if inventory.unreadable:
        # What could not be read may already declare what we would add; adding it could make a duplicate.
        if anything:
            report.notes.append("nothing was added because some files could not be read")
        return report
    if local_state:
        if anything:
            report.notes.append("nothing was added: migrate the local state first")
        return report
    for pieces, names, render in (
        (provider_pieces, PROVIDERS_FILES, providers_text),
        (variable_pieces, VARIABLES_FILES, variables_text),
    ):
        if pieces:
            _add(directory, names, render(pieces), ", ".join(piece.description for piece in pieces), report)
    if backend:
        _add(directory, BACKEND_FILES, backend, f"backend {hcl_string(settings.backend)}", report)
    return report


def _check_main_file(directory: Path, report: StructureReport) -> None:
    main_files = [name for name in MAIN_FILES if (directory / name).is_file()]
    if main_files:
        report.found.append(f"main file {', '.join(main_files)}")
    else:
        report.missing.append(" or ".join(MAIN_FILES))
        report.problems.append(f"no {' or '.join(MAIN_FILES)}: nothing defines the VM")


def _check_values_files(directory: Path, var_files: Sequence[str], report: StructureReport) -> dict[str, Value] | None:
    """The values the loaded values files set, by variable (None when a values file cannot be read)."""
    present = [name for name in VALUES_FILES if (directory / name).is_file()]
    if not present:
        report.missing.append(" or ".join(VALUES_FILES))
        report.problems.append(f"no {' or '.join(VALUES_FILES)}: no values for the VM's variables")
    for name in var_files:
        if not (directory / name).is_file():
            report.problems.append(f"Atlantis passes -var-file={name}, which does not exist here (plans would fail)")
    loaded = loaded_values_files(directory, var_files)
    for name in present:
        if name not in loaded:
            report.notes.append(
                f"{name} is not loaded: Terraform reads it only with -var-file={name} "
                f"(set VMPROV_TFVARS_FILE={name} if the Atlantis workflow passes it)"
            )
    values: dict[str, Value] = {}
    readable = True
    for name in loaded:
        file = directory / name
        if not file.is_file():
            continue
        try:
            file_values = values_in_file(file)
        except Exception as error:  # hcl2 (lark) or JSON errors
            report.problems.append(f"{name} cannot be parsed: {first_line(error)}")
            readable = False
            continue
        values.update(file_values)
        report.found.append(f"values file {name} (loaded, {len(file_values)} values)")
    return values if readable else None


def _check_duplicates(inventory: DirectoryContents, report: StructureReport) -> None:
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


def _check_backend(
    directory: Path,
    inventory: DirectoryContents,
    settings: RenderSettings,
    repo_root: str | Path | None,
    local_state: list[str],
    report: StructureReport,
) -> str | None:
    """The backend block to add (HCL text); None when the directory has one or none can be added."""
    for kind, file_name in inventory.backends:
        report.found.append(f'backend "{kind}" in {file_name}')
    if inventory.backends:
        return None
    report.missing.append("backend block")
    try:
        text = backend_text(path_in_repository(directory, Path(repo_root) if repo_root else None), settings)
    except NoStateKey as error:
        text, reason = None, str(error)
    if local_state:
        held = " and ".join(local_state)
        report.problems.append(
            f"no backend block, and {held} holds local state: vmprov adds no backend here, because the next plan "
            "would start from the backend's empty state and create everything again; migrate the state first"
        )
        block = "the backend block below" if text else f"a backend block of your own ({reason})"
        report.notes.append(
            f"to migrate the local state: add {block} to {_target(directory, BACKEND_FILES)}, run "
            "`terraform init -migrate-state` here (Terraform copies the local state into the backend, asking "
            f"first), check that `terraform plan` shows no changes, delete {held} (and terraform.tfstate.backup; "
            "from Git too), then run this again" + (f":\n{text.rstrip()}" if text else "")
        )
        return None
    if text is None:
        report.problems.append(f"no backend block, and vmprov cannot make its state key: {reason}")
    return text


def _missing_provider_pieces(inventory: DirectoryContents, report: StructureReport) -> list[TemplatePiece]:
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
    inventory: DirectoryContents, added_refs: set[str], values: dict[str, Value] | None, report: StructureReport
) -> list[TemplatePiece]:
    """The template's declarations the directory uses and lacks (in template order), then one for every other
    variable used and declared nowhere."""
    report.found.append(f"{len(inventory.declared)} variables declared, {len(inventory.referenced)} used")
    undeclared = (set(inventory.referenced) | added_refs) - set(inventory.declared)
    template = {piece.name: piece for piece in variables_template_pieces()}
    report.missing.extend(f'declaration of variable "{name}"' for name in sorted(undeclared))
    pieces = [piece for name, piece in template.items() if name in undeclared]
    for name in sorted(undeclared - set(template)):
        if values is None:
            report.problems.append(
                f"var.{name} is used in {_where(inventory.referenced[name])} but declared nowhere; vmprov declares "
                "it once the values files can be read (its type comes from its value)"
            )
        else:
            pieces.append(_declaration(name, values.get(name), report))
    return pieces


def _declaration(name: str, value: Value | None, report: StructureReport) -> TemplatePiece:
    """A declaration for a variable used and declared nowhere, typed from its value when the value shows a type."""
    # The file name goes into a comment: one that is not plain printable text stays out of it.
    source = "a loaded values file"
    if value is not None and value.file_name.isprintable():
        source = value.file_name
    kind = literal_type(value.value, value.hcl_syntax) if value is not None else None
    header = f"# Declared by vmprov: var.{name} is used but was declared nowhere."
    if kind:
        text = f'{header} Its type is inferred from its value in {source}.\nvariable "{name}" {{\n  type = {kind}\n}}\n'
    else:
        why = f"its value in {source} shows none" if value is not None else "no loaded values file sets it"
        text = f'{header} It has no type: {why}.\nvariable "{name}" {{}}\n'
        report.notes.append(f"var.{name} is declared without a type ({why}): give it one")
    return TemplatePiece("variable", name, text, frozenset())


def _check_values(
    inventory: DirectoryContents, added: list[TemplatePiece], values: dict[str, Value] | None, report: StructureReport
) -> None:
    if values is None:
        return  # an unreadable values file was reported already; guessing what it sets helps nobody
    required = {name for name in inventory.declared if name not in inventory.with_default}
    required |= {piece.name for piece in added if not piece.has_default}
    unset = sorted(required - set(values))
    report.missing.extend(f'a value for variable "{name}"' for name in unset)
    if unset:
        report.problems.append(
            f"no loaded values file sets {', '.join(unset)}, declared without a default "
            "(a plan with -input=false fails)"
        )


def _add(directory: Path, names: tuple[str, str], text: str, what: str, report: StructureReport) -> None:
    file_name = _target(directory, names)
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
