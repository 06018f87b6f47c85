"""ensure_config_structure: what a Terraform directory needs, what gets added, and what never gets touched."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import hcl2
import pytest
from django.core.management import CommandError, call_command

from provisioning.terraform.hcl_reader import literal_type, variable_references
from provisioning.terraform.render import render
from provisioning.terraform.settings import RenderSettings, directory_state_name, state_name
from provisioning.terraform.structure import ensure_config_structure
from provisioning.terraform.templates import (
    providers_template_pieces,
    providers_text,
    template_text,
    variables_template_pieces,
    variables_text,
)
from tests.support.specs import dhcp_spec, static_spec
from tests.support.terraform_bin import run_terraform
from tests.support.terraform_dirs import (
    BACKEND_TF,
    backend_of,
    bare_vm_dir,
    rendered_dir,
    snapshot,
    terraform_repository,
    write,
)

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS_TEMPLATE = template_text("providers.tf.template")
VARIABLES_TEMPLATE = template_text("variables.tf.template")


def declared_variables(directory: Path) -> list[str]:
    """Every variable declaration in the directory, duplicates kept."""
    names = []
    for path in sorted(directory.glob("*.tf")):
        for block in hcl2.loads(path.read_text()).get("variable", []):
            names += [key.strip('"') for key in block if not key.startswith("__")]
    return names


# --- Template pieces --------------------------------------------------------------------------------------------


def test_template_pieces_put_back_together_are_the_templates():
    providers = providers_template_pieces()
    assert [(piece.kind, piece.name) for piece in providers] == [
        ("required_providers", "vsphere"),
        ("required_version", ""),
        ("provider", "vsphere"),
    ]
    assert providers_text(providers) == PROVIDERS_TEMPLATE
    variables = variables_template_pieces()
    assert variables_text(variables) == VARIABLES_TEMPLATE
    assert [piece.name for piece in variables][:4] == [
        "vsphere_user",
        "vsphere_password",
        "vsphere_server",
        "allow_unverified_ssl",
    ]
    assert {piece.name for piece in variables if piece.has_default} == {
        "vsphere_user",
        "vsphere_password",
        "vsphere_server",
        "allow_unverified_ssl",
    }
    assert providers[2].refs == {"vsphere_user", "vsphere_password", "vsphere_server", "allow_unverified_ssl"}


def test_variable_references_are_found_in_every_kind_of_expression():
    document = hcl2.loads(
        r"""
