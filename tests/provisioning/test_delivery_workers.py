"""Delivery through a real django-q2 delivery cluster (a `qcluster` process), not jobs called in-process:
proves the queue routing (ALT_CLUSTERS "delivery"), task signing and the scheduler work together, for a new VM and
for its resize and decommission."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from provisioning.lifecycle import SETTLED_STATUSES, RequestKind, RequestStatus
from provisioning.models import VMRequest
from tests.support.delivery_world import REPO, TOKEN, client_for, submit
from tests.support.git_repos import git
from tests.support.vcenter_admin import admin_session, find, vim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vcsim, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def delivery_cluster(world, redis_server, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vmprov.settings",
        "Q_CLUSTER_NAME": "delivery",
        "SECRET_KEY": django_settings.SECRET_KEY,  # tasks are signed with it
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_server.url,
        "VSPHERE_SERVER": world.vcsim.server,
        "VSPHERE_USER": world.vcsim.user,
        "VSPHERE_PASSWORD": world.vcsim.password,
        "VSPHERE_ALLOW_UNVERIFIED_SSL": "true",
        "ATLANTIS_URL": world.atlantis.url,
        "ATLANTIS_TOKEN": TOKEN,
        "ATLANTIS_REPO": REPO,
        "ATLANTIS_APPLY_TIMEOUT": "30",
        "VMPROV_GITOPS_REPO": str(world.bare),
        "VMPROV_GIT_WORKDIR": django_settings.VMPROV_GIT_WORKDIR,
        "VMPROV_AUTO_APPROVE_MAX_CPUS": "4",
        "VMPROV_AUTO_APPROVE_MAX_MEMORY_MB": "8192",
        "VMPROV_AUTO_APPROVE_MAX_DISK_GB": "100",
        "VMPROV_READY_CHECK_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "Q_DELIVERY_WORKERS": "1",
    }
    log = (tmp_path / "qcluster.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_a_request_is_delivered_by_the_delivery_cluster(world, people, delivery_cluster, tmp_path):
    vm_request = submit(world, people[0])  # queued on commit for the "delivery" cluster
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = VMRequest.objects.get(pk=vm_request.pk).status
        if status in (
            RequestStatus.READY,
            RequestStatus.PLAN_FAILED,
            RequestStatus.PUSH_FAILED,
            RequestStatus.APPLY_FAILED,
            RequestStatus.NEEDS_ATTENTION,
        ):
            break
        assert delivery_cluster.poll() is None, (tmp_path / "qcluster.log").read_text()
        time.sleep(0.5)
    vm_request = VMRequest.objects.get(pk=vm_request.pk)
    assert vm_request.status == RequestStatus.READY, (vm_request.last_error, (tmp_path / "qcluster.log").read_text())
    assert [e.to_status for e in vm_request.events.all()][:7] == [
        "submitted",
        "pushing",
        "planning",
        "planned",
        "approved",
        "applying",
        "applied",
    ]
    assert vm_request.vm_moref


def settle(vm_request, process, log, *, until=SETTLED_STATUSES) -> VMRequest:
    """The request once the delivery cluster has moved it to a status in `until` (90 s at most)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        vm_request = VMRequest.objects.get(pk=vm_request.pk)
        if vm_request.status in until or vm_request.status == RequestStatus.NEEDS_ATTENTION:
            return vm_request
        assert process.poll() is None, log.read_text()
        time.sleep(0.5)
    raise AssertionError(f"request {vm_request.pk} is still {vm_request.status}:\n{log.read_text()}")


def test_a_vm_is_resized_and_decommissioned_by_the_delivery_cluster(world, people, delivery_cluster, tmp_path):
    """The pages ask; the cluster pushes, plans, auto-approves the resize (no restart), applies and watches; a person
    approves the decommission; the cluster destroys the VM and removes its directory."""
    requester, approver, _staff = people
    log = tmp_path / "qcluster.log"
    vm = settle(submit(world, requester), delivery_cluster, log)
    assert vm.status == RequestStatus.READY, vm.last_error

    values = {"num_cpus": 4, "memory_mb": 2048, "disk_size_gb": vm.disk_size_gb, "notes": ""}
    assert client_for(requester).post(f"/requests/vms/{vm.pk}/change/", values).status_code == 302
    change = settle(VMRequest.objects.get(vm_of=vm, kind=RequestKind.CHANGE), delivery_cluster, log)
    assert change.status == RequestStatus.READY, (change.last_error, log.read_text())
    assert "the guest keeps running" in change.events.get(to_status=RequestStatus.APPROVED).message
    with admin_session(world.vcsim) as si:
        resized = find(si, vim.VirtualMachine, vm.vm_name)
        assert (resized.config.hardware.numCPU, resized.config.hardware.memoryMB) == (4, 2048)

    confirm = {"confirm_name": vm.vm_name, "reason": "done with it"}
    assert client_for(requester).post(f"/requests/vms/{vm.pk}/decommission/", confirm).status_code == 302
    decommission = VMRequest.objects.get(vm_of=vm, kind=RequestKind.DECOMMISSION)
    decommission = settle(decommission, delivery_cluster, log, until={RequestStatus.PLANNED})
    assert decommission.status == RequestStatus.PLANNED, "a person approves every decommission"
    decision = {"decision": "approve", "reason": "ok", "plan": decommission.plan_digest}
    assert client_for(approver).post(f"/requests/{decommission.pk}/decide/", decision).status_code == 302
    decommission = settle(decommission, delivery_cluster, log)
    assert decommission.status == RequestStatus.READY, (decommission.last_error, log.read_text())
    with admin_session(world.vcsim) as si, pytest.raises(LookupError):
        find(si, vim.VirtualMachine, vm.vm_name)
    assert vm.directory not in git("--git-dir", str(world.bare), "ls-tree", "-r", "--name-only", "main")
    assert VMRequest.objects.get(pk=vm.pk).decommissioned_at is not None
