"""provisioning.terraform: escaping, specs, settings, state keys, golden renders, and `terraform fmt` agreement.

UPDATE_GOLDEN=1 rewrites tests/provisioning/golden/* and terraform_templates/*.template from the current templates
(review the diff before committing).
"""

import os
import re
from pathlib import Path

import hcl2
import pytest
from django.core.exceptions import ImproperlyConfigured

from provisioning.terraform.hcl import hcl_string, hcl_value
from provisioning.terraform.hcl_reader import variable_references
from provisioning.terraform.render import config_hash, render, render_providers, render_variables, tfvars_values
from provisioning.terraform.settings import RenderSettings, render_settings, settings_problems, state_name
from provisioning.terraform.spec import InvalidMachineSpec, TemplateDisk, TemplateSpec, spec_problems
from provisioning.terraform.templates import TEMPLATES, template_text
from tests.support.specs import dhcp_spec, hostile_spec, make_template, static_spec, two_controller_spec
from tests.support.terraform_bin import run_terraform

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

CASES = {"dhcp": dhcp_spec, "static": static_spec}


def write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")


# --- hcl_string and friends ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("", '""'),
        ("plain text", '"plain text"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\temp\\", '"C:\\\\temp\\\\"'),
        ("a\nb\rc\td", '"a\\nb\\rc\\td"'),
        ("${var.x}", '"$${var.x}"'),
        ("%{ if x }", '"%%{ if x }"'),
        ("$${", '"$$${"'),
        ("%%{", '"%%%{"'),
        ("$ { and % { and ${", '"$ { and % { and $${"'),
        ("$", '"$"'),
        ("\x00\x1b\x7f\x85", '"\\u0000\\u001b\\u007f\\u0085"'),
        (
            "bidi \u202e override, zero width \u200b, bom \ufeff, ls \u2028",
            '"bidi \\u202e override, zero width \\u200b, bom \\ufeff, ls \\u2028"',
        ),
        ("tag \U000e0041", '"tag \\U000e0041"'),
        ("שלום مرحبا 日本 😀", '"שלום مرحبا 日本 😀"'),
    ],
)
def test_hcl_string_escapes_everything_that_could_leave_the_string(value, literal):
    assert hcl_string(value) == literal


def test_hcl_string_refuses_what_utf8_cannot_carry():
    with pytest.raises(ValueError, match="surrogate"):
        hcl_string("half \ud83d")
    with pytest.raises(TypeError):
        hcl_string(5)


def test_hcl_value_renders_each_type_and_escapes_nested_strings():
    assert hcl_value(None) == "null"
    assert hcl_value(True) == "true"
    assert hcl_value(False) == "false"
    assert hcl_value(0) == "0"
    assert hcl_value(["a", 1, None]) == '["a", 1, null]'
    assert hcl_value(()) == "[]"
    assert hcl_value({}) == "{}"
    assert hcl_value({"size": 40, "note": "${x}"}) == '{ size = 40, note = "$${x}" }'
    assert hcl_value(["${x}", {"k": ["\n"]}]) == '["$${x}", { k = ["\\n"] }]'
    with pytest.raises(TypeError):
        hcl_value(1.5)
    with pytest.raises(ValueError, match="identifier"):
        hcl_value({'bad" = 1 #': 1})


# --- MachineSpec ------------------------------------------------------------------------------------------------


def test_dhcp_is_the_absence_of_a_static_address():
    assert dhcp_spec().dhcp
    assert not static_spec().dhcp


def test_spec_accepts_the_inventory_template_dict():
    inventory_template = {
        "id": "vm-42",
        "name": "ubuntu-22.04",
        "uuid": "4217-aaaa",
        "guest_id": "ubuntu64Guest",
        "num_cpus": 2,
        "memory_mb": 2048,
        "firmware": "bios",
        "scsi_type": "lsilogic",
        "nic_types": ["vmxnet3"],
        "disks": [
            {"label": "Hard disk 1", "unit_number": 0, "size_gb": 16, "thin": True, "eagerly_scrub": False},
            {"label": "Hard disk 2", "unit_number": 15, "size_gb": 8, "thin": True, "eagerly_scrub": False},
        ],
        "scsi_controller_count": 2,
    }
    spec = dhcp_spec(template=inventory_template)
    assert spec.template == TemplateSpec(
        uuid="4217-aaaa",
        guest_id="ubuntu64Guest",
        scsi_type="lsilogic",
        firmware="bios",
        nic_types=("vmxnet3",),
        disks=(TemplateDisk("Hard disk 1", 16, True, False, 0), TemplateDisk("Hard disk 2", 8, True, False, 15)),
        scsi_controller_count=2,
    )
    assert spec_problems(spec) == []


