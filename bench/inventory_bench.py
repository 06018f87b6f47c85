"""The inventory benchmark: vmprov's collector against a naive walker, and the cached API under load.

    .venv/bin/python bench/inventory_bench.py            # full run (about 5 minutes)
    .venv/bin/python bench/inventory_bench.py --quick    # smoke run (about 1.5 minutes)

Part 1, full refresh: vcsim at about 200 and about 5,000 objects, answering every
SOAP call after `--delay` ms. vmprov's collector (`inventory.vsphere.session` +
`collect(Scope.everything())`) against bench/naive_collector.py (attribute walking),
both counted with the same `SoapCallCounter` on their stub. When the naive walk of
the large inventory would exceed `--naive-budget` seconds at `--delay`, it runs
against a vcsim with a smaller delay instead (said so in the output), and the time
it would take at `--delay` is printed separately, marked as an extrapolation.

Part 2, serving: gunicorn as scripts/run starts it (2 workers x 4 threads) plus
`--reuse-port`, under bench.settings (vmprov's settings, DEBUG off, LOG_LEVEL=WARNING,
SQLite in a temporary directory, a throwaway redis-server); cache warmed by
`manage.py warm_cache` from the large vcsim; a user logged in through /login/. Then
`wrk` (Debian package `wrk`), at `--connections` and at one connection, in rounds
interleaved across endpoints, against: the cached API endpoints; a floor view that
returns one Redis hash (with the session cookie, and without it); and the same
cluster list read live from vCenter per request (vcsim at `--live-delay` ms per call).
Besides latency and req/s it reports the gunicorn workers' CPU time per request,
which does not depend on how the load spreads over the workers.

Everything started here (vcsim, redis-server, gunicorn, wrk) is stopped at the end,
on error, on Ctrl-C and on SIGTERM too. Apart from vcsim's build cache under .cache/,
nothing is written outside a temporary directory; Redis at 127.0.0.1:6379 is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make vmprov, inventory, devtools and bench importable
    sys.path.insert(0, str(ROOT))

from pyVmomi import vim, vmodl  # noqa: E402

from bench.naive_collector import naive_collect  # noqa: E402
from devtools.ports import free_port  # noqa: E402
from devtools.redis_server import start_redis  # noqa: E402
from devtools.vcsim import Vcsim, build_vcsim, start_vcsim  # noqa: E402
from inventory import vsphere  # noqa: E402
from inventory.snapshot import Scope  # noqa: E402

# vcsim topologies (flags of devtools/vcsim/main.go). In govmomi 0.24 `vm` is VMs per cluster
# (all in its root pool), `pool` child pools per cluster, `ds` datastores per datacenter.
SMALL = dict(dc=2, cluster=3, cluster_host=4, pool=3, vm=20, ds=4, pg=2, folder=1, templates=2)  # ~200 objects
LARGE = dict(dc=4, cluster=10, cluster_host=10, pool=4, vm=107, ds=4, pg=4, folder=1, templates=3)  # ~5,000
QUICK_LARGE = dict(dc=2, cluster=4, cluster_host=5, pool=3, vm=50, ds=4, pg=2, folder=1, templates=2)  # ~500

# Targets printed next to the figures.
CACHED_P95_MS = 10.0
FLOOR_SHARE = 0.5
LIVE_FACTOR = 100.0


def say(message: str = "") -> None:
    print(message, flush=True)


# --- Part 1: full refresh, vmprov vs naive -------------------------------------------------------


def vcenter_config(server: Vcsim) -> vsphere.VCenterConfig:
    return vsphere.VCenterConfig(
        server=server.server, user=server.user, password=server.password, allow_unverified_ssl=True, timeout=60
    )


_OBJECT_KINDS = {
    "Datacenter": "datacenters",
    "ClusterComputeResource": "clusters",
    "HostSystem": "hosts",
    "ResourcePool": "resource_pools",
    "Datastore": "datastores",
    "Network": "networks",
    "DistributedVirtualPortgroup": "networks",
    "OpaqueNetwork": "networks",
    "Folder": "folders",
}


def count_objects(server: Vcsim) -> dict[str, int]:
    """Every inventory object vcsim holds, by kind (its own session; not part of any timing)."""
    property_collector = vmodl.query.PropertyCollector
    counts: Counter[str] = Counter()
    with vsphere.session(vcenter_config(server)) as session:
        content = session.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ManagedEntity], True)
        try:
            spec = property_collector.FilterSpec(
                objectSet=[
                    property_collector.ObjectSpec(
                        obj=view,
                        skip=True,
                        selectSet=[
                            property_collector.TraversalSpec(
                                name="view", type=vim.view.ContainerView, path="view", skip=False
                            )
                        ],
                    )
                ],
                propSet=[
                    property_collector.PropertySpec(type=vim.ManagedEntity, pathSet=[]),
                    property_collector.PropertySpec(type=vim.VirtualMachine, pathSet=["config.template"]),
                ],
            )
            for entity in vsphere.retrieve(session, spec):
                if entity.kind == "VirtualMachine":
                    counts["templates" if entity.props.get("config.template") else "vms"] += 1
                elif entity.kind in _OBJECT_KINDS:
                    counts[_OBJECT_KINDS[entity.kind]] += 1
        finally:
            view.DestroyView()
    order = ["datacenters", "clusters", "hosts", "resource_pools", "datastores", "networks", "vms", "templates"]
    return {kind: counts[kind] for kind in [*order, "folders"]}


@dataclass
class CollectorRun:
    seconds: float
    soap_calls: int
    by_method: dict[str, int]
    counts: dict[str, int]


def run_vmprov(server: Vcsim) -> CollectorRun:
    """One full refresh as vmprov does it: session (login), collect everything, logout."""
    started = time.perf_counter()
    with vsphere.session(vcenter_config(server)) as session:
        snapshot = vsphere.collect(session, Scope.everything())
        calls, by_method = session.counter.calls, dict(session.counter.by_method)
    return CollectorRun(time.perf_counter() - started, calls, by_method, snapshot.counts())


def run_naive(server: Vcsim) -> CollectorRun:
    """The same information by attribute walking, in the same kind of session, counted the same way."""
    started = time.perf_counter()
    with vsphere.session(vcenter_config(server)) as session:
        inventory = naive_collect(session.service_instance)
        calls, by_method = session.counter.calls, dict(session.counter.by_method)
    return CollectorRun(time.perf_counter() - started, calls, by_method, inventory.counts())


@dataclass
class SizeResult:
    label: str
    flags: dict[str, Any]
    objects: dict[str, int]
    delay_ms: int
    vmprov: CollectorRun
    vmprov_runs: list[float]
    naive: CollectorRun | None = None
    naive_delay_ms: int = 0
    vmprov_at_naive_delay: CollectorRun | None = None  # only when the naive walk ran at a smaller delay
    naive_estimate_at_delay: float | None = None  # extrapolated, never measured

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())


def vmprov_median(server: Vcsim, repeats: int) -> tuple[CollectorRun, list[float]]:
    runs = [run_vmprov(server) for _ in range(repeats)]
    if len({run.soap_calls for run in runs}) != 1:
        raise RuntimeError(f"vmprov's SOAP calls differ between identical runs: {[r.soap_calls for r in runs]}")
    times = [run.seconds for run in runs]
    median = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    return median, times


def measure_size(
    stack: contextlib.ExitStack,
    label: str,
    flags: dict[str, Any],
    delay: int,
    repeats: int,
    naive_delay: Callable[[dict[str, int]], int],
) -> SizeResult:
    say(f"\n== {label} inventory: starting vcsim ({flag_text(flags)}, delay {delay} ms per SOAP call)")
    server = started(stack, start_vcsim(**flags, delay=delay))
    objects = count_objects(server)
    say(f"   objects: {sum(objects.values())} = {', '.join(f'{n} {kind}' for kind, n in objects.items())}")
    vmprov_run, times = vmprov_median(server, repeats)
    say(
        f"   vmprov collector: {vmprov_run.soap_calls} SOAP calls, "
        f"{', '.join(f'{t:.2f}' for t in times)} s (median {vmprov_run.seconds:.2f} s); {vmprov_run.by_method}"
    )
    result = SizeResult(label, flags, objects, delay, vmprov_run, times)
    chosen = naive_delay(objects)
    result.naive_delay_ms = chosen
    if chosen != delay:
        server.stop()
        say(
            f"   the naive walk at {delay} ms would exceed the time budget: running it against a second vcsim "
            f"with the same topology and {chosen} ms per call"
        )
        server = started(stack, start_vcsim(**flags, delay=chosen))
        result.vmprov_at_naive_delay, _ = vmprov_median(server, 1)
        say(
            f"   vmprov collector at {chosen} ms: {result.vmprov_at_naive_delay.soap_calls} SOAP calls, "
            f"{result.vmprov_at_naive_delay.seconds:.2f} s"
        )
    say(f"   naive walk at {chosen} ms per call: running…")
    result.naive = run_naive(server)
    say(f"   naive walk: {result.naive.soap_calls} SOAP calls, {result.naive.seconds:.1f} s; {result.naive.by_method}")
    if result.naive.counts != vmprov_run.counts:
        raise RuntimeError(
            f"the two collectors read different inventories: vmprov {vmprov_run.counts}, naive {result.naive.counts}"
        )
    say(f"   both read the same inventory: {vmprov_run.counts}")
    if chosen != delay:
        # Extrapolation: the measured walk plus the extra server delay of every call it made.
        result.naive_estimate_at_delay = result.naive.seconds + result.naive.soap_calls * (delay - chosen) / 1000
    server.stop()
    return result


def flag_text(flags: dict[str, Any]) -> str:
    return " ".join(f"-{k.replace('_', '-')}={v}" for k, v in flags.items())


# --- Part 2: serving under load ------------------------------------------------------------------

WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass
class Endpoint:
    name: str
    path: str
    anonymous: bool = False  # sent without the session cookie


@dataclass
class LoadResult:
    """One endpoint under one load: rounds of wrk, interleaved with the other endpoints' rounds."""

    endpoint: Endpoint
    connections: int
    rounds: list[dict]
    response_bytes: int

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def requests(self) -> int:
        return sum(r["requests"] for r in self.rounds)

    @property
    def seconds(self) -> float:
        return sum(r["duration_us"] for r in self.rounds) / 1e6

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rps_range(self) -> tuple[float, float]:
        per_round = [r["requests"] / (r["duration_us"] / 1e6) for r in self.rounds]
        return min(per_round), max(per_round)

    @property
    def errors(self) -> int:
        return sum(r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"] for r in self.rounds)

    @property
    def cpu_ms_per_request(self) -> float:
        """CPU time the gunicorn workers spent per request (user + system), whatever the load balance."""
        return sum(r["server_cpu"] for r in self.rounds) / self.requests * 1000 if self.requests else 0.0

    def percentile_ms(self, name: str) -> float:
        """The median over rounds of one latency percentile (wrk reports microseconds)."""
        return statistics.median(r[name] for r in self.rounds) / 1000

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms("p50")

    @property
    def p95_ms(self) -> float:
        return self.percentile_ms("p95")

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms("p99")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU seconds of gunicorn's workers so far."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return sum(process_cpu_seconds(int(pid)) for pid in children)


@dataclass
class CpuSample:
    """Machine-wide CPU (/proc/stat) and what the benchmark's own processes used, at one moment."""

    at: float
    machine_busy: float
    machine_steal: float
    ours: float

    @classmethod
    def take(cls, own_pids: list[int], gunicorn_pid: int) -> CpuSample:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = values
        tick = os.sysconf("SC_CLK_TCK")
        times = os.times()  # this process, and its waited-for children (the wrk runs)
        ours = times.user + times.system + times.children_user + times.children_system
        ours += sum(process_cpu_seconds(pid) for pid in own_pids) + workers_cpu_seconds(gunicorn_pid)
        return cls(time.monotonic(), (user + nice + system + irq + softirq) / tick, steal / tick, ours)

    def others_since(self, earlier: CpuSample) -> tuple[float, float]:
        """Cores used on average by other processes, and stolen by the hypervisor, since `earlier`."""
        elapsed = self.at - earlier.at
        others = (self.machine_busy - earlier.machine_busy) - (self.ours - earlier.ours)
        return max(0.0, others / elapsed), (self.machine_steal - earlier.machine_steal) / elapsed


class Web:
    """The gunicorn under test, and a logged-in client for it."""

    def __init__(self, base_url: str, session_cookie: str, workdir: Path, wrk_threads: int, server_pid: int):
        self.server_pid = server_pid
        self.base_url = base_url
        self.session_cookie = session_cookie
        self.script = workdir / "report.lua"
        self.script.write_text(WRK_REPORT)
        self.wrk_threads = wrk_threads

    def headers(self, anonymous: bool = False) -> dict[str, str]:
        return {} if anonymous else {"Cookie": self.session_cookie}

    def get(self, path: str, timeout: float = 60, anonymous: bool = False) -> tuple[int, bytes, float]:
        request = urllib.request.Request(self.base_url + path, headers=self.headers(anonymous))
        started_at = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            body, status = error.read(), error.code
        return status, body, (time.perf_counter() - started_at) * 1000

    def check(self, path: str, anonymous: bool = False) -> bytes:
        """One request that must answer 200 with JSON (not a login redirect); returns the body."""
        status, body, _ = self.get(path, anonymous=anonymous)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        json.loads(body)
        return body

    def json(self, path: str) -> dict:
        return json.loads(self.check(path))

    def wrk(self, endpoint: Endpoint, connections: int, seconds: int, timeout: float = 10) -> dict:
        headers = [f"--header={name}: {value}" for name, value in self.headers(endpoint.anonymous).items()]
        command = [
            "wrk",
            f"-t{min(self.wrk_threads, connections)}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            f"--timeout={timeout:g}s",
            "-s",
            str(self.script),
            *headers,
            self.base_url + endpoint.path,
        ]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed: {completed.stderr.strip()}")
        output = completed.stdout
        match = re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no report:\n{output}")
        return json.loads(match.group(1))

    def load(
        self,
        endpoints: list[Endpoint],
        connections: int,
        seconds: float,
        rounds: int,
        warmup: float = 0,
        timeout: float = 10,
    ) -> list[LoadResult]:
        """About `seconds` of load per endpoint, in `rounds` slices taken in turn (A B C A B C …).

        Interleaving spreads slow drifts (and gunicorn's uneven spread of keep-alive
        connections over its workers, which changes with every wrk start) over all endpoints.
        """
        slice_seconds = max(1, round(seconds / rounds))  # wrk takes whole seconds
        results = []
        for endpoint in endpoints:
            body = self.check(endpoint.path, endpoint.anonymous)
            if warmup:
                self.wrk(endpoint, connections, max(1, round(warmup)), timeout)
            results.append(LoadResult(endpoint, connections, [], len(body)))
        for _ in range(rounds):
            for result in results:
                cpu_before = workers_cpu_seconds(self.server_pid)
                report = self.wrk(result.endpoint, connections, slice_seconds, timeout)
                report["server_cpu"] = workers_cpu_seconds(self.server_pid) - cpu_before
                result.rounds.append(report)
        for result in results:
            low, high = result.rps_range
            say(
                f"   {result.name:<34} c={connections:<3}{result.rps:8.1f} req/s ({low:.0f}-{high:.0f})  "
                f"p50 {result.p50_ms:7.2f} ms  p95 {result.p95_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"CPU {result.cpu_ms_per_request:.2f} ms/req  ({result.requests} requests, {result.errors} errors)"
            )
        return results


def django_env(redis_url: str, database_url: str, server: Vcsim, conn_max_age: int | None = None) -> dict[str, str]:
    values = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "VSPHERE_SERVER": server.server,
        "VSPHERE_USER": server.user,
        "VSPHERE_PASSWORD": server.password,
        "VSPHERE_ALLOW_UNVERIFIED_SSL": "true",
        "PYTHONPATH": str(ROOT),
    }
    if conn_max_age is not None:
        values["DATABASE_CONN_MAX_AGE"] = str(conn_max_age)
    env = dict(os.environ)
    for name in values:
        env.pop(f"{name}_FILE", None)  # a *_FILE variable would win over ours (vmprov.env.env_str)
    env.update(values)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}")
    return completed.stdout


