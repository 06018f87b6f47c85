"""A whole delivery world for tests: vcsim, a real redis-server, a bare Git repo and a local Atlantis."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from django.test import Client
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule

from devtools.atlantis import LocalAtlantis
from inventory import catalog, tasks
from inventory.choices import RefreshTrigger
from provisioning.models import VMRequest
from tests.support.atlantis_vcsim import provider_in

REPO = "acme/vms"
TOKEN = "atlantis-api-secret-for-tests"


@dataclass
class World:
    vcsim: object
    atlantis: LocalAtlantis
    bare: object
    datacenter: dict
    cluster: dict
    resources: object
    folder: dict
    template: dict

    def form(self, vm_name: str = "web01", **changes) -> dict:
        """A valid request form for the first datacenter's first cluster."""
        pools = {p["path"]: p for p in self.resources.resource_pools}
        datastore = next(d for d in self.resources.datastores if d["accessible"])
        data = {
            "datacenter": self.datacenter["id"],
            "cluster": self.cluster["id"],
            "resource_pool": pools["Resources"]["id"],
            "datastore": datastore["id"],
            "network": self.resources.networks[0]["id"],
            "folder": self.folder["id"],
            "template": self.template["id"],
            "vm_name": vm_name,
            "num_cpus": "2",
            "memory_mb": "1024",
            "disk_size_gb": str(max(2, self.template["disks"][0]["size_gb"])),
            "ip_mode": "dhcp",
            "domain": "example.com",
            "notes": 'hostile "${var.vsphere_password}" %{ if true }\nnote',
        }
        data.update(changes)
        return data


def point_atlantis(settings, atlantis: LocalAtlantis) -> None:
    settings.ATLANTIS_URL = atlantis.url
    settings.ATLANTIS_TOKEN = TOKEN
    settings.ATLANTIS_REPO = REPO
    settings.ATLANTIS_VCS_TYPE = "Github"
    settings.ATLANTIS_PLAN_TIMEOUT = 20
    settings.ATLANTIS_APPLY_TIMEOUT = 20
    settings.ATLANTIS_CONNECT_TIMEOUT = 2
    settings.ATLANTIS_LOCK_WAIT = 10


def make_world(settings, vcsim, bare) -> World:
    atlantis = LocalAtlantis(
        api_secret=TOKEN,
        repo_clone_url={REPO: bare},
        provider=provider_in(vcsim),
    ).start()
    point_atlantis(settings, atlantis)
    tasks.refresh_all(RefreshTrigger.WARM_CACHE)
    datacenter = catalog.datacenters().items[0]
    cluster = catalog.clusters(datacenter["id"]).items[0]
    resources = catalog.cluster_resources(cluster["id"])
    folder = next(f for f in catalog.folders(datacenter["id"]).items if f["path"] == "")
    template = catalog.templates(datacenter["id"]).items[0]
    return World(vcsim, atlantis, bare, datacenter, cluster, resources, folder, template)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def submit(world: World, requester, **changes) -> VMRequest:
    """Post the request form as `requester`; the request must be accepted."""
    response = client_for(requester).post("/requests/new/", world.form(**changes))
    assert response.status_code == 302, response.context["form"].errors
    return VMRequest.objects.filter(vm_name=changes.get("vm_name", "web01")).latest("id")


def drain(max_steps: int = 50, *, until: str | None = None) -> list[str]:
    """Run queued delivery jobs in order, as the delivery cluster would, then the scheduled ones (the later
    checks for a new VM) without waiting for their time; returns what ran. With `until`, stop right after the first
    job of that step (the rest stays queued)."""
    ran = []
    for _ in range(max_steps):
        queued = OrmQ.objects.filter(key="delivery").order_by("id").first()
        if queued is not None:
            task = queued.task
            queued.delete()
            func, args, kwargs = task["func"], task["args"], task["kwargs"]
        else:
            scheduled = (
                Schedule.objects.filter(cluster="delivery", schedule_type=Schedule.ONCE)
                .order_by("next_run", "id")
                .first()
            )
            if scheduled is None:
                return ran
            scheduled.delete()
            func, args, kwargs = scheduled.func, ast.literal_eval(f"({scheduled.args},)"), {}
        import_string(func)(*args, **kwargs)
        ran.append(func.rsplit(".", 1)[-1])
        if ran[-1] == until:
            return ran
    raise AssertionError(f"delivery did not settle after {max_steps} jobs: {ran}")
