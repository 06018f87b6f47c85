"""A demo Atlantis for `scripts/run`: the tests' local Atlantis API server, applying into the demo vcsim.

It follows Atlantis's API contract (plan/apply, token, checks, response shape) and, on apply, clones the
template in vcsim with the pushed values, standing in for Terraform. Never point it at a real vCenter.

    python scripts/demo_atlantis.py --port 4141 --repo demo/vms --clone-url .run/gitops.git --vcsim .run/vcsim.json
The API secret comes from ATLANTIS_TOKEN in the environment.
"""

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.atlantis_server import LocalAtlantis
from tests.atlantis_vcsim import clone_in_vcsim
from vcsim import Vcsim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4141)
    parser.add_argument("--repo", required=True, help="owner/repo as vmprov sends it")
    parser.add_argument("--clone-url", required=True, help="the Git repository Atlantis clones")
    parser.add_argument("--vcsim", required=True, help="the JSON line vcsim printed ({'url': ...})")
    args = parser.parse_args()

    vcsim = Vcsim(process=None, url=json.loads(Path(args.vcsim).read_text())["url"])
    atlantis = LocalAtlantis(
        api_secret=os.environ["ATLANTIS_TOKEN"],
        repo_clone_url={args.repo: Path(args.clone_url).resolve()},
        on_apply=lambda directory, values: clone_in_vcsim(vcsim, values),
    ).start(port=args.port)
    print(f"demo Atlantis on {atlantis.url} for {args.repo}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    atlantis.stop()


if __name__ == "__main__":
    main()
