"""Delivery through a real django-q2 delivery cluster (a `qcluster` process), not jobs called in-process:
proves the queue routing (ALT_CLUSTERS "delivery"), task signing and the scheduler work together."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from provisioning.lifecycle import RequestStatus
from provisioning.models import VMRequest
from tests.support.delivery_world import REPO, TOKEN, submit

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
