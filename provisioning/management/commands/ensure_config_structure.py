"""Check (and complete) the Terraform directories Atlantis will plan: see provisioning.terraform.structure."""

from django.core.management.base import BaseCommand, CommandError

from provisioning.terraform.structure import ensure_config_structure


class Command(BaseCommand):
    help = (
        "Check that each Terraform directory has what vmprov and Atlantis need (vsphere provider, variables, "
        "values, main file, backend) and add what vmprov's templates can supply. Existing files are never changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Terraform directory to check")
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; exit non-zero when anything is missing",
        )
        parser.add_argument(
            "--var-file",
            action="append",
            dest="var_files",
            metavar="NAME",
            help="a values file Atlantis passes with -var-file (repeatable; default: VMPROV_TFVARS_FILE when it is "
            "not terraform.tfvars)",
        )

    def handle(self, *args, paths: list[str], check: bool, var_files: list[str] | None, **options):
        failed = []
        for path in paths:
            report = ensure_config_structure(path, check=check, var_files=var_files)
            for line in report.lines():
                self.stdout.write(line)
            if report.ok:
                self.stdout.write(self.style.SUCCESS(f"{path}: OK"))
            else:
                failed.append(path)
                self.stdout.write(self.style.ERROR(f"{path}: NOT OK"))
        if failed:
            what = "missing something" if check else "with problems vmprov cannot fix"
            raise CommandError(f"{len(failed)} of {len(paths)} directories {what}: {', '.join(failed)}")
