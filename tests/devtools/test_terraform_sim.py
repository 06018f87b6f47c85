"""The Atlantis double remembers what it applied, per backend, as Terraform's backend does: a later plan of the same
directory changes the VM in place, replaces it, refuses to shrink its disk, shows what drifted, or destroys it once
its resource is gone from the configuration; the apply says so in Terraform's words."""

import re
from pathlib import Path

import pytest

from devtools import terraform_sim
from devtools.terraform_sim import SimulatedProvider
from provisioning.terraform.edit import edit_values, tombstone
from provisioning.terraform.render import render
from tests.support.specs import dhcp_spec


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        entry.unlink()
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
    return directory


class Drifting(SimulatedProvider):
    """vCenter's view of every VM: whatever `now` says (a VM resized by hand), or gone."""

    def __init__(self) -> None:
        self.now: dict | None = {}
        self.calls: list[tuple] = []

    def read(self, resource_id):
        return self.now

    def update(self, resource_id, values, attributes, changed):
        self.calls.append(("update", resource_id, changed))

    def delete(self, resource_id):
        self.calls.append(("delete", resource_id))


@pytest.fixture
def created(tmp_path):
    """A VM directory planned and applied once: (directory, its files, the states, the provider, the VM's id)."""
    files = render(dhcp_spec())
    directory = write(tmp_path / "vms" / "DC0" / "web01", files)
    states, provider = {}, Drifting()
    run = terraform_sim.plan(directory, (), states, provider)
    assert [change.action for change in run.changes] == ["create"]
    output = terraform_sim.apply(run, directory, states, provider)
    [(address, resource)] = states[run.state_key].items()
    assert address == "vsphere_virtual_machine.vm"
    assert f"Creation complete after 0s [id={resource.id}]" in output
    assert resource.attributes["cpu_hot_add_enabled"] is True, "machine.tf's literals are attributes too"
    return directory, files, states, provider, resource.id


def test_a_second_plan_of_an_unchanged_directory_has_no_changes(created):
    directory, _files, states, provider, _vm = created
    run = terraform_sim.plan(directory, (), states, provider)
    assert run.changes == []
    assert run.output.startswith("\nNo changes. Your infrastructure matches the configuration.\n")


def test_a_new_size_is_an_update_in_place(created):
    directory, files, states, provider, vm = created
    values = edit_values(files["terraform.tfvars"], {"num_cpus": 4, "memory_mb": 8192, "disk_size_gb": 60})
    write(directory, {**files, "terraform.tfvars": values})
    run = terraform_sim.plan(directory, (), states, provider)
    [change] = run.changes
    assert (change.action, change.changed) == ("update", ["disk[0].size", "memory", "num_cpus"])
    output = run.output
    assert "  ~ update in-place\n" in output and "  + create" not in output
    assert "  # vsphere_virtual_machine.vm will be updated in-place\n" in output
    assert '  ~ resource "vsphere_virtual_machine" "vm" {\n' in output
    assert f'        id           = "{vm}"\n' in output
    assert "      ~ num_cpus     = 2 -> 4\n" in output
    assert "      ~ memory       = 4096 -> 8192\n" in output
    assert "      ~ disk[0].size = 40 -> 60\n" in output
    assert "        # (28 unchanged attributes hidden)\n" in output
    assert output.endswith("\nPlan: 0 to add, 1 to change, 0 to destroy.\n")

    applied = terraform_sim.apply(run, directory, states, provider)
    assert applied == (
        f"vsphere_virtual_machine.vm: Modifying... [id={vm}]\n"
        f"vsphere_virtual_machine.vm: Modifications complete after 0s [id={vm}]\n"
        "\nApply complete! Resources: 0 added, 1 changed, 0 destroyed.\n"
    )
    assert provider.calls == [("update", vm, ["disk[0].size", "memory", "num_cpus"])]
    assert terraform_sim.plan(directory, (), states, provider).changes == [], "the state holds the new size"


