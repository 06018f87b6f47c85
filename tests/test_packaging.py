"""The installable package: the wheel `pip install .` builds holds the project, every app with its migrations,
templates and static files, and the Terraform templates; never the tests or the development tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vmprov", "inventory", "provisioning", "terraform_templates")
APP_DATA_DIRS = ("templates", "static")

pytestmark = pytest.mark.slow


def checkout_files() -> list[str]:
    """The working tree's files as git sees them (tracked and new), without what .gitignore leaves out."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(name for name in listed if name and (ROOT / name).is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    # Built from a copy, so the checkout gets no build/ or egg-info and no stale build/ leaks into the wheel.
    source = tmp_path_factory.mktemp("source") / "vmprov"
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir"]
    build = subprocess.run(
        [*pip_wheel, "--wheel-dir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}\n{build.stderr}"
    (built,) = dist.glob("vmprov-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_wheel_holds_only_the_project_packages(wheel):
    top_level = {name.split("/")[0] for name in wheel.namelist()}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert top_level == {*PACKAGES, f"vmprov-{version}.dist-info"}  # no tests/, bench/, vcsim/, scripts/


def test_wheel_holds_every_module_template_static_file_and_migration(wheel):
    shipped = set(wheel.namelist())
    expected = [
        name
        for name in checkout_files()
        if name.split("/")[0] in PACKAGES
        and (name.endswith(".py") or any(f"/{data}/" in name for data in APP_DATA_DIRS))
    ]
    # The files the issue names, so the comparison can never pass on an empty list.
    for required in [
        "vmprov/settings.py",
        "inventory/migrations/0001_initial.py",
        "provisioning/migrations/0001_initial.py",
        "provisioning/templates/provisioning/request_form.html",
        "vmprov/templates/base.html",
        "provisioning/static/provisioning/request_form.js",
    ]:
        assert required in expected
    assert sorted(set(expected) - shipped) == []


def test_wheel_holds_the_terraform_templates(wheel):
    templates = [
        name
        for name in checkout_files()
        if name.startswith("terraform_templates/") and name.endswith((".j2", ".template"))
    ]
    assert "terraform_templates/machine.tf.j2" in templates
    assert "terraform_templates/providers.tf.template" in templates
    assert sorted(set(templates) - set(wheel.namelist())) == []


def test_wheel_metadata_requires_a_supported_python(wheel):
    (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    assert "Requires-Python: >=3.11" in wheel.read(metadata).decode().splitlines()
