"""The command line of ensure_config_structure: `vmprov-ensure-config-structure` (a console script, also the
pre-commit hook of `.pre-commit-hooks.yaml`) and `manage.py ensure_config_structure` share these arguments and
this output.

The console script runs where Terraform repositories check things (CI, pre-commit): no SECRET_KEY, database,
Redis or Django settings. It reads the backend and values file from the same environment variables vmprov's
settings are made of (VMPROV_TF_BACKEND, VMPROV_TF_BACKEND_CONFIG, VMPROV_TFVARS_FILE), or from its options, and
imports nothing that needs Django settings.

Exit status: 0 when every directory is complete (or was completed); 1 when something is missing (`--check`), cannot
be fixed, or (with `--exit-non-zero-on-fix`, as the pre-commit hook runs it) was added; 2 for a usage or
configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from provisioning.terraform.settings import RenderSettings, parse_backend_config
from provisioning.terraform.structure import ensure_config_structure

PROGRAM = "vmprov-ensure-config-structure"
DESCRIPTION = (
    "Check that each Terraform directory has what vmprov and Atlantis need (vsphere provider, variable "
    "declarations, values, main file, backend) and add what is missing. Existing files are never changed."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of both the console script and the management command."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="Terraform directory to check; a file stands for its directory (pre-commit passes changed files)",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when anything is missing")
    parser.add_argument(
        "--exit-non-zero-on-fix",
        action="store_true",
        help="exit 1 when files were added too, so that they are reviewed and committed (the pre-commit hook)",
    )
    parser.add_argument(
        "--var-file",
        action="append",
        dest="var_files",
        metavar="NAME",
        help="a values file Atlantis passes with -var-file (repeatable; default: VMPROV_TFVARS_FILE when it is "
        "not terraform.tfvars)",
    )
    parser.add_argument(
        "--repo-root",
        type=Path,
        metavar="DIR",
        help="the repository root the backend's state key is made from (default: the Git top level of each "
        "directory; outside a Git repository no backend is added without it)",
    )
    parser.add_argument(
        "--backend",
        metavar="TYPE",
        help="the backend to add where there is none (default: VMPROV_TF_BACKEND, else pg)",
    )
    parser.add_argument(
        "--backend-config",
        metavar="JSON",
        help="the backend's non-secret settings as a JSON object (default: VMPROV_TF_BACKEND_CONFIG)",
    )


def directories(paths: Sequence[str]) -> list[Path]:
    """The directories named by `paths` (a file stands for its directory), each once, in the order given."""
    seen: dict[Path, None] = {}
    for path in map(Path, paths):
        seen.setdefault(path.parent if path.is_file() else path, None)
    return list(seen)


def with_options(settings: RenderSettings, backend: str | None, backend_config: str | None) -> RenderSettings:
    """`settings` with the backend options given on the command line (raises ImproperlyConfigured)."""
    if backend:
        settings = replace(settings, backend=backend)
    if backend_config is not None:
        settings = replace(settings, backend_config=parse_backend_config(backend_config))
    return settings


def run(
    paths: Sequence[str],
    *,
    check: bool,
    exit_non_zero_on_fix: bool,
    var_files: Sequence[str] | None,
    repo_root: Path | None,
    settings: RenderSettings,
    write: Callable[[str], None],
    success: Callable[[str], str] = str,
    error: Callable[[str], str] = str,
) -> list[str]:
    """Check (and unless `check`, complete) each directory, writing its report; the directories that failed."""
    failed = []
    for directory in directories(paths):
        report = ensure_config_structure(
            directory, check=check, var_files=var_files, settings=settings, repo_root=repo_root
        )
        for line in report.lines():
            write(line)
        if not report.ok:
            failed.append(str(directory))
            write(error(f"{directory}: NOT OK"))
        elif exit_non_zero_on_fix and report.written:
            failed.append(str(directory))
            write(error(f"{directory}: COMPLETED NOW (review and commit what was added)"))
        else:
            write(success(f"{directory}: OK"))
    return failed


def summary(failed: Sequence[str], paths: Sequence[str], check: bool, exit_non_zero_on_fix: bool) -> str:
    """The closing line when some directories failed."""
    if check:
        what = "missing something"
    elif exit_non_zero_on_fix:
        what = "with problems vmprov cannot fix, or completed just now (review and commit what was added)"
    else:
        what = "with problems vmprov cannot fix"
    return f"{len(failed)} of {len(directories(paths))} directories {what}: {', '.join(failed)}"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The console script."""
    parser = argparse.ArgumentParser(prog=PROGRAM, description=DESCRIPTION)
    add_arguments(parser)
    options = parser.parse_args(argv)
    try:
        settings = with_options(
            RenderSettings.from_environment(os.environ if environ is None else environ),
            options.backend,
            options.backend_config,
        )
    except ImproperlyConfigured as problem:
        print(f"{PROGRAM}: {problem}", file=sys.stderr)
        return 2
    failed = run(
        options.paths,
        check=options.check,
        exit_non_zero_on_fix=options.exit_non_zero_on_fix,
        var_files=options.var_files,
        repo_root=options.repo_root,
        settings=settings,
        write=print,
    )
    if failed:
        print(
            f"{PROGRAM}: {summary(failed, options.paths, options.check, options.exit_non_zero_on_fix)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
