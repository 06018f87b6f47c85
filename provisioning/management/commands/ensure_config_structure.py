"""Check (and complete) the Terraform directories Atlantis will plan: see provisioning.terraform.structure.

The arguments and output are the console script's (provisioning.terraform.cli); here the backend and values file
come from Django settings. No system checks run first: nothing here needs SECRET_KEY, the database or Redis.
"""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from provisioning.terraform import cli
from provisioning.terraform.settings import RenderSettings


class Command(BaseCommand):
    help = cli.DESCRIPTION
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, paths: list[str], check: bool, exit_non_zero_on_fix: bool, **options):
        try:
            settings = cli.with_options(RenderSettings.from_django(), options["backend"], options["backend_config"])
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        failed = cli.run(
            paths,
            check=check,
            exit_non_zero_on_fix=exit_non_zero_on_fix,
            var_files=options["var_files"],
            repo_root=options["repo_root"],
            settings=settings,
            write=self.stdout.write,
            success=self.style.SUCCESS,
            error=self.style.ERROR,
        )
        if failed:
            raise CommandError(cli.summary(failed, paths, check, exit_non_zero_on_fix))
