"""Day-2 Terraform: a change edits only the values it changes in the values file as it stands; a decommission's
tombstone removes the VM's resource and keeps everything else; the restart rules of an in-place resize; hot add on
new VMs as a setting."""

import dataclasses

import pytest

from provisioning.terraform.edit import EditRefused, edit_values, tombstone, values_file_of
from provisioning.terraform.hcl_reader import parse_hcl
from provisioning.terraform.render import render
from provisioning.terraform.resize import reboot_impact, restart_reasons, shrink_problem
from provisioning.terraform.settings import RenderSettings
from tests.provisioning.test_terraform_roundtrip import apply_and_read_outputs, outputs_for_every_variable, unwrap
from tests.support.specs import HOSTILE_TEXT, dhcp_spec, hostile_spec, static_spec
from tests.support.terraform_bin import run_terraform

# --- The values file, edited in place ---------------------------------------------------------------------------


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    return [(old, new) for old, new in zip(before.splitlines(), after.splitlines(), strict=True) if old != new]


def test_a_change_rewrites_exactly_the_lines_of_the_values_it_changes():
    values = render(static_spec())["terraform.tfvars"]
    edited = edit_values(values, {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 60, "notes": "bigger"})
    assert changed_lines(values, edited) == [
        ('annotation = "Owner: \\"bob\\"\\nTicket: OPS-1"', 'annotation = "bigger"'),
        ("num_cpus  = 2", "num_cpus  = 4"),
        ("memory_mb = 4096", "memory_mb = 8192"),
        (
            "  { size = 40, unit_number = 0, thin_provisioned = true, eagerly_scrub = false },",
            "  { size = 60, unit_number = 0, thin_provisioned = true, eagerly_scrub = false },",
        ),
    ]
    assert edit_values(values, {}) == values


def test_an_old_directory_keeps_its_own_files_and_only_its_values_change():
    """Whatever today's templates say (hot add, say), a change of an old VM touches its values file only."""
    old = render(dhcp_spec(), RenderSettings(hot_add=False))
    assert "hot_add" not in old["machine.tf"]
    edited = edit_values(old["terraform.tfvars"], {"num_cpus": 3})
    assert changed_lines(old["terraform.tfvars"], edited) == [("num_cpus  = 2", "num_cpus  = 3")]


def test_hostile_notes_reach_terraform_unchanged_and_the_file_stays_formatted(tmp_path):
    files = render(hostile_spec())
    edited = edit_values(files["terraform.tfvars"], {"notes": HOSTILE_TEXT + " again", "num_cpus": 5})
    (tmp_path / "variables.tf").write_text(files["variables.tf"], encoding="utf-8")
    (tmp_path / "terraform.tfvars").write_text(edited, encoding="utf-8")
    (tmp_path / "outputs.tf").write_text(outputs_for_every_variable(["annotation", "num_cpus"]), encoding="utf-8")
    assert unwrap(apply_and_read_outputs(tmp_path)) == {"annotation": HOSTILE_TEXT + " again", "num_cpus": 5}
    assert run_terraform(tmp_path, "fmt", "-check", "-no-color", "terraform.tfvars", check=False).returncode == 0


@pytest.mark.parametrize(
    ("values", "changes", "problem"),
    [
        ("num_cpus = 2\nnum_cpus = 2\nmemory_mb = 1\n", {"num_cpus": 4}, "num_cpus is set on 2 lines"),
        ("memory_mb = 1\n", {"num_cpus": 4}, "num_cpus is set on 0 lines"),
        ("num_cpus = 2 +\n1\n", {"num_cpus": 4}, "not one literal on its own line"),
        ("num_cpus = {\n", {"num_cpus": 4}, "does not parse"),
        # A heredoc: rewriting its first line would leave the rest behind as something else.
        ("annotation = <<EOT\nnum_cpus = 9\nEOT\n", {"notes": "x"}, "not one literal on its own line"),
    ],
)
def test_a_values_file_not_laid_out_as_vmprov_writes_it_is_refused(values, changes, problem):
    with pytest.raises(EditRefused, match=problem):
        edit_values(values, changes)


def test_a_comment_after_a_value_stays():
    assert edit_values('num_cpus = 2 # was 1\nannotation = "a" // why\n', {"num_cpus": 4, "notes": "b"}) == (
        'num_cpus = 4 # was 1\nannotation = "b" // why\n'
    )


def test_an_edit_that_would_change_another_value_is_refused():
    values = 'annotation = "a"\nextra = 1\n'
    with pytest.raises(EditRefused, match="sets no disks"):
        edit_values(values, {"disk_size_gb": 50})
    # The first `size = N` after `disks = [` must be the first disk's.
    with pytest.raises(EditRefused, match="change more than was asked: disks"):
        edit_values("disks = [\n  {}, { size = 40 },\n]\n", {"disk_size_gb": 60})


def test_the_values_file_is_the_configured_one_or_the_only_one():
    assert values_file_of({"terraform.tfvars": "", "machine.tf": ""}, "terraform.tfvars") == "terraform.tfvars"
    assert values_file_of({"machine_inputs.tfvars": ""}, "terraform.tfvars") == "machine_inputs.tfvars"
    with pytest.raises(EditRefused, match="no single values file"):
        values_file_of({"a.tfvars": "", "b.tfvars": ""}, "terraform.tfvars")