def test_cached_templates_from_before_scsi_controller_count_have_one_controller():
    inventory_template = {
        "uuid": "4217-aaaa",
        "guest_id": "ubuntu64Guest",
        "scsi_type": "lsilogic",
        "nic_types": ["vmxnet3"],
        "disks": [{"label": "Hard disk 1", "unit_number": 0, "size_gb": 16}],
    }
    assert TemplateSpec.from_inventory(inventory_template).scsi_controller_count == 1
    assert tfvars_values(dhcp_spec(template=inventory_template))["scsi_controller_count"] == 1


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"disk_size_gb": 19}, "smaller than the template's first disk"),
        ({"num_cpus": 0}, "num_cpus must be a whole number"),
        ({"memory_mb": True}, "memory_mb must be a whole number"),
        ({"domain": ""}, "domain is empty"),
        ({"ipv4_gateway": "10.20.31.1"}, "outside 10.20.30.0/24"),
        ({"ipv4_gateway": ""}, "needs ipv4_gateway"),
        ({"ipv4_prefix": None}, "ipv4_prefix must be 1 to 32"),
        ({"ipv4_address": "10.20.30.400"}, "not an IPv4 address"),
        ({"dns_servers": ("10.0.0.1", "dns.example")}, "'dns.example' is not an IP address"),
        ({"template": make_template(disks=())}, "no disk"),
        ({"template": make_template(nic_types=())}, "no network adapter"),
        ({"template": make_template(scsi_controller_count=0)}, "scsi_controller_count must be 1 to 4"),
        ({"template": make_template(scsi_controller_count=5)}, "scsi_controller_count must be 1 to 4"),
        (
            {"template": make_template(disks=(TemplateDisk("Hard disk 1", 20, unit_number=15),))},
            "disk unit_number 15 is outside 0 to 14 (1 SCSI controller)",
        ),
        (
            {
                "template": make_template(
                    disks=(TemplateDisk("a", 20, unit_number=0), TemplateDisk("b", 20, unit_number=0))
                )
            },
            "disk unit_number 0 is used twice",
        ),
    ],
)
def test_render_refuses_a_spec_that_cannot_clone(changes, problem):
    spec = static_spec(**changes)
    with pytest.raises(InvalidMachineSpec, match=re.escape(problem)):
        render(spec, RenderSettings())


def test_dhcp_takes_no_static_settings():
    assert spec_problems(dhcp_spec(ipv4_gateway="10.0.0.1")) == [
        "DHCP (no ipv4_address) takes no prefix, gateway or DNS servers"
    ]


# --- Settings and state keys ----------------------------------------------------------------------------------


def backend_block(files: dict[str, str]) -> tuple[str, dict]:
    document = hcl2.loads(files["providers.tf"])
    [backend] = document["terraform"][0]["backend"]
    [(label, body)] = [(key, value) for key, value in backend.items() if not key.startswith("__")]
    values = {key: value.strip('"') for key, value in body.items() if not key.startswith("__")}
    return label.strip('"'), values


