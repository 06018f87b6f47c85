"""Terraform itself reads back every value vmprov escapes, unchanged.

No provider and no backend: directories here hold only `variable` and `output` blocks plus a values file, so
`terraform init` + `apply` run offline with local state in the test's temporary directory, and
`terraform output -json` gives the values back for an exact comparison.
"""

import json
from pathlib import Path

import pytest

from provisioning.terraform.hcl import hcl_string, hcl_value
from provisioning.terraform.render import render
from provisioning.terraform.settings import RenderSettings
from tests.support.specs import HOSTILE_TEXT, dhcp_spec, hostile_spec, static_spec, two_controller_spec
from tests.support.terraform_bin import run_terraform

HOSTILE_VALUES = [
    "",
    'double "quotes" and \\"escaped\\" ones',
    "back\\slash\\\\double",
    "trailing backslash \\",
    "\\",
    "${var.secret}",
    '${file("/etc/passwd")}',
    "%{ for x in [1, 2] }${x}%{ endfor }",
    "%{if true}yes%{endif}",
    "$${already escaped}",
    "%%{already escaped}",
    "$$${",
    "$",
    "%",
    "{}",
    "}}}{{{",
    "line1\nline2\n",
    "crlf\r\nend\r",
    "tab\there\t",
    "control \x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85",
    "unicode: é ß 日本語 Ωμέγα",
    "emoji: 😀 👩\u200d💻 🇺🇦 🏳️\u200d🌈",
    "rtl: שלום עולם مرحبا بالعالم",
    "bidi override \u202eevil\u202c and isolates \u2066x\u2069 rlm \u200f",
    "zero width \u200b\u200c\u200d bom \ufeff separators \u2028\u2029",
    "plane 14 tag \U000e0041 and private use \ue000",
    "# not a comment",
    "// not a comment either",
    "/* nor this */",
    'EOT\n<<EOT\nheredoc"\nEOT',
    'x"\n}\nvariable "injected" {\n  default = "pwned',
    "null",
    "true",
    "0x10",
    "a" * 10_000,
    ("${" * 500) + ("\\" * 500) + ('"' * 500),
    HOSTILE_TEXT,
]


def apply_and_read_outputs(directory: Path, *extra: str) -> dict:
    run_terraform(directory, "init", "-input=false", "-no-color")
    run_terraform(directory, "apply", "-auto-approve", "-input=false", "-no-color", *extra)
    outputs = json.loads(run_terraform(directory, "output", "-json").stdout)
    return {name: output["value"] for name, output in outputs.items()}


def test_hostile_strings_come_back_unchanged(tmp_path):
    blocks, values = [], []
    for index, value in enumerate(HOSTILE_VALUES):
        blocks.append(
            f'variable "v{index}" {{\n  type = string\n}}\n\noutput "v{index}" {{\n  value = var.v{index}\n}}\n'
        )
        values.append(f"v{index} = {hcl_string(value)}\n")
    (tmp_path / "main.tf").write_text("\n".join(blocks), encoding="utf-8")
    (tmp_path / "terraform.tfvars").write_text("".join(values), encoding="utf-8")

    outputs = apply_and_read_outputs(tmp_path)

    assert len(outputs) == len(HOSTILE_VALUES)
    for index, value in enumerate(HOSTILE_VALUES):
        assert outputs[f"v{index}"] == value, f"value {index} changed on the way: {value[:60]!r}"
    # Nothing was declared by the values file itself.
    assert "injected" not in outputs


def test_lists_and_objects_of_hostile_strings_come_back_unchanged(tmp_path):
    nested = {"label": "${x}\n", "tags": HOSTILE_VALUES[:12], "count": 3, "on": True, "off": None}
    (tmp_path / "main.tf").write_text(
        'variable "strings" {\n  type = list(string)\n}\n\n'
        'variable "thing" {\n  type = any\n}\n\n'
        'output "strings" {\n  value = var.strings\n}\n\n'
        'output "thing" {\n  value = var.thing\n}\n',
        encoding="utf-8",
    )
    (tmp_path / "terraform.tfvars").write_text(
        f"strings = {hcl_value(HOSTILE_VALUES)}\nthing = {hcl_value(nested)}\n", encoding="utf-8"
    )

    outputs = apply_and_read_outputs(tmp_path)

    assert outputs["strings"] == HOSTILE_VALUES
    assert outputs["thing"] == nested


