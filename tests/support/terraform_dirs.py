"""Terraform directories for the ensure_config_structure tests: written, rendered, hand-made, inside a Git
repository, and read back (every entry's state, the backend block)."""

from __future__ import annotations

from pathlib import Path

import hcl2

from provisioning.terraform.render import render
from provisioning.terraform.settings import RenderSettings
from tests.support.git_repos import git
from tests.support.specs import dhcp_spec, static_spec

BACKEND_TF = 'terraform {\n  backend "local" {\n    path = "state.tfstate"\n  }\n}\n'


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
    return directory


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry's mtime (ns) and a file's content: proof that nothing was touched."""
    return {
        path.name: (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else None)
        for path in sorted(directory.iterdir())
    }


def rendered_dir(directory: Path, settings: RenderSettings | None = None, spec=None) -> Path:
    return write(directory, render(spec or static_spec(), settings or RenderSettings()))


def bare_vm_dir(directory: Path) -> Path:
    """What a person might commit: the VM and its values, plus a backend, but no provider or declarations."""
    files = render(dhcp_spec(), RenderSettings())
    return write(
        directory,
        {"machine.tf": files["machine.tf"], "terraform.tfvars": files["terraform.tfvars"], "backend.tf": BACKEND_TF},
    )


def terraform_repository(root: Path) -> Path:
    git("init", "--quiet", str(root))
    return root


def backend_of(directory: Path, file_name: str = "backend.tf") -> tuple[str, dict]:
    (terraform,) = hcl2.loads((directory / file_name).read_text())["terraform"]
    ((label, body),) = [(key, value) for key, value in terraform["backend"][0].items() if not key.startswith("__")]
    return label.strip('"'), {key: value.strip('"') for key, value in body.items() if not key.startswith("__")}