@pytest.mark.parametrize(
    ("backend", "config", "expected"),
    [
        ("pg", {}, {"schema_name": "vmprov_datacenter-2_web01"}),
        ("pg", {"schema_name": "tf_{state}"}, {"schema_name": "tf_datacenter-2_web01"}),
        (
            "s3",
            {"bucket": "tfstate", "region": "eu-west-1", "key": "vms"},
            {"key": "vms/datacenter-2_web01", "bucket": "tfstate", "region": "eu-west-1"},
        ),
        ("s3", {"bucket": "b"}, {"key": "vmprov/datacenter-2_web01.tfstate", "bucket": "b"}),
        ("azurerm", {"container_name": "tf"}, {"key": "vmprov/datacenter-2_web01.tfstate", "container_name": "tf"}),
        ("gcs", {"bucket": "b"}, {"prefix": "vmprov/datacenter-2_web01", "bucket": "b"}),
        ("consul", {"address": "consul:8500"}, {"path": "vmprov/datacenter-2_web01", "address": "consul:8500"}),
        ("local", {}, {"path": "datacenter-2_web01.tfstate"}),
        (
            "http",
            {
                "address": "https://gitlab.example/api/v4/projects/7/terraform/state/",
                "lock_address": "https://gitlab.example/api/v4/projects/7/terraform/state/{state}/lock",
                "lock_method": "POST",
            },
            {
                "address": "https://gitlab.example/api/v4/projects/7/terraform/state/datacenter-2_web01",
                "lock_address": "https://gitlab.example/api/v4/projects/7/terraform/state/datacenter-2_web01/lock",
                "lock_method": "POST",
            },
        ),
    ],
)
def test_each_backend_gets_one_state_key_per_vm(backend, config, expected):
    files = render(dhcp_spec(), RenderSettings(backend=backend, backend_config=config))
    assert backend_block(files) == (backend, expected)


def test_state_keys_differ_per_vm_and_per_datacenter():
    names = {
        state_name(dhcp_spec()),
        state_name(dhcp_spec(vm_name="web02")),
        state_name(dhcp_spec(datacenter_id="datacenter-3")),
        # Cleaning must not merge names that differ only in characters it replaces.
        state_name(dhcp_spec(vm_name="Web.01")),
        state_name(dhcp_spec(vm_name="web-01")),
        state_name(dhcp_spec(datacenter_id="datacenter-2_web01", vm_name="x")),
    }
    assert len(names) == 6


def test_state_key_of_hostile_names_is_only_safe_characters():
    spec = dhcp_spec(vm_name='x"}\n  conn_str = "postgres://evil" ${var.a}', datacenter_id="dc/../../etc")
    files = render(spec, RenderSettings())
    _, values = backend_block(files)
    # Nothing broke out of the string: the block still holds exactly one attribute, made of safe characters.
    assert list(values) == ["schema_name"]
    assert re.fullmatch(r"vmprov_[a-z0-9-]+_[a-z0-9-]+", values["schema_name"])
    assert '"postgres://evil"' not in files["providers.tf"]


