"""Walk a running demo (`scripts/run`) through a VM's whole life over HTTP, as a person in a browser would, and print
how long each step took: a new VM in a cluster other than its template's, a resize, and a decommission approved by
a second person.

    .venv/bin/python -m devtools.demo_walkthrough --admin-password "$(cat .run/admin-password)" \
        --approver bob:bob-password

The approver must be another account in the `approvers` group (nobody decides on their own request); create it in
the admin first. Imports nothing from vmprov: it only speaks HTTP to the pages.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time

import httpx

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SETTLED = ("Ready", "Done", "Decommissioned", "failed", "attention", "Stopped")
# A plan within the auto-approval limits is "planned" for a moment only; a decommission waits there for a person.
WAITING_FOR_A_PERSON = ("waiting for a person",)


class Browser:
    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        self.client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
        answer = self.post("/login/", {"username": user, "password": password})
        if answer.status_code != 302:
            sys.exit(f"login as {user} failed ({answer.status_code})")

    def get_json(self, path: str) -> dict:
        return self.client.get(path).json()

    def post(self, path: str, data: dict, page: str | None = None) -> httpx.Response:
        token = TOKEN.search(self.client.get(page or path).text)[1]
        data = {"csrfmiddlewaretoken": token, **data}
        return self.client.post(path, data=data, headers={"Referer": self.base + path})

    def follow(self, path: str, limit: float = 240, until: tuple[str, ...] = SETTLED) -> tuple[str, str]:
        """Poll a request's page until its status settles; print each status with the time it was first seen."""
        started, last, text = time.monotonic(), "", ""
        while time.monotonic() - started < limit:
            text = self.client.get(path).text
            line = re.search(r'id="request-status">(.*?)</p>', text, re.S)
            status = html.unescape(re.sub(r"<[^>]+>|Status:|·.*", "", line[1] if line else "", flags=re.S)).strip()
            if status != last:
                print(f"  {time.monotonic() - started:6.1f} s  {status}", flush=True)
                last = status
            if any(word in status for word in until):
                break
            time.sleep(0.5)
        return last, text


def new_vm(admin: Browser, name: str) -> str:
    datacenter = admin.get_json("/api/vsphere/datacenters")["datacenters"][0]
    base = f"/api/vsphere/hierarchical/datacenters/{datacenter['id']}"
    template = admin.get_json(f"{base}/templates")["templates"][0]
    cluster = next(c for c in admin.get_json(f"{base}/clusters")["clusters"] if c["id"] != template.get("cluster_id"))
    resources = admin.get_json(f"/api/vsphere/hierarchical/clusters/{cluster['id']}/resources")
    form = {
        "datacenter": datacenter["id"],
        "cluster": cluster["id"],
        "resource_pool": resources["resource_pools"][0]["id"],
        "datastore": next(d for d in resources["datastores"] if d["accessible"])["id"],
        "network": resources["networks"][0]["id"],
        "folder": admin.get_json(f"{base}/folders")["folders"][0]["id"],
        "template": template["id"],
        "vm_name": name,
        "num_cpus": "2",
        "memory_mb": "1024",
        "disk_size_gb": str(max(2, template["disks"][0]["size_gb"])),
        "ip_mode": "dhcp",
        "domain": "example.com",
        "notes": "demo walkthrough",
    }
    answer = admin.post("/requests/new/", form)
    if answer.status_code != 302:
        sys.exit(f"the form refused the request ({answer.status_code})")
    print(f"new VM {name} in cluster {cluster['name']} (the template is in {template.get('cluster_id')}):")
    return answer.headers["location"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--admin", default="admin")
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--approver", required=True, help="user:password of another member of approvers")
    parser.add_argument("--name", default=f"walk{int(time.time()) % 10000}")
    args = parser.parse_args()
    admin = Browser(args.base, args.admin, args.admin_password)

    detail = new_vm(admin, args.name)
    status, _ = admin.follow(detail)
    if "Ready" not in status:
        sys.exit(f"the new VM did not become ready: {status}")
    vm_page = f"/requests/vms/{detail.rstrip('/').rsplit('/', 1)[-1]}"

    print("resize to 3 CPUs, 2048 MB:")
    answer = admin.post(f"{vm_page}/change/", {"num_cpus": "3", "memory_mb": "2048", "disk_size_gb": "2"})
    admin.follow(answer.headers["location"])

    print("decommission:")
    answer = admin.post(f"{vm_page}/decommission/", {"confirm_name": args.name, "reason": "walkthrough over"})
    detail = answer.headers["location"]
    admin.follow(detail, until=SETTLED + WAITING_FOR_A_PERSON)
    user, password = args.approver.split(":", 1)
    approver = Browser(args.base, user, password)
    page = approver.client.get(detail).text
    digest = re.search(r'name="plan" value="([0-9a-f]{64})"', page)[1]
    decide = detail.rstrip("/") + "/decide/"
    approver.post(decide, {"decision": "approve", "reason": "walkthrough", "plan": digest}, page=detail)
    print(f"approved by {user}:")
    admin.follow(detail)


if __name__ == "__main__":
    main()