def log_in(base_url: str, username: str, password: str) -> str:
    """Log in through /login/ as a browser would; returns the Cookie header value of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("the login page has no CSRF token")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    request = urllib.request.Request(base_url + "/login/", data=form, headers={"Referer": base_url + "/login/"})
    opener.open(request, timeout=10).read()
    session = next((cookie.value for cookie in jar if cookie.name == "sessionid"), None)
    if session is None:
        raise RuntimeError("logging in through /login/ gave no session cookie")
    return f"sessionid={session}"


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {seconds:.0f} s")


@dataclass
class ServeResult:
    objects: dict[str, int]
    warm_output: str
    gunicorn: str
    loaded: dict[str, LoadResult]  # by endpoint key, at --connections
    one_client: dict[str, LoadResult]  # by endpoint key, one connection
    live_one_client_ms: list[float]
    live_soap_calls: int
    stale_paths: list[str]
    other_cores: float  # CPU other processes on the machine used meanwhile (noise)
    steal_cores: float


def measure_serving(stack: contextlib.ExitStack, flags: dict[str, Any], args: argparse.Namespace) -> ServeResult:
    say(f"\n== Serving: gunicorn + Redis, cache warmed from vcsim ({flag_text(flags)}, {args.live_delay} ms per call)")
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vmprov-bench-")))
    redis = started(stack, start_redis())
    server = started(stack, start_vcsim(**flags, delay=args.live_delay))
    objects = count_objects(server)
    env = django_env(redis.url, f"sqlite:///{workdir / 'db.sqlite3'}", server, args.db_conn_max_age)
    say(f"   redis-server {redis.url} (throwaway), SQLite {workdir / 'db.sqlite3'}, vcsim {server.server}")

    manage(env, "migrate", "--no-input", "-v", "0")
    username, password = "bench", secrets.token_urlsafe(16)
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({username!r}, password={password!r})",
    )
    warm_output = manage(env, "warm_cache").strip().splitlines()[-1]
    say(f"   manage.py warm_cache: {warm_output}")

    port = free_port()
    gunicorn_args = [
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--timeout",
        "120",
        "--log-level",
        "warning",
        *(["--reuse-port"] if args.reuse_port else []),
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *gunicorn_args, "vmprov.wsgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stack.enter_context(open(workdir / "gunicorn.log", "w")),  # noqa: SIM115 (closed by the stack)
    )
    stack.callback(stop_process, process)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(base_url + "/login/", process)
    conn_text = "" if args.db_conn_max_age is None else f", DATABASE_CONN_MAX_AGE={args.db_conn_max_age}"
    gunicorn_text = (
        f"gunicorn {' '.join(gunicorn_args[2:])} vmprov.wsgi (DJANGO_SETTINGS_MODULE=bench.settings{conn_text})"
    )
    say(f"   {gunicorn_text} on {base_url}")

    web = Web(base_url, log_in(base_url, username, password), workdir, args.wrk_threads, process.pid)
    datacenter_id = web.json("/api/vsphere/datacenters")["datacenters"][0]["id"]
    clusters = web.json(f"/api/vsphere/hierarchical/datacenters/{quote(datacenter_id)}/clusters")["clusters"]
    cluster_id = clusters[0]["id"]
    say(f"   logged in through /login/; datacenter {datacenter_id} ({len(clusters)} clusters), cluster {cluster_id}")

    endpoints = {
        "datacenters": Endpoint("cached datacenters", "/api/vsphere/datacenters"),
        "clusters": Endpoint(
            "cached clusters of a datacenter", f"/api/vsphere/hierarchical/datacenters/{quote(datacenter_id)}/clusters"
        ),
        "resources": Endpoint(
            "cached resources of a cluster", f"/api/vsphere/hierarchical/clusters/{quote(cluster_id)}/resources"
        ),
        "floor": Endpoint("floor: one HGETALL, logged in", f"/bench/floor/clusters/{quote(cluster_id)}/resources"),
        "floor_anonymous": Endpoint(
            "floor: one HGETALL, no session",
            f"/bench/floor-anonymous/clusters/{quote(cluster_id)}/resources",
            anonymous=True,
        ),
    }
    c, d, w, r = args.connections, args.duration, args.warmup, args.rounds
    say(f"   wrk: {c} connections, {d:g} s per endpoint in {r} interleaved rounds (after a {w:g} s warm-up each)")
    own_pids = [process.pid, redis.process.pid, server.process.pid]
    cpu_before = CpuSample.take(own_pids, process.pid)
    loaded = dict(zip(endpoints, web.load(list(endpoints.values()), c, d, r, warmup=w), strict=True))
    one_client_keys = ["datacenters", "clusters", "resources", "floor"]
    say(f"   wrk: 1 connection, {args.one_client_duration:g} s per endpoint in {r} interleaved rounds")
    one_client = dict(
        zip(
            one_client_keys,
            web.load([endpoints[k] for k in one_client_keys], 1, args.one_client_duration, r),
            strict=True,
        )
    )
    stale_paths = [e.path for k, e in endpoints.items() if k in one_client_keys[:3] and web.json(e.path).get("stale")]

    live = Endpoint("live from vCenter", f"/bench/live/clusters/{quote(cluster_id)}/resources")
    live_soap_calls = web.json(live.path)["soap_calls"]
    live_one_client = [web.get(live.path)[2] for _ in range(args.live_samples)]
    say(
        f"   live from vCenter, one client: {', '.join(f'{ms:.0f}' for ms in live_one_client)} ms "
        f"({live_soap_calls} SOAP calls per request after login, + login and logout)"
    )
    loaded["live"] = web.load([live], c, args.live_duration, 1, timeout=60)[0]
    others, steal = CpuSample.take(own_pids, process.pid).others_since(cpu_before)
    say(f"   during the load runs, other processes on this machine used {others:.2f} cores, steal {steal:.2f}")
    return ServeResult(
        objects,
        warm_output,
        gunicorn_text,
        loaded,
        one_client,
        live_one_client,
        live_soap_calls,
        stale_paths,
        others,
        steal,
    )


def quote(managed_object_id: str) -> str:
    return urllib.parse.quote(managed_object_id, safe="")


# --- Process handling ----------------------------------------------------------------------------


def started(stack: contextlib.ExitStack, service: Any) -> Any:
    """Register a started vcsim or redis-server to be stopped whatever happens."""
    stack.callback(service.stop)
    return service


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ExitStack stops what was started."""

    def stop(signum: int, frame: Any) -> None:
        print("\nterminated: stopping everything the benchmark started", file=sys.stderr, flush=True)
        sys.exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- Report --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(sizes: list[SizeResult], serve: ServeResult, args: argparse.Namespace, elapsed: float) -> None:
    say("\n" + "=" * 100)
    say(f"SUMMARY   (vCenter = vcsim from Debian's govmomi 0.24; {os.cpu_count()} CPU cores)")
    say("=" * 100)
    say("\nFull refresh (login + collect everything + logout; SOAP calls counted after login, before logout)")
    header = f"{'inventory':<22}{'collector':<10}{'ms/call':>8}{'SOAP calls':>12}{'seconds':>12}   note"
    say(header)
    say("-" * len(header))
    for size in sizes:
        label = f"{size.label} ({size.total_objects} obj)"
        say(
            f"{label:<22}{'vmprov':<10}{size.delay_ms:>8}{size.vmprov.soap_calls:>12}{size.vmprov.seconds:>12.2f}"
            f"   median of {len(size.vmprov_runs)}"
        )
        if size.vmprov_at_naive_delay is not None:
            run = size.vmprov_at_naive_delay
            say(f"{'':<22}{'vmprov':<10}{size.naive_delay_ms:>8}{run.soap_calls:>12}{run.seconds:>12.2f}")
        naive = size.naive
        note = "measured" if size.naive_delay_ms == size.delay_ms else f"measured at {size.naive_delay_ms} ms/call"
        say(f"{'':<22}{'naive':<10}{size.naive_delay_ms:>8}{naive.soap_calls:>12}{naive.seconds:>12.1f}   {note}")
        if size.naive_estimate_at_delay is not None:
            say(
                f"{'':<22}{'naive':<10}{size.delay_ms:>8}{naive.soap_calls:>12}{size.naive_estimate_at_delay:>12.1f}"
                f"   EXTRAPOLATED, not measured: {naive.seconds:.1f} s + {naive.soap_calls} calls x "
                f"{size.delay_ms - size.naive_delay_ms} ms"
            )
    say("")
    for size in sizes:
        calls_ratio = size.naive.soap_calls / size.vmprov.soap_calls
        if size.vmprov_at_naive_delay is None:
            time_text = f"{size.naive.seconds / size.vmprov.seconds:.0f}x faster (measured, {size.delay_ms} ms/call)"
        else:
            measured = size.naive.seconds / size.vmprov_at_naive_delay.seconds
            estimated = size.naive_estimate_at_delay / size.vmprov.seconds
            time_text = (
                f"{measured:.0f}x faster (measured, both at {size.naive_delay_ms} ms/call); "
                f"{estimated:.0f}x at {size.delay_ms} ms/call (EXTRAPOLATED naive time)"
            )
        say(f"{size.label:<7} naive/vmprov: {calls_ratio:,.0f}x the SOAP calls; vmprov {time_text}")

    loaded, one = serve.loaded, serve.one_client
    floor, live = loaded["floor"], loaded["live"]
    cached_keys = ["datacenters", "clusters", "resources"]
    live_one_client = statistics.median(serve.live_one_client_ms)
    say(f"\nServing ({serve.gunicorn}; inventory {sum(serve.objects.values())} objects; DEBUG off, LOG_LEVEL=WARNING)")
    say(
        f"wrk, {args.wrk_threads} thread(s). req/s: all rounds together (slowest-fastest round); latency percentiles: "
        f"median over {args.rounds} rounds; CPU ms: gunicorn workers' CPU time per request; vs floor: req/s "
        "relative to the floor at the same number of connections"
    )
    say(
        f"Other processes on the machine used {serve.other_cores:.2f} cores on average meanwhile "
        f"(hypervisor steal {serve.steal_cores:.2f}); wrk and redis-server share the 2 cores with gunicorn."
    )
    header = (
        f"{'endpoint':<34}{'conns':>6}{'req/s':>9}{'(range)':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'CPU ms':>8}{'errors':>7}{'bytes':>7}{'vs floor':>9}"
    )
    say(header)
    say("-" * len(header))

    def row(result: LoadResult, base: LoadResult | None) -> None:
        low, high = result.rps_range
        share = f"{result.rps / base.rps:.2f}" if base is not None else ""
        say(
            f"{result.name:<34}{result.connections:>6}{result.rps:>9.1f}{f'({low:.0f}-{high:.0f})':>12}"
            f"{result.p50_ms:>9.2f}{result.p95_ms:>9.2f}{result.p99_ms:>9.2f}{result.cpu_ms_per_request:>8.2f}"
            f"{result.errors:>7}"
            f"{result.response_bytes:>7}{share:>9}"
        )

    for key in [*cached_keys, "floor", "floor_anonymous", "live"]:
        row(loaded[key], floor)
    for key in [*cached_keys, "floor"]:
        row(one[key], one["floor"])
    say(
        f"{'live from vCenter':<34}{1:>6}{'':>9}{'':>12}{live_one_client:>9.1f}{'':>9}{'':>9}{'':>8}{'':>7}{'':>7}"
        f"{'':>9}"
        f"  (median of {len(serve.live_one_client_ms)} sequential requests)"
    )
    for path in serve.stale_paths:
        say(f"note: {path} answered stale=true (a background refresh was queued during the run)")

    equal_calls = len({size.vmprov.soap_calls for size in sizes}) == 1
    worst_loaded = max((loaded[k] for k in cached_keys), key=lambda r: r.p95_ms)
    worst_one = max((one[k] for k in cached_keys), key=lambda r: r.p95_ms)
    lowest_share = min((loaded[k] for k in cached_keys), key=lambda r: r.rps)
    resources_one, resources_loaded = one["resources"], loaded["resources"]
    speedup = live_one_client / resources_one.p50_ms
    speedup_loaded = live.p50_ms / resources_loaded.p50_ms
    throughput_ratio = resources_loaded.rps / live.rps if live.rps else float("inf")
    say("\nTargets")
    say(
        f"  [{verdict(equal_calls)}] vmprov's round trips equal across sizes: "
        + ", ".join(f"{s.vmprov.soap_calls} at {s.total_objects} objects" for s in sizes)
    )
    say(
        f"  [{verdict(worst_loaded.p95_ms < CACHED_P95_MS)}] cached p95 < {CACHED_P95_MS:g} ms at {args.connections} "
        f"connections: worst {worst_loaded.p95_ms:.2f} ms ({worst_loaded.name}); the floor's own p95 there is "
        f"{floor.p95_ms:.2f} ms"
    )
    say(
        f"  [{verdict(worst_one.p95_ms < CACHED_P95_MS)}] cached p95 < {CACHED_P95_MS:g} ms with one client: "
        f"worst {worst_one.p95_ms:.2f} ms ({worst_one.name})"
    )
    say(
        f"  [{verdict(lowest_share.rps >= FLOOR_SHARE * floor.rps)}] cached throughput >= {FLOOR_SHARE:g} x the "
        f"floor's ({floor.rps:.0f} req/s at {args.connections} connections): lowest "
        f"{lowest_share.rps / floor.rps:.2f} ({lowest_share.name}); "
        + ", ".join(f"{loaded[k].rps / floor.rps:.2f}" for k in cached_keys)
    )
    say(
        f"  [{verdict(speedup >= LIVE_FACTOR)}] cached >= {LIVE_FACTOR:g}x faster than live at "
        f"{args.live_delay} ms/call: "
        f"{speedup:,.0f}x (p50, one client, cluster resources: {resources_one.p50_ms:.2f} ms vs "
        f"{live_one_client:.0f} ms); at {args.connections} connections: {speedup_loaded:,.0f}x p50, "
        f"{throughput_ratio:,.0f}x req/s"
    )
    say(f"\nCommand: {shlex.join(sys.orig_argv)}   (in {Path.cwd()})")
    say(f"Total time: {elapsed:.0f} s")


