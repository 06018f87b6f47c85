"""Keep the inventory cache current from vCenter's updates (see inventory.watcher); runs until SIGTERM or Ctrl-C."""

import signal
import threading

from django.core.management.base import BaseCommand

from inventory.watcher import Watcher


class Command(BaseCommand):
    help = (
        "Keep the inventory cache current from vCenter's updates. Run as many replicas as you like: one leads, "
        "the others take over when it stops."
    )
    # scripts/run checks the configuration once, before it starts anything.
    requires_system_checks = []

    def handle(self, *args, **options):
        stop = threading.Event()

        def stop_now(signum, frame):
            # Interrupts a wait on vCenter at once; the watcher then gives its lease up for a standby.
            stop.set()
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop_now)
        watcher = Watcher()
        self.stdout.write(f"Inventory watcher {watcher.replica}: following vCenter's updates (Ctrl-C stops)")
        try:
            watcher.run(stop)
        except KeyboardInterrupt:
            stop.set()
        self.stdout.write(self.style.SUCCESS(f"Inventory watcher {watcher.replica} stopped"))