# --- The tombstone ------------------------------------------------------------------------------------------------


def test_a_tombstone_keeps_providers_backend_variables_and_values_and_drops_the_vm():
    files = render(static_spec())
    dead = tombstone(files, 42)
    assert {name: dead[name] for name in files if name != "machine.tf"} == {
        name: content for name, content in files.items() if name != "machine.tf"
    }
    assert "request #42" in dead["machine.tf"]
    assert parse_hcl(dead["machine.tf"]).keys() <= {"__comments__"}, "nothing but a comment"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"main.tf": 'resource "vsphere_virtual_machine" "vm" {\n}\n'}, "2 files declare"),
        ({"machine.tf": None}, "0 files declare"),
    ],
)
def test_a_tombstone_needs_exactly_one_file_declaring_the_vm(extra, problem):
    files = {**render(dhcp_spec()), **extra}
    with pytest.raises(EditRefused, match=problem):
        tombstone({name: text for name, text in files.items() if text is not None}, 1)


def test_a_tombstone_never_removes_more_than_the_vm():
    files = render(dhcp_spec())
    files["machine.tf"] += 'resource "vsphere_folder" "team" {\n  path = "team"\n}\n'
    with pytest.raises(EditRefused, match="declares more than the VM"):
        tombstone(files, 1)


# --- Restarts -----------------------------------------------------------------------------------------------------

HOT = {
    "num_cpus": 2,
    "memory_mb": 4096,
    "power_state": "poweredOn",
    "cpu_hot_add_enabled": True,
    "cpu_hot_remove_enabled": False,
    "memory_hot_add_enabled": True,
}


@pytest.mark.parametrize(
    ("vm", "wanted", "reason"),
    [
        (HOT, {"num_cpus": 4, "memory_mb": 8192}, None),
        (HOT, {"num_cpus": 2, "memory_mb": 4096}, None),
        ({**HOT, "power_state": "poweredOff"}, {"num_cpus": 1, "memory_mb": 512}, None),
        ({**HOT, "cpu_hot_add_enabled": False}, {"num_cpus": 4, "memory_mb": 4096}, "without CPU hot add"),
        (HOT, {"num_cpus": 1, "memory_mb": 4096}, "without CPU hot remove"),
        ({**HOT, "cpu_hot_remove_enabled": True}, {"num_cpus": 1, "memory_mb": 4096}, None),
        (HOT, {"num_cpus": 2, "memory_mb": 2048}, "memory is never taken from a running guest"),
        ({**HOT, "memory_hot_add_enabled": False}, {"num_cpus": 2, "memory_mb": 8192}, "without memory hot add"),
        ({**HOT, "memory_mb": 2048}, {"num_cpus": 2, "memory_mb": 3072}, None),
        ({**HOT, "memory_mb": 3072}, {"num_cpus": 2, "memory_mb": 4096}, "3072 MB or less must be off"),
        # A flag vCenter did not report counts as off.
        ({"num_cpus": 2, "memory_mb": 4096, "power_state": "poweredOn"}, {"num_cpus": 3, "memory_mb": 4096}, "hot"),
    ],
)
def test_whether_a_resize_restarts_the_guest(vm, wanted, reason):
    reasons = restart_reasons(vm, wanted)
    if reason is None:
        assert reasons == []
    else:
        [found] = reasons
        assert reason in found and "shuts the guest down" in found


def test_the_impact_says_where_its_facts_came_from_and_unknown_facts_count_as_a_restart():
    impact = reboot_impact(HOT, {"num_cpus": 4, "memory_mb": 4096}, "vCenter at plan time")
    assert (impact["restarts"], impact["reasons"], impact["read_from"]) == (False, [], "vCenter at plan time")
    assert impact["vm"]["cpu_hot_add_enabled"] is True
    unknown = reboot_impact(None, {"num_cpus": 4, "memory_mb": 4096}, "the inventory")
    assert unknown["restarts"] is None and "cannot be ruled out" in unknown["reasons"][0]


def test_disks_only_grow():
    assert shrink_problem(40, 40) is None and shrink_problem(40, 60) is None and shrink_problem(None, 1) is None
    assert "cannot be shrunk" in shrink_problem(40, 30)


# --- Hot add on new VMs -------------------------------------------------------------------------------------------


def test_new_vms_get_cpu_and_memory_hot_add_unless_the_setting_says_no():
    with_hot_add = parse_hcl(render(dhcp_spec())["machine.tf"])
    [resource] = with_hot_add["resource"]
    vm = next(iter(next(iter(resource.values())).values()))
    assert (vm["cpu_hot_add_enabled"], vm["memory_hot_add_enabled"]) == (True, True)
    without = render(dataclasses.replace(dhcp_spec()), RenderSettings(hot_add=False))["machine.tf"]
    assert "hot_add" not in without


def test_the_hot_add_setting_is_read_from_django_settings(settings):
    from provisioning.terraform.settings import render_settings

    settings.VMPROV_HOT_ADD = False
    assert render_settings().hot_add is False
