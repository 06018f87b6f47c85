"""Local Git repositories for tests: a bare repository standing in for the remote, and branches pushed to it."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

# No user or system configuration leaks in (signing, hooks, templates): every run behaves alike.
_GIT_OPTIONS = (
    "-c",
    "user.name=vmprov tests",
    "-c",
    "user.email=tests@vmprov.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "core.hooksPath=/dev/null",
)


def git(*args: str, cwd: str | Path | None = None) -> str:
    result = subprocess.run(["git", *_GIT_OPTIONS, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def make_bare_repo(path: Path, base: str = "main") -> Path:
    """A bare repository at `path` whose `base` branch holds one commit (a README)."""
    git("init", "--quiet", "--bare", f"--initial-branch={base}", str(path))
    with tempfile.TemporaryDirectory(prefix="vmprov-seed-") as work:
        git("clone", "--quiet", str(path), work)
        (Path(work) / "README.md").write_text("VMs delivered by vmprov\n", encoding="utf-8")
        git("add", "README.md", cwd=work)
        git("commit", "--quiet", "-m", "seed", cwd=work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{base}", cwd=work)
    return path


def push_branch(
    bare: Path,
    branch: str,
    files: Mapping[str, str | bytes],
    base: str = "main",
    message: str = "vmprov test change",
) -> str:
    """Commit `files` (repository path -> content) on a new `branch` from `base` and push it; returns the commit."""
    with tempfile.TemporaryDirectory(prefix="vmprov-push-") as work:
        git("clone", "--quiet", "--branch", base, str(bare), work)
        git("checkout", "--quiet", "-b", branch, cwd=work)
        for name, content in files.items():
            target = Path(work) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def directory_files(directory: str, files: Mapping[str, str]) -> dict[str, str]:
    """`files` (name -> content) placed under `directory` of the repository."""
    return {f"{directory}/{name}": content for name, content in files.items()}


def commit_on(bare: Path, branch: str, files: Mapping[str, str], message: str = "edited by hand") -> str:
    """Commit `files` (repository path -> content) on the existing `branch` and push it, as a person would."""
    with tempfile.TemporaryDirectory(prefix="vmprov-edit-") as work:
        git("clone", "--quiet", "--branch", branch, str(bare), work)
        for name, content in files.items():
            (Path(work) / name).write_text(content, encoding="utf-8")
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def read_on(bare: Path, branch: str, path: str) -> str | None:
    """A file's content on a branch of the bare repository (None when it is not there)."""
    try:
        return git("--git-dir", str(bare), "show", f"{branch}:{path}") + "\n"
    except RuntimeError:
        return None
