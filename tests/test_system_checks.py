"""vmprov's settings are checked once, by Django's system checks (`manage.py check`), with stable ids."""

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def check_ids() -> set[str]:
    return {message.id for message in checks.run_checks() if message.id.startswith("vmprov.")}


def test_the_default_settings_pass():
    assert check_ids() == set()


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("VSPHERE_TIMEOUT", 0, "vmprov.E001"),
        ("VMPROV_GITOPS_REPO", "https://bot:secret@git.example.com/vms.git", "vmprov.E002"),
        ("VMPROV_GITOPS_DIR_PATTERN", "vms/{datacenter}", "vmprov.E002"),
        ("VMPROV_GITOPS_DIR_PATTERN", "vms/{cluster}/{vm_name}", "vmprov.E002"),
        ("VMPROV_GITOPS_DIR_PATTERN", "../{vm_name}", "vmprov.E002"),
        ("VMPROV_GITOPS_BRANCH_PREFIX", "vm prov/", "vmprov.E002"),
        ("ATLANTIS_URL", "ftp://atlantis.example.com", "vmprov.E003"),
        ("VMPROV_TF_BACKEND", "nope", "vmprov.E004"),
        ("VMPROV_TFVARS_FILE", "../values.tfvars", "vmprov.E004"),
        ("VMPROV_LIMITS", {"num_cpus": (4, 2), "memory_mb": (512, 1024), "disk_size_gb": (1, 10)}, "vmprov.E005"),
        ("VMPROV_READY_CHECKS", 0, "vmprov.E005"),
    ],
)
def test_a_bad_setting_is_an_error_with_its_id(settings, setting, value, check_id):
    setattr(settings, setting, value)
    assert check_id in check_ids()


def test_manage_py_check_stops_on_a_bad_setting_and_never_shows_a_secret(settings):
    settings.VMPROV_GITOPS_REPO = "https://bot:s3cret-token@git.example.com/vms.git"
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "vmprov.E002" in str(raised.value)
    assert "s3cret-token" not in str(raised.value)
