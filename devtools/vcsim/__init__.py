"""vcsim (govmomi's vCenter simulator, built from Debian's sources by main.go): its build and its launcher.

Used by the tests, the benchmark and the demo run (`python -m devtools.vcsim build|run`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devtools import ServiceMissing

ROOT = Path(__file__).resolve().parents[2]
VCSIM_SOURCE = Path(__file__).resolve().parent / "main.go"
GOPATH = Path("/usr/share/gocode")


def build_vcsim() -> Path:
    """Build devtools/vcsim/main.go once per source version; the binary is cached under .cache/."""
    digest = hashlib.sha256(VCSIM_SOURCE.read_bytes()).hexdigest()[:12]
    binary = ROOT / ".cache" / f"vcsim-{digest}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/github.com/vmware/govmomi/simulator").is_dir():
        raise ServiceMissing(
            "vcsim cannot be built: install Go and govmomi's sources "
            "(apt-get install golang-go golang-github-vmware-govmomi-dev); scripts/run and scripts/test do"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off", "GOFLAGS": "-mod=mod"}
    env.setdefault("GOCACHE", str(ROOT / ".cache" / "go-build"))
    partial = binary.with_suffix(".partial")
    subprocess.run([go, "build", "-o", str(partial), str(VCSIM_SOURCE)], check=True, env=env, cwd=VCSIM_SOURCE.parent)
    partial.rename(binary)
    return binary


@dataclass
class Vcsim:
    process: subprocess.Popen
    url: str

    @property
    def server(self) -> str:
        return urlsplit(self.url).netloc.rsplit("@", 1)[-1]

    @property
    def user(self) -> str:
        return urlsplit(self.url).username or ""

    @property
    def password(self) -> str:
        return urlsplit(self.url).password or ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_vcsim(**topology: int | float | str) -> Vcsim:
    """Start vcsim with flags such as dc=2, cluster=1, vm=3, delay=20; it serves https on a free port."""
    binary = build_vcsim()
    args = [str(binary), "-watch-stdin"]
    for flag, value in topology.items():
        args.append(f"-{flag.replace('_', '-')}={value}")
    # stdin is a pipe we never write to: if this process dies, vcsim sees EOF and exits.
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"vcsim did not start: {process.stderr.read()}")
    return Vcsim(process=process, url=json.loads(line)["url"])