# var.in_a_comment is not a reference
resource "x" "y" {
  plain   = var.plain
  math    = var.n * 2 + length(var.list)
  interp  = "prefix-${var.interpolated}-suffix"
  nested  = "${upper("${var.deep}")}"
  literal = "var.literal_text and $${var.escaped}"
  quoted  = var.a == "var.in_string" ? 1 : 2
  tpl     = "%{ if var.directive }yes%{ endif }"
  forlist = [for item in var.for_source : item if item != var.for_filter]
  formap  = { for k, v in var.map_source : k => v }
  key     = { (var.key_expr) = 1 }
  attr    = local.var.not_a_variable
  heredoc = <<-EOT
    hello ${var.heredoc}
  EOT
  dynamic "disk" {
    for_each = var.dynamic_source
    content {
      size = disk.value.size + var.in_content
    }
  }
}
"""
    )
    assert variable_references(document) == {
        "plain",
        "n",
        "list",
        "interpolated",
        "deep",
        "a",
        "directive",
        "for_source",
        "for_filter",
        "map_source",
        "key_expr",
        "heredoc",
        "dynamic_source",
        "in_content",
    }


# --- A directory vmprov rendered ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tfvars_file", ["terraform.tfvars", "machine_inputs.tfvars"])
def test_a_rendered_directory_passes_check_untouched(tmp_path, settings, tfvars_file):
    settings.VMPROV_TFVARS_FILE = tfvars_file
    directory = rendered_dir(tmp_path / "vm", RenderSettings(tfvars_file=tfvars_file))
    before = snapshot(directory)

    report = ensure_config_structure(directory, check=True)
    call_command("ensure_config_structure", str(directory), "--check")
    call_command("ensure_config_structure", str(directory))

    assert report.ok, report.lines()
    assert (report.missing, report.actions, report.problems) == ([], [], [])
    assert snapshot(directory) == before


def test_a_rendered_directory_with_hostile_values_passes_check(tmp_path):
    from tests.support.specs import hostile_spec

    directory = rendered_dir(tmp_path, spec=hostile_spec())
    report = ensure_config_structure(directory, check=True)
    assert report.ok, report.lines()


# --- Adding what is missing -------------------------------------------------------------------------------------


def test_missing_providers_and_variables_are_copied_from_the_templates(tmp_path):
    directory = bare_vm_dir(tmp_path)
    before = snapshot(directory)

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    assert report.written == ["providers.tf", "variables.tf"]
    # Everything the templates hold was needed, so the files are the templates, byte for byte.
    assert (directory / "providers.tf").read_text() == PROVIDERS_TEMPLATE
    assert (directory / "variables.tf").read_text() == VARIABLES_TEMPLATE
    assert {name: before[name] for name in before} == {name: snapshot(directory)[name] for name in before}
    assert ensure_config_structure(directory, check=True).ok


def test_only_used_variables_are_added(tmp_path):
    """An unused declaration without a default would make Terraform demand a value for it."""
    directory = write(
        tmp_path,
        {
            "main.tf": 'resource "vsphere_virtual_machine" "vm" {\n  name = var.vm_name\n}\n',
            "terraform.tfvars": 'vm_name = "a"\n',
            "backend.tf": BACKEND_TF,
        },
    )

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    assert sorted(declared_variables(directory)) == [
        "allow_unverified_ssl",
        "vm_name",
        "vsphere_password",
        "vsphere_server",
        "vsphere_user",
    ]


def test_provider_block_in_any_file_counts_but_a_comment_does_not(tmp_path):
    versions = (
        'terraform {\n  required_providers {\n    vsphere = {\n      source = "hashicorp/vsphere"\n    }\n  }\n'
        '  required_version = ">= 1.3"\n}\n\n'
        'provider "vsphere" {\n  user = var.vsphere_user\n}\n'
    )
    counted = bare_vm_dir(tmp_path / "counted")
    write(counted, {"versions.tf": versions})
    commented = bare_vm_dir(tmp_path / "commented")
    write(commented, {"versions.tf": "\n".join(f"# {line}" for line in versions.splitlines()) + "\n"})

    counted_report = ensure_config_structure(counted, check=True)
    commented_report = ensure_config_structure(commented, check=True)

    assert 'provider "vsphere" in versions.tf' in counted_report.found
    assert "required_providers vsphere in versions.tf" in counted_report.found
    assert not any("write providers.tf" in action for action in counted_report.actions)
    assert 'provider "vsphere" block' in commented_report.missing
    assert "required_providers vsphere" in commented_report.missing
    assert commented_report.actions[0] == (
        'write providers.tf: required_providers vsphere, required_version, provider "vsphere"'
    )


def test_an_aliased_provider_block_is_not_the_default_configuration(tmp_path):
    directory = bare_vm_dir(tmp_path)
    write(directory, {"extra.tf": 'provider "vsphere" {\n  alias = "other"\n}\n'})
    report = ensure_config_structure(directory, check=True)
    assert 'provider "vsphere" block' in report.missing


def test_existing_declarations_are_not_repeated_and_user_files_are_not_changed(tmp_path):
    directory = bare_vm_dir(tmp_path)
    own_variables = (
        'variable "vsphere_user" {\n  type    = string\n  default = "svc-terraform"\n}\n\n'
        'variable "vm_name" {\n  type = string\n}\n'
    )
    own_providers = 'terraform {\n  required_version = ">= 1.5.0"\n}\n'
    write(directory, {"variables.tf": own_variables, "providers.tf": own_providers})
    before = snapshot(directory)

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    assert report.written == ["vmprov_providers.tf", "vmprov_variables.tf"]
    after = snapshot(directory)
    assert {name: after[name] for name in before} == before
    declarations = declared_variables(directory)
    assert len(declarations) == len(set(declarations)), "a variable is declared twice"
    assert set(declarations) == set(variable_references_in(directory))
    providers = (directory / "vmprov_providers.tf").read_text()
    assert "required_version" not in providers  # providers.tf has one already
    assert 'provider "vsphere"' in providers and "required_providers" in providers


def variable_references_in(directory: Path) -> set[str]:
    refs = set()
    for path in directory.glob("*.tf"):
        refs |= variable_references(hcl2.loads(path.read_text()))
    return refs


def test_an_existing_required_providers_block_without_vsphere_is_reported_not_duplicated(tmp_path):
    directory = bare_vm_dir(tmp_path)
    write(
        directory,
        {
            "versions.tf": 'terraform {\n  required_providers {\n    random = {\n      source = "hashicorp/random"\n'
            "    }\n  }\n}\n"
        },
    )

    report = ensure_config_structure(directory)

    assert not report.ok
    assert any("has no vsphere entry" in problem for problem in report.problems)
    combined = "".join(path.read_text() for path in directory.glob("*.tf"))
    assert combined.count("required_providers") == 1


def test_a_second_run_changes_nothing(tmp_path):
    directory = bare_vm_dir(tmp_path)
    write(directory, {"providers.tf": 'terraform {\n  required_version = ">= 1.0.0"\n}\n'})
    first = ensure_config_structure(directory)
    assert first.written
    before = snapshot(directory)

    second = ensure_config_structure(directory)
    call_command("ensure_config_structure", str(directory))

    assert (second.actions, second.written, second.problems) == ([], [], [])
    assert snapshot(directory) == before


def test_vmprov_own_file_is_appended_to_when_more_is_needed_later(tmp_path):
    directory = write(
        tmp_path,
        {
            "main.tf": 'resource "vsphere_virtual_machine" "vm" {\n  name = var.vm_name\n}\n',
            "variables.tf": 'variable "vm_name" {\n  type = string\n}\n',
            "terraform.tfvars": 'vm_name    = "a"\nannotation = "b"\n',
            "backend.tf": BACKEND_TF,
        },
    )
    first = ensure_config_structure(directory)
    assert first.written == ["providers.tf", "vmprov_variables.tf"]
    # Later someone starts using another variable the template declares.
    write(directory, {"tags.tf": "locals {\n  owner = var.annotation\n}\n"})

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    assert report.actions == ['append to vmprov_variables.tf: variable "annotation"']
    assert sorted(declared_variables(directory)) == [
        "allow_unverified_ssl",
        "annotation",
        "vm_name",
        "vsphere_password",
        "vsphere_server",
        "vsphere_user",
    ]
    assert ensure_config_structure(directory, check=True).ok


def test_fixed_files_are_fmt_clean(tmp_path):
    directory = bare_vm_dir(tmp_path)
    write(directory, {"variables.tf": 'variable "vm_name" {\n  type = string\n}\n'})
    ensure_config_structure(directory)
    result = run_terraform(directory, "fmt", "-check", "-diff", "-no-color", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Verification: main file, values files, required values -------------------------------------------------------


@pytest.mark.parametrize("main_file", ["main.tf", "machine.tf"])
def test_either_main_file_is_accepted(tmp_path, main_file):
    files = render(static_spec(), RenderSettings())
    files[main_file] = files.pop("machine.tf")
    report = ensure_config_structure(write(tmp_path, files), check=True)
    assert report.ok, report.lines()
    assert f"main file {main_file}" in report.found


def test_no_main_file_is_a_problem_it_cannot_fix(tmp_path):
    files = render(static_spec(), RenderSettings())
    files["vm.tf"] = files.pop("machine.tf")
    directory = write(tmp_path, files)
    before = snapshot(directory)
    report = ensure_config_structure(directory)
    assert report.problems == ["no main.tf or machine.tf: nothing defines the VM"]
    assert snapshot(directory) == before


def test_machine_inputs_tfvars_counts_when_atlantis_passes_it(tmp_path, settings):
    directory = rendered_dir(tmp_path, RenderSettings(tfvars_file="machine_inputs.tfvars"))

    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    assert ensure_config_structure(directory, check=True).ok
    assert ensure_config_structure(directory, check=True, var_files=["machine_inputs.tfvars"]).ok

    settings.VMPROV_TFVARS_FILE = "terraform.tfvars"
    report = ensure_config_structure(directory, check=True)
    assert not report.ok
    assert any("machine_inputs.tfvars is not loaded" in note for note in report.notes)
    assert 'a value for variable "vm_name"' in report.missing
    assert any("no loaded values file sets" in problem and "vm_name" in problem for problem in report.problems)


def test_var_file_that_atlantis_passes_must_exist(tmp_path):
    directory = rendered_dir(tmp_path)
    report = ensure_config_structure(directory, check=True, var_files=["machine_inputs.tfvars"])
    assert report.problems == [
        "Atlantis passes -var-file=machine_inputs.tfvars, which does not exist here (plans would fail)"
    ]


def test_no_values_file_is_a_problem(tmp_path):
    files = render(static_spec(), RenderSettings())
    files["values.auto.tfvars"] = files.pop("terraform.tfvars")
    report = ensure_config_structure(write(tmp_path, files), check=True)
    # The auto-loaded file gives every value, but the deployment convention wants one of the two names.
    assert report.problems == ["no terraform.tfvars or machine_inputs.tfvars: no values for the VM's variables"]


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        ("terraform.tfvars", 'domain = "example.com"\n'),
        ("extra.auto.tfvars", 'domain = "example.com"\n'),
        ("terraform.tfvars.json", '{"domain": "example.com"}'),
        ("extra.auto.tfvars.json", '{"domain": "example.com"}'),
    ],
)
def test_values_from_any_auto_loaded_file_count(tmp_path, file_name, content):
    files = render(static_spec(), RenderSettings())
    files["terraform.tfvars"] = files["terraform.tfvars"].replace('domain       = "example.com"\n', "")
    files[file_name] = files.get(file_name, "") + content
    report = ensure_config_structure(write(tmp_path, files), check=True)
    assert report.ok, report.lines()


def test_required_variable_without_value_is_reported(tmp_path):
    files = render(static_spec(), RenderSettings())
    files["terraform.tfvars"] = files["terraform.tfvars"].replace('domain       = "example.com"\n', "")
    files["extra.tf"] = 'variable "owner" {\n  type = string\n}\n\nvariable "team" {\n  default = "ops"\n}\n'
    report = ensure_config_structure(write(tmp_path, files), check=True)
    assert report.problems == [
        "no loaded values file sets domain, owner, declared without a default (a plan with -input=false fails)"
    ]


def test_duplicates_are_reported(tmp_path):
    files = render(static_spec(), RenderSettings())
    files["more.tf"] = 'variable "vm_name" {\n  type = string\n}\n'
    report = ensure_config_structure(write(tmp_path, files), check=True)
    assert report.problems == ['variable "vm_name" is declared 2 times (more.tf, variables.tf)']


def test_unparseable_file_stops_all_changes(tmp_path):
    directory = bare_vm_dir(tmp_path)
    write(directory, {"broken.tf": 'resource "x" {\n  a = \n'})
    before = snapshot(directory)
    report = ensure_config_structure(directory)
    assert any(problem.startswith("broken.tf cannot be parsed") for problem in report.problems)
    assert report.written == []
    assert snapshot(directory) == before


def test_not_a_directory(tmp_path):
    assert ensure_config_structure(tmp_path / "nope").problems == ["not a directory"]


# --- Completing a hand-written directory: variables used and declared nowhere ----------------------------------

HAND_WRITTEN_MAIN = """resource "vsphere_virtual_machine" "vm" {
  name        = var.vm_name
  annotation  = "${var.owner} / ${var.team_size}"
  enable_disk = var.thin && var.eager
  dns         = var.dns_servers
  tags        = var.tags
  limits      = var.limits
  disks       = var.data_disks
  extra       = var.extra_disks
  mixed       = var.mixed
  ratio       = var.ratio
}
"""
HAND_WRITTEN_VALUES = """vm_name     = "web01"
owner       = "ops"
team_size   = 4
thin        = true
eager       = false
dns_servers = ["10.0.0.1", "10.0.0.2"]
tags        = { env = "prod", tier = "web" }
limits      = { cpus = 4, name = "small" }
data_disks  = [{ size = 20, thin = true }, { size = 40, thin = false }]
extra_disks = []
mixed       = ["a", 1]
ratio       = 1e3
"""
INFERRED_TYPES = {
    "owner": "string",
    "team_size": "number",
    "thin": "bool",
    "eager": "bool",
    "dns_servers": "list(string)",
    "tags": "map(string)",
    "limits": "object({ cpus = number, name = string })",
    "ratio": "number",
}


def declarations(directory: Path, file_name: str) -> dict[str, str | None]:
    """Variable name -> its type constraint as written (None when untyped), from one file."""
    result = {}
    for block in hcl2.loads((directory / file_name).read_text()).get("variable", []):
        for key, body in block.items():
            if not key.startswith("__"):
                kind = body.get("type")
                result[key.strip('"')] = compact(kind.removeprefix("${").removesuffix("}")) if kind else None
    return result


def compact(type_constraint: str) -> str:
    """A type constraint without blanks: python-hcl2 reads `object({ a = number })` back without them."""
    return "".join(type_constraint.split())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"a"', "string"),
        ("<<EOT\nhello\nEOT", "string"),
        ("1", "number"),
        ("-2.5", "number"),
        ("1e3", "number"),
        ("true", "bool"),
        ('["a", "b"]', "list(string)"),
        ("[[1], [2, 3]]", "list(list(number))"),
        ('{ a = "x", "b c" = "y" }', "map(string)"),
        ('{ a = 1, b = "x", c = [true] }', "object({ a = number, b = string, c = list(bool) })"),
        ('[{ a = 1, b = "x" }, { b = "y", a = 2 }]', "list(object({ a = number, b = string }))"),
        ("null", None),
        ("[]", None),
        ("{}", None),
        ('["a", 1]', None),
        ('{ "a b" = 1, c = "x" }', None),
        ("[null]", None),
    ],
)
def test_a_literal_shows_the_type_terraform_infers(value, expected):
    assert literal_type(hcl2.loads(f"x = {value}\n")["x"]) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"${x}"', "string"), ("1.5", "number"), ("false", "bool"), ('{"a": ["x"]}', "map(list(string))"), ("[]", None)],
)
def test_a_json_literal_shows_its_type_too(value, expected):
    assert literal_type(json.loads(value), hcl_syntax=False) == expected


def test_undeclared_variables_are_declared_typed_from_their_values(tmp_path):
    directory = write(
        tmp_path / "vm",
        {"main.tf": HAND_WRITTEN_MAIN, "terraform.tfvars": HAND_WRITTEN_VALUES, "backend.tf": BACKEND_TF},
    )
    assert not ensure_config_structure(directory, check=True).ok

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    declared = declarations(directory, "variables.tf")
    assert {name: declared[name] for name in INFERRED_TYPES} == {
        name: compact(kind) for name, kind in INFERRED_TYPES.items()
    }
    assert declared["data_disks"] == compact("list(object({ size = number, thin = bool }))")
    assert declared["vm_name"] == "string"  # the template's declaration, with its comment
    text = (directory / "variables.tf").read_text()
    assert "var.owner is used but was declared nowhere. Its type is inferred from its value in terraform.tfvars" in (
        text
    )
    check = ensure_config_structure(directory, check=True)
    assert check.ok and check.actions == [], check.lines()
    assert run_terraform(directory, "fmt", "-check", "-diff", "-no-color", check=False).returncode == 0


def test_undeclared_variables_whose_values_show_no_type_are_declared_untyped_with_a_note(tmp_path):
    directory = write(
        tmp_path / "vm",
        {"main.tf": HAND_WRITTEN_MAIN, "terraform.tfvars": HAND_WRITTEN_VALUES, "backend.tf": BACKEND_TF},
    )

    report = ensure_config_structure(directory)

    declared = declarations(directory, "variables.tf")
    assert (declared["extra_disks"], declared["mixed"]) == (None, None)
    assert "var.mixed is declared without a type (its value in terraform.tfvars shows none): give it one" in (
        report.notes
    )
    assert "var.extra_disks is declared without a type" in " ".join(report.notes)
    assert 'variable "mixed" {}' in (directory / "variables.tf").read_text()
    assert ensure_config_structure(directory, check=True).ok


def test_declared_types_take_the_values_terraform_is_given(tmp_path):
    """Terraform itself converts every value to the declared type (a plan of the variables alone, offline)."""
    directory = write(
        tmp_path / "vm",
        {"main.tf": HAND_WRITTEN_MAIN, "terraform.tfvars": HAND_WRITTEN_VALUES, "backend.tf": BACKEND_TF},
    )
    ensure_config_structure(directory)
    names = sorted(declarations(directory, "variables.tf"))
    outputs = "".join(f'output "{name}" {{\n  value = var.{name}\n}}\n' for name in names if "vsphere" not in name)
    probe = write(
        tmp_path / "probe",
        {
            "variables.tf": (directory / "variables.tf").read_text(),
            "terraform.tfvars": HAND_WRITTEN_VALUES,
            "outputs.tf": outputs,
        },
    )
    run_terraform(probe, "init", "-input=false", "-no-color")
    run_terraform(probe, "apply", "-auto-approve", "-input=false", "-no-color")
    outputs = json.loads(run_terraform(probe, "output", "-json").stdout)
    values = {name: output["value"] for name, output in outputs.items()}
    assert values["tags"] == {"env": "prod", "tier": "web"}
    assert values["limits"] == {"cpus": 4, "name": "small"}
    assert values["data_disks"] == [{"size": 20, "thin": True}, {"size": 40, "thin": False}]
    assert values["ratio"] == 1000


def test_values_from_a_json_values_file_type_the_declaration(tmp_path):
    directory = write(
        tmp_path / "vm",
        {
            "main.tf": 'resource "x" "y" {\n  name = var.names\n}\n',
            "terraform.tfvars": "",
            "terraform.tfvars.json": '{"names": ["a", "b"]}',
            "backend.tf": BACKEND_TF,
        },
    )
    assert ensure_config_structure(directory).ok
    assert declarations(directory, "variables.tf")["names"] == "list(string)"
    assert "its value in terraform.tfvars.json" in (directory / "variables.tf").read_text()


def test_the_last_loaded_values_file_gives_the_type(tmp_path):
    directory = write(
        tmp_path / "vm",
        {
            "main.tf": 'resource "x" "y" {\n  size = var.size\n}\n',
            "terraform.tfvars": 'size = "small"\n',
            "z.auto.tfvars": "size = 2\n",
            "backend.tf": BACKEND_TF,
        },
    )
    ensure_config_structure(directory)
    assert declarations(directory, "variables.tf")["size"] == "number"


def test_an_undeclared_variable_without_a_value_is_declared_untyped_and_still_needs_one(tmp_path):
    directory = rendered_dir(tmp_path)
    write(directory, {"extra.tf": 'locals {\n  x = "${var.unknown_thing}-${var.vm_name}"\n}\n'})

    report = ensure_config_structure(directory)

    assert report.written == ["vmprov_variables.tf"]
    assert declarations(directory, "vmprov_variables.tf") == {"unknown_thing": None}
    assert "var.unknown_thing is declared without a type (no loaded values file sets it): give it one" in (report.notes)
    # Declared, but a plan still needs its value: that is for a person to give.
    assert report.problems == [
        "no loaded values file sets unknown_thing, declared without a default (a plan with -input=false fails)"
    ]
    write(directory, {"extra.auto.tfvars": 'unknown_thing = "x"\n'})
    assert ensure_config_structure(directory, check=True).ok


def test_an_unreadable_values_file_declares_no_unknown_variable(tmp_path):
    directory = write(
        tmp_path / "vm",
        {"main.tf": 'resource "x" "y" {\n  size = var.size\n}\n', "terraform.tfvars": "size = \n"},
    )
    report = ensure_config_structure(directory, repo_root=tmp_path)
    assert any("var.size is used in main.tf but declared nowhere" in problem for problem in report.problems)
    assert "size" not in declared_variables(directory)


# --- Completing a hand-written directory: the backend ---------------------------------------------------------------


def test_a_directorys_state_never_shares_a_requests_state():
    """A request's state name is `<datacenter>_<vm>`; a directory's joins its path's parts with `__`."""
    request = state_name(dhcp_spec(datacenter_id="datacenter-3", vm_name="web01"))
    assert request == "datacenter-3_web01"
    assert directory_state_name(PurePosixPath("datacenter-3/web01")) == "datacenter-3__web01"
    assert directory_state_name(PurePosixPath("datacenter-3_web01")) == "datacenter-3-web01-" + sha8(
        "datacenter-3_web01"
    )
    assert directory_state_name(PurePosixPath("VMs/Web 01")) == f"vms-{sha8('VMs')}__web-01-{sha8('Web 01')}"


