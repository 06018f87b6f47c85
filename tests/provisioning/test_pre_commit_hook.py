"""vmprov as a pre-commit hook: a Terraform repository lists this checkout in its .pre-commit-config.yaml, and
pre-commit installs it into a virtualenv of its own (pip, from the package index; the lock pins what it installs)
and runs the hook on the changed files. It fails on an incomplete directory, having completed it, and passes once
the additions are committed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.provisioning.test_structure_cli import VMPROV_ENVIRONMENT
from tests.support.git_repos import git
from tests.support.terraform_dirs import backend_of, bare_vm_dir, terraform_repository, write

ROOT = Path(__file__).resolve().parents[2]
HOOK_ID = "vmprov-ensure-config-structure"

# Installing the hook's virtualenv takes tens of seconds.
pytestmark = pytest.mark.slow


def hook_repository(path: Path) -> str:
    """This checkout's files (tracked and new, as git lists them) committed in a repository of their own, as
    pre-commit wants a hook repository; its commit."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in listed:
        if name and (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    git("init", "--quiet", str(path))
    git("add", "--all", cwd=path)
    git("commit", "--quiet", "--message", "vmprov", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


def pre_commit(repository: Path, home: Path) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(VMPROV_ENVIRONMENT)}
    environment.update(
        PRE_COMMIT_HOME=str(home),
        PIP_CONSTRAINT=str(ROOT / "requirements" / "constraints.txt"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
    )
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=repository,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_terraform_repository_uses_the_hook_which_fails_until_the_directory_is_complete(tmp_path):
    rev = hook_repository(tmp_path / "vmprov")
    repository = terraform_repository(tmp_path / "terraform")
    directory = bare_vm_dir(repository / "vms" / "dc1" / "web01")
    (directory / "backend.tf").unlink()
    write(directory, {"extra.tf": "locals {\n  owner = var.owner\n}\n"})
    write(directory, {"owner.auto.tfvars": 'owner = "ops"\n'})
    write(
        repository,
        {
            ".pre-commit-config.yaml": (
                f"repos:\n  - repo: {tmp_path / 'vmprov'}\n    rev: {rev}\n    hooks:\n      - id: {HOOK_ID}\n"
            )
        },
    )
    git("add", "--all", cwd=repository)
    home = tmp_path / "pre-commit-home"

    incomplete = pre_commit(repository, home)
    git("add", "--all", cwd=repository)
    complete = pre_commit(repository, home)

    assert incomplete.returncode == 1, incomplete.stdout + incomplete.stderr
    assert re.search(r"^vmprov ensure_config_structure\.+Failed$", incomplete.stdout, re.MULTILINE)
    assert "vms/dc1/web01: COMPLETED NOW (review and commit what was added)" in incomplete.stdout
    assert complete.returncode == 0, complete.stdout + complete.stderr
    assert re.search(r"^vmprov ensure_config_structure\.+Passed$", complete.stdout, re.MULTILINE)
    assert backend_of(directory) == ("pg", {"schema_name": "vmprov_vms__dc1__web01"})
    assert "Its type is inferred from its value in owner.auto.tfvars" in (directory / "variables.tf").read_text()