def test_a_change_under_clone_replaces_the_vm(created):
    directory, files, states, provider, vm = created
    changed = files["terraform.tfvars"].replace('domain       = "example.com"', 'domain       = "example.org"')
    write(directory, {**files, "terraform.tfvars": changed})
    run = terraform_sim.plan(directory, (), states, provider)
    [change] = run.changes
    assert change.action == "replace"
    assert "-/+ destroy and then create replacement\n" in run.output
    assert "  # vsphere_virtual_machine.vm must be replaced\n" in run.output
    assert '-/+ resource "vsphere_virtual_machine" "vm" {\n' in run.output
    assert f'~ id                                            = "{vm}" -> (known after apply)' in run.output
    assert (
        '~ clone[0].customize[0].linux_options[0].domain = "example.com" -> "example.org" # forces replacement'
        in run.output
    )
    assert run.output.endswith("\nPlan: 1 to add, 0 to change, 1 to destroy.\n")
    applied = terraform_sim.apply(run, directory, states, provider)
    assert applied.index("Destruction complete") < applied.index("Creation complete")
    assert applied.endswith("\nApply complete! Resources: 1 added, 0 changed, 1 destroyed.\n")


def test_a_disk_never_shrinks(created):
    directory, files, states, provider, _vm = created
    write(directory, {**files, "terraform.tfvars": edit_values(files["terraform.tfvars"], {"disk_size_gb": 30})})
    run = terraform_sim.plan(directory, (), states, provider)
    assert not run.ok
    assert run.error.startswith('Error: virtual disk "disk0": virtual disks cannot be shrunk (old: 40 new: 30)\n')
    assert '  on machine.tf line 2, in resource "vsphere_virtual_machine" "vm":\n' in run.error


def test_a_vm_resized_by_hand_shows_as_drift_and_the_plan_undoes_it(created):
    directory, files, states, provider, _vm = created
    provider.now = {"num_cpus": 8}
    write(directory, {**files, "terraform.tfvars": edit_values(files["terraform.tfvars"], {"notes": "asked again"})})
    run = terraform_sim.plan(directory, (), states, provider)
    output = run.output
    assert output.startswith("\nNote: Objects have changed outside of Terraform\n")
    assert "  # vsphere_virtual_machine.vm has changed\n" in output
    drift, plan = output.split("─" * 77)
    assert "~ num_cpus = 2 -> 8" in drift
    assert "~ num_cpus   = 8 -> 2" in plan and "~ annotation = " in plan
    assert output.endswith("\nPlan: 0 to add, 1 to change, 0 to destroy.\n")


def test_a_tombstone_destroys_the_vm_and_then_plans_nothing(created):
    directory, files, states, provider, vm = created
    write(directory, tombstone(files, 7))
    run = terraform_sim.plan(directory, (), states, provider)
    [change] = run.changes
    assert (change.action, change.id) == ("delete", vm)
    assert "  - destroy\n" in run.output
    assert (
        "  # vsphere_virtual_machine.vm will be destroyed\n"
        "  # (because vsphere_virtual_machine.vm is not in configuration)\n"
        '  - resource "vsphere_virtual_machine" "vm" {\n'
    ) in run.output
    assert re.search(r'\n      - name += "web01" -> null\n', run.output)
    assert run.output.endswith("\nPlan: 0 to add, 0 to change, 1 to destroy.\n")
    applied = terraform_sim.apply(run, directory, states, provider)
    assert applied == (
        f"vsphere_virtual_machine.vm: Destroying... [id={vm}]\n"
        "vsphere_virtual_machine.vm: Destruction complete after 0s\n"
        "\nApply complete! Resources: 0 added, 0 changed, 1 destroyed.\n"
    )
    assert provider.calls == [("delete", vm)]
    assert terraform_sim.plan(directory, (), states, provider).changes == []


def test_count_zero_destroys_too(created):
    directory, files, states, provider, _vm = created
    machine = files["machine.tf"].replace("  name             = var.vm_name\n", "  count = 0\n  name = var.vm_name\n")
    write(directory, {**files, "machine.tf": machine})
    run = terraform_sim.plan(directory, (), states, provider)
    assert [change.action for change in run.changes] == ["delete"]


def test_a_vm_deleted_outside_terraform_is_planned_again(created):
    directory, _files, states, provider, _vm = created
    provider.now = None
    assert [change.action for change in terraform_sim.plan(directory, (), states, provider).changes] == ["create"]


def test_each_backend_has_its_own_state(created, tmp_path):
    _directory, _files, states, provider, _vm = created
    other = write(tmp_path / "vms" / "DC0" / "web02", render(dhcp_spec(vm_name="web02")))
    assert [change.action for change in terraform_sim.plan(other, (), states, provider).changes] == ["create"]
