"""SECRET_KEY: the web server and the workers refuse to start without it (system check vmprov.E006), while
`manage.py <command> --help` works without it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    """manage.py with vmprov's own settings and no SECRET_KEY, DEBUG or database from the caller."""
    scrubbed = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SECRET_KEY", "DEBUG", "DJANGO_", "DATABASE_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**scrubbed, "DJANGO_SETTINGS_MODULE": "vmprov.settings", **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_empty_secret_key_is_a_check_error(settings):
    settings.SECRET_KEY = ""
    assert "vmprov.E006" in {message.id for message in checks.run_checks()}


def test_check_stops_a_deployment_without_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "(vmprov.E006) SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("environment", [{"SECRET_KEY": "a-real-key"}, {"DEBUG": "true"}])
def test_check_passes_with_a_key_or_in_debug(environment):
    result = manage("check", **environment)
    assert result.returncode == 0, result.stderr
    assert "vmprov.E006" not in result.stderr


def test_the_worker_refuses_to_start_without_secret_key():
    result = manage("qcluster")
    assert result.returncode != 0
    assert "vmprov.E006" in result.stderr


@pytest.mark.parametrize("command", ["ensure_config_structure", "migrate", "qcluster", "check"])
def test_help_works_without_secret_key(command):
    result = manage(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: manage.py {command}")
    assert "Traceback" not in result.stderr
