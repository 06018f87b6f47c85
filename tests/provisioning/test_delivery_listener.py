"""Delivery woken by the inventory watcher: an applied request's `watch` step is queued the moment its VM shows up,
and with a live watcher the step reads the cache instead of refreshing it."""

import threading
import time

import pytest
from django.db import connections
from django_q.models import OrmQ

from devtools.vsphere_provider import clone_machine
from inventory import cache, catalog
from inventory.choices import RefreshTrigger
from inventory.models import RefreshRun
from provisioning.delivery.listener import listen, wake
from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.delivery_world import client_for, drain, submit
from tests.support.inventory_data import sample_snapshot
from tests.support.rows import request_fields
from tests.support.vcenter_admin import admin_session
from tests.support.watching import wait_until, watching

pytestmark = pytest.mark.django_db(transaction=True)
S = RequestStatus


def queued_watches() -> list[tuple]:
    return [task.task["args"] for task in OrmQ.objects.all() if task.task["func"].endswith(".watch")]


def arrival(name: str) -> catalog.InventoryChange:
    return catalog.InventoryChange("vm", {"name": name, "id": "vm-x", "datacenter_id": "datacenter-2"})


def test_a_vm_arrival_wakes_the_applied_request_whose_vm_the_catalog_lists(requester):
    cache.write_snapshot(sample_snapshot())  # db01 in datacenter-2's cluster domain-c7, and in datacenter-3
    waiting = VMRequest.objects.create(
        **request_fields(requester, vm_name="db01", cluster_id="domain-c7", status=S.APPLIED)
    )
    elsewhere = VMRequest.objects.create(
        **request_fields(requester, vm_name="db01", datacenter_id="datacenter-3", cluster_id="c9", status=S.APPLIED)
    )
    not_applied = VMRequest.objects.create(
        **request_fields(requester, vm_name="db01", datacenter_id="datacenter-9", cluster_id="domain-c7")
    )

    woken = wake([arrival("db01"), arrival("someone-else")])

    assert woken == [waiting.pk]
    assert queued_watches() == [(waiting.pk, 0)]
    assert {elsewhere.pk, not_applied.pk}.isdisjoint(args[0] for args in queued_watches())


def test_a_vm_whose_uuid_is_not_the_one_terraform_created_wakes_nothing(requester):
    cache.write_snapshot(sample_snapshot())
    VMRequest.objects.create(
        **request_fields(
            requester,
            vm_name="db01",
            cluster_id="domain-c7",
            status=S.APPLIED,
            apply_output="vsphere_virtual_machine.vm: Creation complete after 5s "
            "[id=99999999-0000-0000-0000-000000000000]",
        )
    )

    assert wake([arrival("db01")]) == []


def test_a_full_reload_looks_at_every_applied_request(requester):
    cache.write_snapshot(sample_snapshot())
    waiting = VMRequest.objects.create(
        **request_fields(requester, vm_name="db01", cluster_id="domain-c7", status=S.APPLIED)
    )

    assert wake([catalog.InventoryChange("resync")]) == [waiting.pk]


def listening() -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()

    def run():
        try:
            listen(stop, wait=0.3)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="delivery-listener", daemon=True)
    thread.start()
    return stop, thread


def test_a_request_waiting_for_its_vm_is_checked_the_moment_the_watcher_sees_it(world, requester):
    pool = next(p for p in world.resources.resource_pools if p["path"] == "Resources")
    disk_gb = max(2, world.template["disks"][0]["size_gb"])
    vm_request = VMRequest.objects.create(
        **request_fields(
            requester,
            vm_name="web42",
            datacenter_id=world.datacenter["id"],
            cluster_id=world.cluster["id"],
            num_cpus=2,
            memory_mb=1024,
            disk_size_gb=disk_gb,
            status=S.APPLIED,
        )
    )
    with watching():
        stop, thread = listening()
        try:
            time.sleep(0.5)  # the listener reads from now on
            with admin_session(world.vcsim) as si:
                clone_machine(
                    si,
                    {
                        "template_uuid": world.template["uuid"],
                        "resource_pool_id": pool["id"],
                        "datastore_id": next(d for d in world.resources.datastores if d["accessible"])["id"],
                        "network_id": world.resources.networks[0]["id"],
                        "vm_name": "web42",
                        "num_cpus": 2,
                        "memory_mb": 1024,
                        "disks": [{"size": disk_gb}],
                        "domain": "example.com",
                    },
                )
                cloned = time.monotonic()
            took = wait_until(lambda: queued_watches() == [(vm_request.pk, 0)], 5, "the watch step is queued")
        finally:
            stop.set()
            thread.join(10)
        assert time.monotonic() - cloned < 2, f"queued {took:.2f} s after the clone finished"
        assert drain() == ["watch"]

    vm_request.refresh_from_db()
    assert vm_request.status == S.READY
    assert not RefreshRun.objects.filter(trigger=RefreshTrigger.DELIVERY).exists()


def test_with_a_live_watcher_the_new_vm_is_found_in_the_cache_without_a_refresh(world, people):
    requester, approver, _ = people
    with watching():
        vm_request = submit(world, requester, vm_name="web43")
        assert drain() == ["push", "plan"]
        vm_request.refresh_from_db()
        response = client_for(approver).post(
            f"/requests/{vm_request.pk}/decide/",
            {"decision": "approve", "reason": "fine", "plan": vm_request.plan_digest},
        )
        assert response.status_code == 302
        assert drain(until="apply") == ["apply"]
        # The watcher sees the clone within moments of the apply; the watch step (whose later checks `drain` runs
        # back to back, not seconds apart as the delivery cluster does) reads what it cached, refreshing nothing.
        vm_request.refresh_from_db()
        place = (vm_request.datacenter_id, vm_request.cluster_id, vm_request.vm_name)
        wait_until(lambda: catalog.find_vm(*place).vm is not None, 10, "the watcher cached the new VM")
        assert drain() == ["watch"]

    vm_request.refresh_from_db()
    assert vm_request.status == S.READY
    assert not RefreshRun.objects.filter(trigger=RefreshTrigger.DELIVERY).exists(), "the cache was live: no refresh"