def sha8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_a_directory_without_backend_gets_the_configured_one_keyed_by_its_path(tmp_path):
    repository = terraform_repository(tmp_path / "repo")
    web = rendered_dir(repository / "vms" / "dc1" / "web01")
    db = rendered_dir(repository / "vms" / "dc1" / "db01")
    for directory in (web, db):
        providers = (directory / "providers.tf").read_text()
        write(directory, {"providers.tf": PROVIDERS_TEMPLATE})  # the rendered file without its backend
        assert "backend" in providers
    settings = RenderSettings(backend="s3", backend_config={"bucket": "tfstate", "region": "eu-west-1"})

    check = ensure_config_structure(web, check=True, settings=settings)
    report = ensure_config_structure(web, settings=settings)
    ensure_config_structure(db, settings=settings)

    assert "backend block" in check.missing and not check.ok
    assert check.actions == ['write backend.tf: backend "s3"']
    assert report.ok and report.written == ["backend.tf"], report.lines()
    assert backend_of(web) == (
        "s3",
        {"key": "vmprov/vms__dc1__web01.tfstate", "bucket": "tfstate", "region": "eu-west-1"},
    )
    assert backend_of(db)[1]["key"] != backend_of(web)[1]["key"]
    assert ensure_config_structure(web, check=True, settings=settings).ok
    assert run_terraform(web, "fmt", "-check", "-diff", "-no-color", check=False).returncode == 0


