"""ensure_config_structure on the command line: the console script where Terraform repositories check things (no
SECRET_KEY, database, Redis or Django settings) and the management command, which share arguments and output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from provisioning.terraform.settings import RenderSettings
from tests.support.terraform_dirs import backend_of, bare_vm_dir, rendered_dir, snapshot, terraform_repository

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "vmprov-ensure-config-structure"
# What a CI job or a pre-commit run in a Terraform repository has none of.
VMPROV_ENVIRONMENT = ("SECRET_KEY", "DJANGO_", "DATABASE_", "REDIS_", "VMPROV_", "DEBUG")


def scrubbed_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without anything vmprov's settings read; this checkout's code first on the path
    (the script may have been installed from another checkout)."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(VMPROV_ENVIRONMENT)}
    environment["PYTHONPATH"] = str(ROOT)
    return {**environment, **extra}


def run_script(*args: str, **extra: str) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: install vmprov again (pip install -e .)"
    return subprocess.run(
        [str(SCRIPT), *args], env=scrubbed_environment(**extra), capture_output=True, text=True, timeout=120
    )


def incomplete_directory(tmp_path: Path) -> Path:
    """A directory of a Git repository with the VM and its values only: no provider, declarations or backend."""
    directory = bare_vm_dir(terraform_repository(tmp_path / "repo") / "vms" / "web01")
    (directory / "backend.tf").unlink()
    return directory


# --- The console script -------------------------------------------------------------------------------------------


def test_the_console_script_helps_anywhere():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: vmprov-ensure-config-structure")
    assert "--repo-root" in result.stdout and "--exit-non-zero-on-fix" in result.stdout


def test_the_console_script_completes_a_directory_without_secret_key_database_or_redis(tmp_path):
    directory = incomplete_directory(tmp_path)
    backend = {"VMPROV_TF_BACKEND": "s3", "VMPROV_TF_BACKEND_CONFIG": '{"bucket": "tfstate"}'}

    before = run_script(str(directory), "--check", **backend)
    fixed = run_script(str(directory), **backend)
    after = run_script(str(directory), "--check", **backend)

    assert before.returncode == 1, before.stdout + before.stderr
    assert '  would: write backend.tf: backend "s3"' in before.stdout
    assert "1 of 1 directories missing something" in before.stderr
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert after.returncode == 0, after.stdout + after.stderr
    assert f"{directory}: OK" in after.stdout
    assert backend_of(directory) == ("s3", {"key": "vmprov/vms__web01.tfstate", "bucket": "tfstate"})
    assert "Traceback" not in before.stderr + fixed.stderr + after.stderr


def test_the_console_script_fails_when_it_added_something_if_asked(tmp_path):
    directory = incomplete_directory(tmp_path)
    first = run_script(str(directory / "machine.tf"), str(directory / "terraform.tfvars"), "--exit-non-zero-on-fix")
    second = run_script(str(directory / "machine.tf"), "--exit-non-zero-on-fix")
    assert first.returncode == 1
    assert first.stdout.count(f"{directory}:\n") == 1, "two files of one directory: one report"
    assert f"{directory}: COMPLETED NOW (review and commit what was added)" in first.stdout
    assert second.returncode == 0, second.stdout


def test_the_console_script_reports_a_bad_backend_setting_without_a_traceback(tmp_path):
    directory = incomplete_directory(tmp_path)
    result = run_script(str(directory), VMPROV_TF_BACKEND_CONFIG='{"conn_str": "postgres://u:p@db/x"}')
    assert result.returncode == 2
    assert "must not hold 'conn_str'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (directory / "backend.tf").exists()


def test_the_script_reads_no_django_settings_and_imports_no_models_database_or_redis(tmp_path):
    directory = incomplete_directory(tmp_path)
    probe = f"""
import json, sys
from provisioning.terraform import cli
code = cli.main([{str(directory)!r}])
from django.conf import settings
heavy = ("django.db", "django.apps", "django.contrib", "django_q", "django_redis", "redis", "psycopg", "inventory",
         "provisioning.models", "provisioning.gitops", "vmprov")
loaded = sorted(name for name in sys.modules if name.startswith(heavy))
print(json.dumps({{"code": code, "configured": settings.configured, "loaded": loaded}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], env=scrubbed_environment(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0, "configured": False, "loaded": []}


# --- The management command's options (the same arguments) -----------------------------------------------------


def test_the_command_takes_the_backend_and_repository_root_as_options(tmp_path, capsys):
    directory = bare_vm_dir(tmp_path / "checkout" / "vms" / "web01")
    (directory / "backend.tf").unlink()

    call_command(
        "ensure_config_structure",
        str(directory),
        "--repo-root",
        str(tmp_path / "checkout"),
        "--backend",
        "consul",
        "--backend-config",
        '{"address": "consul:8500"}',
    )

    assert backend_of(directory) == ("consul", {"path": "vmprov/vms__web01", "address": "consul:8500"})
    assert f"{directory}: OK" in capsys.readouterr().out


def test_the_command_fails_on_what_it_added_when_asked_and_passes_after(tmp_path):
    directory = incomplete_directory(tmp_path)
    with pytest.raises(CommandError, match="1 of 1 directories with problems vmprov cannot fix, or completed just"):
        call_command("ensure_config_structure", str(directory / "machine.tf"), "--exit-non-zero-on-fix")
    call_command("ensure_config_structure", str(directory), "--exit-non-zero-on-fix")
    call_command("ensure_config_structure", str(directory), "--check")


def test_the_command_refuses_a_bad_backend_option(tmp_path):
    directory = incomplete_directory(tmp_path)
    before = snapshot(directory)
    with pytest.raises(CommandError, match="VMPROV_TF_BACKEND_CONFIG is not valid JSON"):
        call_command("ensure_config_structure", str(directory), "--backend-config", "{bucket")
    assert snapshot(directory) == before


def test_the_command_needs_no_secret_key_or_system_checks(tmp_path):
    directory = incomplete_directory(tmp_path)
    environment = scrubbed_environment(DJANGO_SETTINGS_MODULE="vmprov.settings")
    results = {}
    for args in (["--help"], [str(directory)], [str(directory), "--check"]):
        results[args[-1]] = subprocess.run(
            [sys.executable, "manage.py", "ensure_config_structure", *args],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert {args: result.returncode for args, result in results.items()} == {
        "--help": 0,
        str(directory): 0,
        "--check": 0,
    }, [result.stdout + result.stderr for result in results.values()]
    assert results["--help"].stdout.startswith("usage: manage.py ensure_config_structure")


def test_settings_from_the_environment_have_vmprovs_defaults():
    assert RenderSettings.from_environment({}) == RenderSettings()
    assert RenderSettings.from_environment(
        {
            "VMPROV_TF_BACKEND": "s3",
            "VMPROV_TF_BACKEND_CONFIG": '{"bucket": "b"}',
            "VMPROV_TFVARS_FILE": "machine_inputs.tfvars",
        }
    ) == RenderSettings(backend="s3", backend_config={"bucket": "b"}, tfvars_file="machine_inputs.tfvars")


def test_the_console_script_passes_the_values_file_atlantis_passes(tmp_path):
    directory = rendered_dir(
        terraform_repository(tmp_path / "repo") / "vms" / "web01", RenderSettings(tfvars_file="machine_inputs.tfvars")
    )
    assert run_script(str(directory), "--check", VMPROV_TFVARS_FILE="machine_inputs.tfvars").returncode == 0
    unset = run_script(str(directory), "--check")
    assert unset.returncode == 1
    assert "note: machine_inputs.tfvars is not loaded: Terraform reads it only with -var-file" in unset.stdout