def expected_values(spec) -> dict:
    """What Terraform must see for each request variable, written out from the spec (not from vmprov's code)."""
    static = not spec.dhcp
    return {
        "vm_name": spec.vm_name,
        "annotation": spec.annotation,
        "template_uuid": spec.template.uuid,
        "guest_id": spec.template.guest_id,
        "scsi_type": spec.template.scsi_type,
        "scsi_controller_count": spec.template.scsi_controller_count,
        "firmware": spec.template.firmware,
        "network_adapter_type": spec.template.nic_types[0],
        "resource_pool_id": spec.resource_pool_id,
        "datastore_id": spec.datastore_id,
        "network_id": spec.network_id,
        "folder": spec.folder,
        "num_cpus": spec.num_cpus,
        "memory_mb": spec.memory_mb,
        "disks": [
            {
                "size": spec.disk_size_gb if index == 0 else disk.size_gb,
                "unit_number": disk.unit_number,
                "thin_provisioned": disk.thin,
                "eagerly_scrub": disk.eagerly_scrub,
            }
            for index, disk in enumerate(spec.template.disks)
        ],
        "domain": spec.domain,
        "ipv4_address": spec.ipv4_address if static else None,
        "ipv4_prefix": spec.ipv4_prefix if static else None,
        "ipv4_gateway": spec.ipv4_gateway if static else None,
        "dns_servers": list(spec.dns_servers),
        # Connection variables are not in the values file: null, so the provider reads VSPHERE_*; certificate
        # verification stays on (issue 3) unless Atlantis sets TF_VAR_allow_unverified_ssl=true.
        "vsphere_user": None,
        "vsphere_password": None,
        "vsphere_server": None,
        "allow_unverified_ssl": False,
    }


def outputs_for_every_variable(variables: list[str]) -> str:
    """One output per variable. Terraform drops null outputs, so each value is wrapped in an object: `{ v = null }`
    survives and tells "null" apart from "missing"."""
    return "\n".join(
        f'output "{name}" {{\n'
        f"  value     = {{ v = var.{name} }}\n"
        f"  sensitive = {'true' if name == 'vsphere_password' else 'false'}\n"
        "}\n"
        for name in variables
    )


def unwrap(outputs: dict) -> dict:
    return {name: value["v"] for name, value in outputs.items()}


@pytest.mark.parametrize(
    "make_spec",
    [dhcp_spec, static_spec, hostile_spec, two_controller_spec],
    ids=["dhcp", "static", "hostile", "two_controllers"],
)
def test_rendered_values_file_gives_variables_tf_every_value_unchanged(tmp_path, make_spec):
    """The real pair: vmprov's variables.tf (types included) with vmprov's values file."""
    spec = make_spec()
    files = render(spec, RenderSettings())
    expected = expected_values(spec)
    (tmp_path / "variables.tf").write_text(files["variables.tf"], encoding="utf-8")
    (tmp_path / "terraform.tfvars").write_text(files["terraform.tfvars"], encoding="utf-8")
    (tmp_path / "outputs.tf").write_text(outputs_for_every_variable(sorted(expected)), encoding="utf-8")

    assert unwrap(apply_and_read_outputs(tmp_path)) == expected


def test_machine_inputs_tfvars_is_read_only_when_passed_with_var_file(tmp_path):
    """Why VMPROV_TFVARS_FILE=machine_inputs.tfvars needs an Atlantis workflow with -var-file."""
    spec = static_spec()
    files = render(spec, RenderSettings(tfvars_file="machine_inputs.tfvars"))
    (tmp_path / "variables.tf").write_text(files["variables.tf"], encoding="utf-8")
    (tmp_path / "machine_inputs.tfvars").write_text(files["machine_inputs.tfvars"], encoding="utf-8")
    (tmp_path / "outputs.tf").write_text(outputs_for_every_variable(["vm_name", "dns_servers"]), encoding="utf-8")
    run_terraform(tmp_path, "init", "-input=false", "-no-color")

    without = run_terraform(tmp_path, "plan", "-input=false", "-no-color", check=False)
    assert without.returncode != 0
    assert "No value for required variable" in without.stderr

    outputs = unwrap(apply_and_read_outputs(tmp_path, "-var-file=machine_inputs.tfvars"))
    assert outputs == {"vm_name": "db-01", "dns_servers": ["10.20.0.53", "10.20.1.53"]}