# --- The management command ---------------------------------------------------------------------------------------


def test_check_mode_fails_when_something_is_missing_and_changes_nothing(tmp_path, capsys):
    directory = bare_vm_dir(tmp_path)
    before = snapshot(directory)

    with pytest.raises(CommandError, match="1 of 1 directories missing something"):
        call_command("ensure_config_structure", str(directory), "--check")

    assert snapshot(directory) == before
    output = capsys.readouterr().out
    assert "  would: write providers.tf" in output
    assert f"{directory}: NOT OK" in output


def test_fix_mode_succeeds_after_fixing_and_reports_each_path(tmp_path, capsys):
    fixable = bare_vm_dir(tmp_path / "fixable")
    complete = rendered_dir(tmp_path / "complete")

    call_command("ensure_config_structure", str(fixable), str(complete))

    output = capsys.readouterr().out
    assert "  did: write providers.tf" in output
    assert f"{fixable}: OK" in output and f"{complete}: OK" in output
    call_command("ensure_config_structure", str(fixable), "--check")


def test_fix_mode_fails_when_a_problem_cannot_be_fixed(tmp_path):
    directory = bare_vm_dir(tmp_path)
    (directory / "machine.tf").rename(directory / "vm.tf")
    with pytest.raises(CommandError, match="with problems vmprov cannot fix"):
        call_command("ensure_config_structure", str(directory))


