"""The demo Atlantis for `scripts/run`: the Atlantis double (devtools.atlantis), applying into the demo vcsim.

It answers as Atlantis's API does (plan/apply, token, checks, response shape) and, through its Terraform simulation
(devtools.terraform_sim) and the vsphere provider's effects (devtools.vsphere_provider), keeps a state per VM
directory and applies into vcsim: a new directory clones the template with the pushed values into the
cluster the request chose, a changed values file resizes the VM in place, a tombstone destroys it. Never point it at a
real vCenter.

    python -m devtools.demo_atlantis --port 4141 --repo demo/vms --clone-url .run/gitops.git --vcsim .run/vcsim.json

The API secret comes from ATLANTIS_TOKEN in the environment.
"""

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from devtools.atlantis import LocalAtlantis
from devtools.vsphere_provider import VCenterProvider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4141)
    parser.add_argument("--repo", required=True, help="owner/repo as vmprov sends it")
    parser.add_argument("--clone-url", required=True, help="the Git repository Atlantis clones")
    parser.add_argument("--vcsim", required=True, help="the JSON line vcsim printed ({'url': ...})")
    args = parser.parse_args()

    vcsim_url = json.loads(Path(args.vcsim).read_text())["url"]
    atlantis = LocalAtlantis(
        api_secret=os.environ["ATLANTIS_TOKEN"],
        repo_clone_url={args.repo: Path(args.clone_url).resolve()},
        provider=VCenterProvider(vcsim_url),
    ).start(port=args.port)
    print(f"demo Atlantis on {atlantis.url} for {args.repo}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    atlantis.stop()


if __name__ == "__main__":
    main()