# --- Main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: ~200 and ~500 objects, short load runs")
    parser.add_argument("--delay", type=int, default=20, help="vcsim ms per SOAP call for the refresh comparison")
    parser.add_argument("--live-delay", type=int, default=50, help="vcsim ms per SOAP call behind the live view")
    parser.add_argument("--naive-budget", type=float, default=None, help="seconds the large naive walk may take")
    parser.add_argument("--repeats", type=int, default=None, help="vmprov refreshes per size (median reported)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per endpoint")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved wrk rounds the duration is split into")
    parser.add_argument("--one-client-duration", type=float, default=None, help="seconds per endpoint, 1 connection")
    parser.add_argument("--live-duration", type=float, default=None, help="seconds of load on the live view")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of load on each endpoint before measuring")
    parser.add_argument("--live-samples", type=int, default=None, help="sequential live requests (one client)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (it competes with the server)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument(
        "--db-conn-max-age",
        type=int,
        default=None,
        help="DATABASE_CONN_MAX_AGE for the server (default: vmprov's own default, a new connection per request)",
    )
    parser.add_argument(
        "--reuse-port",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one listening socket per gunicorn worker, so the kernel spreads keep-alive connections over the "
        "workers (without it one worker often gets all of wrk's connections and the other idles)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "naive_budget": 20 if quick else 150,
        "repeats": 1 if quick else 3,
        "duration": 4 if quick else 10,
        "rounds": 2 if quick else 5,
        "one_client_duration": 2 if quick else 4,
        "live_duration": 3 if quick else 10,
        "warmup": 1 if quick else 2,
        "live_samples": 3 if quick else 7,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        say("wrk is not installed: apt-get install -y wrk")
        return 2
    began = time.monotonic()
    say(f"vmprov inventory benchmark{' (--quick)' if args.quick else ''}; building vcsim…")
    build_vcsim()
    small, large = SMALL, QUICK_LARGE if args.quick else LARGE

    cost_per_object: dict[str, float] = {}

    def naive_delay(objects: dict[str, int]) -> int:
        """The per-call delay the naive walk gets: --delay, unless that would blow the time budget."""
        if not cost_per_object:
            return args.delay  # the small inventory: always measured at --delay
        calls = cost_per_object["calls"] * sum(objects.values())
        affordable_ms = (args.naive_budget / calls - cost_per_object["overhead"]) * 1000
        return max(0, min(args.delay, int(affordable_ms)))

    with sigterm_as_exit(), contextlib.ExitStack() as stack:
        sizes = [measure_size(stack, "small", small, args.delay, args.repeats, naive_delay)]
        first = sizes[0]
        cost_per_object["calls"] = first.naive.soap_calls / first.total_objects
        cost_per_object["overhead"] = max(0.0, first.naive.seconds / first.naive.soap_calls - args.delay / 1000)
        sizes.append(measure_size(stack, "large", large, args.delay, args.repeats, naive_delay))
        serve = measure_serving(stack, large, args)
        say("\n   stopping gunicorn, redis-server and vcsim…")
    report(sizes, serve, args, time.monotonic() - began)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: everything the benchmark started has been stopped", file=sys.stderr)
        sys.exit(130)
