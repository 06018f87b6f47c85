"""Delivery's ear on the inventory: a request waiting for its VM is looked at the moment the VM shows up.

The inventory watcher announces every VM that enters vCenter's inventory or changes name, UUID or placement, and
every full reload (`catalog.wait_for_changes`). For each announcement the applied requests it may concern are
looked up, and those whose VM the catalog now lists get their `watch` step queued at once, instead of at their
next scheduled check. The step itself decides, as always: the listener only wakes it.

Run by `manage.py listen_inventory` (scripts/run starts it); without it delivery still finds the VM on schedule.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, close_old_connections

from inventory import catalog
from provisioning.delivery.queue import enqueue
from provisioning.delivery.verify import created_vm_uuid
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5


def listen(stop: threading.Event, wait: float = 5.0) -> None:
    """Wake requests as VMs arrive, until `stop` is set. Starts from the changes announced from now on; requests
    whose VM arrived before are found by their scheduled checks, or at the next full reload."""
    position = None
    while not stop.is_set():
        try:
            position, changes = catalog.wait_for_changes(position, wait)
        except catalog.Unavailable as error:
            logger.warning("cannot read the inventory's changes (again in %s s): %s", RETRY_SECONDS, error)
            stop.wait(RETRY_SECONDS)
            continue
        if changes:
            close_old_connections()
            try:
                wake(changes)
            except DatabaseError as error:  # those requests are still checked on schedule
                logger.warning(
                    "could not look for the requests these VMs may be (again in %s s): %s", RETRY_SECONDS, error
                )
                stop.wait(RETRY_SECONDS)


def wake(changes: list[catalog.InventoryChange]) -> list[int]:
    """Queue the `watch` step of every applied request whose VM one of `changes` may be and the catalog lists now;
    returns their ids. A full reload may concern any applied request."""
    waiting = VMRequest.objects.filter(status=RequestStatus.APPLIED)
    if not any(change.kind == "resync" for change in changes):
        waiting = waiting.filter(vm_name__in={change.vm["name"] for change in changes if change.vm})
    woken = []
    for vm_request in waiting:
        try:
            listed = catalog.listed_vm(
                vm_request.datacenter_id,
                vm_request.cluster_id,
                vm_request.vm_name,
                created_vm_uuid(vm_request.apply_output),
            )
        except (catalog.NotFound, catalog.Unavailable) as error:
            logger.info("request %s: its VM cannot be looked up now: %s", vm_request.pk, error)
            continue
        if listed is not None:
            logger.info("request %s: VM %s (%s) arrived; checking it now", vm_request.pk, listed["name"], listed["id"])
            enqueue("watch", vm_request.pk, 0)
            woken.append(vm_request.pk)
    return woken