def test_command_line_exit_codes(tmp_path):
    complete = rendered_dir(tmp_path / "complete")
    incomplete = bare_vm_dir(tmp_path / "incomplete")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    def run(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "ensure_config_structure", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run(str(complete), "--check").returncode == 0
    failed = run(str(complete), str(incomplete), "--check")
    assert failed.returncode == 1
    assert 'missing: provider "vsphere" block' in failed.stdout
    assert not (incomplete / "providers.tf").exists()


def test_the_repository_is_found_from_the_directory_even_inside_a_git_hook(tmp_path, monkeypatch):
    """git runs hooks with GIT_DIR set to the repository committing; the directory's own work tree still counts."""
    committing = terraform_repository(tmp_path / "committing")
    directory = bare_vm_dir(terraform_repository(tmp_path / "repo") / "vms" / "web01")
    (directory / "backend.tf").unlink()
    monkeypatch.setenv("GIT_DIR", str(committing / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(committing / ".git" / "index"))

    assert ensure_config_structure(directory).ok
    assert backend_of(directory)[1] == {"schema_name": "vmprov_vms__web01"}


def test_the_default_backend_is_pg_with_a_schema_per_directory(tmp_path):
    repository = terraform_repository(tmp_path / "repo")
    directory = bare_vm_dir(repository / "vms" / "DC 1" / "web01")
    (directory / "backend.tf").unlink()

    assert ensure_config_structure(directory).ok

    label, body = backend_of(directory)
    assert label == "pg"
    assert body["schema_name"].startswith("vmprov_vms__dc-1-")  # "DC 1" reduced to [a-z0-9-], with its hash
    assert body["schema_name"].endswith("__web01")


def test_a_backend_file_of_the_users_own_is_not_changed(tmp_path):
    directory = bare_vm_dir(tmp_path / "vms" / "web01")
    write(directory, {"backend.tf": "# the backend will go here\n"})
    before = snapshot(directory)["backend.tf"]

    report = ensure_config_structure(directory, repo_root=tmp_path)

    assert report.ok, report.lines()
    assert snapshot(directory)["backend.tf"] == before
    assert backend_of(directory, "vmprov_backend.tf")[1] == {"schema_name": "vmprov_vms__web01"}


def test_an_explicit_repository_root_gives_the_path_outside_git(tmp_path):
    directory = bare_vm_dir(tmp_path / "checkout" / "vms" / "web01")
    (directory / "backend.tf").unlink()
    settings = RenderSettings(backend="gcs", backend_config={"bucket": "states"})

    without_root = ensure_config_structure(directory, settings=settings)
    with_root = ensure_config_structure(directory, settings=settings, repo_root=tmp_path / "checkout")

    assert without_root.problems == [
        "no backend block, and vmprov cannot make its state key: it is not inside a Git repository: pass "
        "--repo-root (the root of the repository Atlantis plans), since the state key is made from the "
        "directory's path below that root"
    ]
    assert with_root.ok, with_root.lines()
    assert backend_of(directory) == ("gcs", {"prefix": "vmprov/vms__web01", "bucket": "states"})


@pytest.mark.parametrize("where", ["root", "outside"])
def test_no_backend_is_added_without_a_path_below_the_root(tmp_path, where):
    directory = bare_vm_dir(tmp_path / "vm")
    (directory / "backend.tf").unlink()
    repo_root = directory if where == "root" else tmp_path / "elsewhere"
    report = ensure_config_structure(directory, repo_root=repo_root)
    reason = "it is the repository root itself" if where == "root" else "it is not below the repository root"
    assert any(reason in problem for problem in report.problems), report.problems
    assert not (directory / "backend.tf").exists()


@pytest.mark.parametrize("state", ["terraform.tfstate", "terraform.tfstate.d"])
def test_a_directory_holding_local_state_is_refused_with_instructions(tmp_path, state):
    repository = terraform_repository(tmp_path / "repo")
    directory = bare_vm_dir(repository / "vms" / "web01")
    (directory / "backend.tf").unlink()
    if state.endswith(".d"):
        (directory / state / "staging").mkdir(parents=True)
    else:
        write(directory, {state: '{"version": 4, "resources": []}'})
    before = snapshot(directory)

    check = ensure_config_structure(directory, check=True)
    report = ensure_config_structure(directory)

    assert snapshot(directory) == before, "nothing is written next to local state"
    for result in (check, report):
        assert not result.ok
        assert any(
            problem.startswith(f"no backend block, and {state} holds local state") for problem in result.problems
        )
    (migration,) = [note for note in report.notes if note.startswith("to migrate the local state")]
    assert "run `terraform init -migrate-state` here" in migration
    assert 'backend "pg" {\n    schema_name = "vmprov_vms__web01"\n  }' in migration
    assert "nothing was added: migrate the local state first" in report.notes
    assert "        terraform {" in report.lines(), "the block is printed as a block"


def test_a_hand_written_directory_with_its_own_providers_file_is_completed_around_it(tmp_path):
    """The user's providers.tf (their own provider settings) stays as it is; everything else is added."""
    repository = terraform_repository(tmp_path / "repo")
    own_providers = (
        'terraform {\n  required_providers {\n    vsphere = {\n      source  = "hashicorp/vsphere"\n'
        '      version = "2.4.3"\n    }\n  }\n}\n\nprovider "vsphere" {\n  vsphere_server       = var.vcenter\n'
        "  allow_unverified_ssl = true\n}\n"
    )
    directory = write(
        repository / "vms" / "dc1" / "app01",
        {
            "providers.tf": own_providers,
            "main.tf": HAND_WRITTEN_MAIN,
            "terraform.tfvars": HAND_WRITTEN_VALUES + 'vcenter = "vc.example.com"\n',
        },
    )
    before = snapshot(directory)

    report = ensure_config_structure(directory)

    assert report.ok, report.lines()
    assert report.written == ["vmprov_providers.tf", "variables.tf", "backend.tf"]
    assert snapshot(directory)["providers.tf"] == before["providers.tf"]
    assert (directory / "vmprov_providers.tf").read_text() == providers_text(
        [piece for piece in providers_template_pieces() if piece.kind == "required_version"]
    )
    assert declarations(directory, "variables.tf")["vcenter"] == "string"
    assert ensure_config_structure(directory, check=True).ok
    call_command("ensure_config_structure", str(directory), "--check")