def test_pg_schema_names_stay_within_63_bytes_and_distinct():
    long_a = dhcp_spec(vm_name="a" * 63)
    long_b = dhcp_spec(vm_name="a" * 62 + "b")
    key_a = backend_block(render(long_a, RenderSettings()))[1]["schema_name"]
    key_b = backend_block(render(long_b, RenderSettings()))[1]["schema_name"]
    assert len(key_a.encode()) <= 63 and len(key_b.encode()) <= 63
    assert key_a != key_b


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "swift"}, "not one of"),
        ({"backend_config": {"conn_str": "postgres://u:p@db/tf"}}, "must not hold 'conn_str'"),
        ({"backend": "s3", "backend_config": {"secret_key": "x"}}, "must not hold 'secret_key'"),
        ({"backend_config": {"nested": {"a": 1}}}, "must be a string, number"),
        ({"backend_config": {"schema_name": 5}}, "schema_name must be a string"),
        ({"backend": "http"}, "needs address"),
        ({"tfvars_file": "../x.tfvars"}, "plain file name"),
        ({"tfvars_file": "inputs.json"}, "plain file name"),
    ],
)
def test_bad_render_settings_are_refused(kwargs, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        RenderSettings(**kwargs)


def test_settings_come_from_django_lazily(settings):
    settings.VMPROV_TF_BACKEND = "s3"
    settings.VMPROV_TF_BACKEND_CONFIG = '{"bucket": "tf-state", "region": "eu-central-1"}'
    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    files = render(static_spec())
    assert sorted(files) == ["machine.tf", "machine_inputs.tfvars", "providers.tf", "variables.tf"]
    assert backend_block(files) == (
        "s3",
        {"key": "vmprov/datacenter-2_db-01.tfstate", "bucket": "tf-state", "region": "eu-central-1"},
    )
    assert "Every value comes from machine_inputs.tfvars" in files["machine.tf"]


def test_settings_defaults_without_django_settings(settings):
    for name in ("VMPROV_TF_BACKEND", "VMPROV_TF_BACKEND_CONFIG", "VMPROV_TFVARS_FILE"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert RenderSettings.from_django() == RenderSettings(
        backend="pg", backend_config={}, tfvars_file="terraform.tfvars"
    )


def test_backend_config_json_errors_are_configuration_errors(settings):
    settings.VMPROV_TF_BACKEND_CONFIG = "{bucket: x}"
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        RenderSettings.from_django()


def test_bad_render_settings_name_every_problem_at_once():
    with pytest.raises(ImproperlyConfigured) as raised:
        RenderSettings(backend="swift", backend_config={"token": "x"}, tfvars_file="values.json")
    message = str(raised.value)
    assert "'swift' is not one of" in message
    assert "must not hold 'token'" in message
    assert "'values.json' must be a plain file name" in message


def test_render_settings_are_read_once_and_again_when_a_test_changes_them(settings):
    first = render_settings()
    assert render_settings() is first, "read and checked once, not on every render"
    settings.VMPROV_TF_BACKEND = "local"
    assert render_settings().backend == "local"
    settings.VMPROV_TF_BACKEND_CONFIG = {"path": "states/{state}.tfstate"}
    assert render_settings().backend_config == {"path": "states/{state}.tfstate"}
    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    assert "machine_inputs.tfvars" in render(static_spec())


def test_good_settings_have_no_problems(settings):
    assert settings_problems() == []
    settings.VMPROV_TF_BACKEND = "s3"
    settings.VMPROV_TF_BACKEND_CONFIG = '{"bucket": "tf-state", "key": "vms/{state}.tfstate", "encrypt": true}'
    settings.VMPROV_TFVARS_FILE = "machine_inputs.tfvars"
    assert settings_problems() == []


def test_settings_problems_lists_every_problem_without_raising(settings):
    settings.VMPROV_TF_BACKEND = "http"
    settings.VMPROV_TF_BACKEND_CONFIG = {"password": "x", "lock_address": 5, "retry": {"max": 3}}
    settings.VMPROV_TFVARS_FILE = "../values.tfvars"
    assert settings_problems() == [
        "VMPROV_TFVARS_FILE '../values.tfvars' must be a plain file name ending in .tfvars",
        "VMPROV_TF_BACKEND_CONFIG must not hold 'password': rendered files are committed to Git; give secrets to "
        "Atlantis through the backend's environment variables",
        "VMPROV_TF_BACKEND_CONFIG: retry must be a string, number, true/false or a list of strings",
        "VMPROV_TF_BACKEND_CONFIG: lock_address must be a string",
        "the http backend needs address in VMPROV_TF_BACKEND_CONFIG",
    ]


def test_settings_problems_reports_bad_json_with_the_other_settings(settings):
    settings.VMPROV_TF_BACKEND = "swift"
    settings.VMPROV_TF_BACKEND_CONFIG = "{bucket: x}"
    settings.VMPROV_TFVARS_FILE = "values.json"
    problems = settings_problems()
    assert [problem.split(" ", 2)[:2] for problem in problems] == [
        ["VMPROV_TF_BACKEND_CONFIG", "is"],
        ["VMPROV_TF_BACKEND", "'swift'"],
        ["VMPROV_TFVARS_FILE", "'values.json'"],
    ]
    assert "not valid JSON" in problems[0]
    settings.VMPROV_TF_BACKEND_CONFIG = "[1, 2]"
    assert "VMPROV_TF_BACKEND_CONFIG must be a JSON object" in settings_problems()


# --- What goes where --------------------------------------------------------------------------------------------


def test_user_input_appears_only_in_the_values_file():
    markers = {
        "annotation": "MARKannotation",
        "folder": "MARKfolder",
        "domain": "MARKdomain.example",
        "resource_pool_id": "MARKpool",
        "datastore_id": "MARKdatastore",
        "network_id": "MARKnetwork",
        "datacenter_name": "MARKdcname",
        "cluster_name": "MARKclustername",
    }
    files = render(static_spec(**markers), RenderSettings())
    for name, content in files.items():
        found = [marker for marker in markers.values() if marker in content]
        if name == "terraform.tfvars":
            # Names are for people; placement is by id, so the names never reach Terraform.
            assert sorted(found) == sorted(set(markers.values()) - {"MARKdcname", "MARKclustername"})
        else:
            assert found == [], name


def test_variables_tf_declares_exactly_what_the_tf_files_use():
    files = render(static_spec(), RenderSettings())
    declared = {
        key.strip('"'): body
        for block in hcl2.loads(files["variables.tf"])["variable"]
        for key, body in block.items()
        if not key.startswith("__")
    }
    used = set()
    for name in ("providers.tf", "machine.tf"):
        used |= variable_references(hcl2.loads(files[name]))
    assert used == set(declared)
    connection = {"vsphere_user", "vsphere_password", "vsphere_server", "allow_unverified_ssl"}
    for name in connection - {"allow_unverified_ssl"}:
        assert declared[name]["default"] is None, name  # null: the provider's VSPHERE_* variables apply
    assert declared["vsphere_password"]["sensitive"] is True
    # Issue 3: verification stays on unless Atlantis's environment sets TF_VAR_allow_unverified_ssl=true.
    assert declared["allow_unverified_ssl"]["type"] == "bool"
    assert declared["allow_unverified_ssl"]["default"] is False
    assert "TF_VAR_allow_unverified_ssl=true" in declared["allow_unverified_ssl"]["description"]
    for name in set(declared) - connection:
        assert "default" not in declared[name], name
        assert declared[name]["type"] in {"string", "number", "${list(string)}"} or name == "disks", name


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_file_sets_every_request_variable(case):
    files = render(CASES[case](), RenderSettings())
    declared = {
        key.strip('"')
        for block in hcl2.loads(files["variables.tf"])["variable"]
        for key, body in block.items()
        if not key.startswith("__") and "default" not in body
    }
    values = {key for key in hcl2.loads(files["terraform.tfvars"]) if not key.startswith("__")}
    assert values == declared


def test_one_disk_per_template_disk_first_resized_others_kept():
    values = tfvars_values(dhcp_spec(disk_size_gb=64))
    assert values["disks"] == [
        {"size": 64, "unit_number": 0, "thin_provisioned": True, "eagerly_scrub": False},
        {"size": 50, "unit_number": 1, "thin_provisioned": False, "eagerly_scrub": True},
    ]
    assert values["network_adapter_type"] == "vmxnet3"
    assert values["scsi_controller_count"] == 1


def test_disks_without_unit_number_get_the_lowest_free_ones():
    # Provider unit numbers already skip the controller's own SCSI slot: 7 is SCSI0:8, a disk's place.
    units = [0, 1, 2, 3, 4, 5, 6, None, 8, None]
    disks = tuple(TemplateDisk(f"Hard disk {i}", 10, unit_number=unit) for i, unit in enumerate(units))
    values = tfvars_values(dhcp_spec(template=make_template(disks=disks)))
    assert [disk["unit_number"] for disk in values["disks"]] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_a_template_on_two_scsi_controllers_renders_bus_wide_unit_numbers_and_the_controller_count():
    files = render(two_controller_spec(), RenderSettings())

    [resource] = hcl2.loads(files["machine.tf"])["resource"]
    vm = resource['"vsphere_virtual_machine"']['"vm"']
    assert vm["scsi_controller_count"] == "${var.scsi_controller_count}"
    values = hcl2.loads(files["terraform.tfvars"])
    assert values["scsi_controller_count"] == 2
    assert [(disk["unit_number"], disk["size"]) for disk in values["disks"]] == [(0, 40), (7, 30), (15, 50)]
    declared = {key.strip('"') for block in hcl2.loads(files["variables.tf"])["variable"] for key in block}
    assert "scsi_controller_count" in declared


def test_dhcp_values_are_null_and_static_values_are_set():
    dhcp = tfvars_values(dhcp_spec())
    assert (dhcp["ipv4_address"], dhcp["ipv4_prefix"], dhcp["ipv4_gateway"], dhcp["dns_servers"]) == (
        None,
        None,
        None,
        [],
    )
    static = tfvars_values(static_spec())
    assert (static["ipv4_address"], static["ipv4_prefix"], static["ipv4_gateway"], static["dns_servers"]) == (
        "10.20.30.40",
        24,
        "10.20.30.1",
        ["10.20.0.53", "10.20.1.53"],
    )


def test_config_hash_covers_names_and_contents_in_any_order():
    files = render(static_spec(), RenderSettings())
    assert config_hash(files) == config_hash(dict(reversed(list(files.items()))))
    assert config_hash(files) != config_hash({**files, "machine.tf": files["machine.tf"] + "\n"})
    assert config_hash({"a": "bc"}) != config_hash({"ab": "c"})
    assert re.fullmatch(r"[0-9a-f]{64}", config_hash(files))


# --- Golden files and terraform fmt -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden_files(case):
    files = render(CASES[case](), RenderSettings())
    directory = GOLDEN / case
    if UPDATE_GOLDEN:
        for stale in directory.glob("*"):
            stale.unlink()
        write(directory, files)
    assert sorted(path.name for path in directory.iterdir()) == sorted(files)
    for name, content in files.items():
        assert (directory / name).read_bytes() == content.encode(), f"{case}/{name} differs from the golden file"


def test_standalone_templates_are_the_renders_without_per_request_parts():
    expected = {
        "providers.tf.template": render_providers(None),
        "variables.tf.template": render_variables(),
    }
    if UPDATE_GOLDEN:
        write(Path(str(TEMPLATES)), expected)
    for name, content in expected.items():
        assert template_text(name) == content, name
    rendered = render(dhcp_spec(), RenderSettings())
    assert rendered["variables.tf"] == expected["variables.tf.template"]
    # providers.tf is the template plus the backend block inside the terraform block.
    without_backend = re.sub(r"\n\n  # One state per VM.*?\n  }\n", "\n", rendered["providers.tf"], flags=re.S)
    assert without_backend == expected["providers.tf.template"]


@pytest.mark.parametrize("case", ["dhcp", "static", "hostile", "machine_inputs", "s3", "two_controllers"])
def test_rendered_files_are_exactly_what_terraform_fmt_writes(tmp_path, case):
    specs = {
        "hostile": hostile_spec,
        "machine_inputs": static_spec,
        "s3": static_spec,
        "two_controllers": two_controller_spec,
        **CASES,
    }
    settings = {
        "machine_inputs": RenderSettings(tfvars_file="machine_inputs.tfvars"),
        "s3": RenderSettings(
            backend="s3",
            backend_config={"bucket": "b", "region": "eu-west-1", "use_path_style": True, "max_retries": 5},
        ),
    }.get(case, RenderSettings())
    files = render(specs[case](), settings)
    write(tmp_path, files)
    result = run_terraform(tmp_path, "fmt", "-check", "-diff", "-no-color", check=False)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_fmt_check_catches_misaligned_files(tmp_path):
    """The fmt test above can fail: a misaligned file makes terraform fmt -check exit non-zero."""
    files = render(static_spec(), RenderSettings())
    write(tmp_path, {**files, "terraform.tfvars": files["terraform.tfvars"].replace("vm_name    =", "vm_name =")})
    result = run_terraform(tmp_path, "fmt", "-check", "-no-color", check=False)
    assert result.returncode != 0
    assert "terraform.tfvars" in result.stdout


def test_standalone_templates_are_fmt_clean(tmp_path):
    write(
        tmp_path,
        {
            "providers.tf": template_text("providers.tf.template"),
            "variables.tf": template_text("variables.tf.template"),
        },
    )
    result = run_terraform(tmp_path, "fmt", "-check", "-diff", "-no-color", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
