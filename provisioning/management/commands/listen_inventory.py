"""Queue delivery's check of a new VM as soon as the inventory watcher sees it (see provisioning.delivery.listener)."""

import signal
import threading

from django.core.management.base import BaseCommand

from provisioning.delivery.listener import listen


class Command(BaseCommand):
    help = "Wake the delivery of applied requests the moment the inventory watcher sees their VM. Runs until stopped."
    # scripts/run checks the configuration once, before it starts anything.
    requires_system_checks = []

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        self.stdout.write("Listening for VMs the inventory watcher sees (Ctrl-C stops)")
        try:
            listen(stop)
        except KeyboardInterrupt:
            stop.set()
        self.stdout.write(self.style.SUCCESS("Stopped listening"))
