"""Fill the inventory cache synchronously (deploy time)."""

import time

from django.core.management.base import BaseCommand, CommandError

from inventory import cache
from inventory.choices import RefreshOutcome, RefreshTrigger
from inventory.refresh import refresh
from inventory.snapshot import Scope
from inventory.tasks import register_schedule


class Command(BaseCommand):
    help = "Collect the whole vSphere inventory into the cache now, and (re)register the periodic refresh."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait",
            type=float,
            default=300,
            help="seconds to wait for a refresh that is already running before starting ours (default 300)",
        )

    def handle(self, *args, wait: float, **options):
        started = time.monotonic()
        try:
            cache.ping()
            live = cache.watcher_live()
        except cache.CacheUnavailable as error:
            raise CommandError(str(error)) from None
        if live is not None:
            register_schedule()
            self.stdout.write(self.style.SUCCESS(f"A watcher ({live['replica']}) keeps the cache live; nothing to do"))
            return
        self.stdout.write("Collecting the whole inventory from vCenter…")
        run = refresh(
            Scope.everything(),
            RefreshTrigger.WARM_CACHE,
            wait=wait,
            progress=lambda message: self.stdout.write(f"  {message}"),
        )
        if run is None:
            raise CommandError(f"another refresh held the lock for more than {wait:.0f} s; nothing was collected")
        if run.outcome != RefreshOutcome.SUCCEEDED:
            raise CommandError(run.error.splitlines()[0])
        register_schedule()
        counts = ", ".join(f"{count} {kind}" for kind, count in run.object_counts.items())
        self.stdout.write(
            self.style.SUCCESS(f"Cache warm: {counts}; {run.soap_calls} SOAP calls; {time.monotonic() - started:.2f} s")
        )
