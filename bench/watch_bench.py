"""The watcher benchmark: how soon vCenter's changes reach the API, what the watcher costs at idle, and its first
load at about 5,000 and 50,000 objects.

    .venv/bin/python bench/watch_bench.py              # full run (about 10 minutes, most of it the 50,000)
    .venv/bin/python bench/watch_bench.py --quick      # smoke run (about 2 minutes)

Part 1, latency: vcsim (`--latency-size`, `--delay` ms per SOAP call), a throwaway redis-server, gunicorn under
bench.settings as bench/inventory_bench.py starts it, and `manage.py watch_inventory` as scripts/run starts it
(INVENTORY_WATCH_WAIT_SECONDS=`--max-wait`). A staff user logged in through /login/ reads the VM list
(/api/vsphere/hierarchical/datacenters/<id>/vms) every `--poll` ms. For each kind of change (rename, power-off,
new VM by CloneVM_Task, removed VM by Destroy_Task) `--changes` changes are made one after the other through a
vCenter session of the benchmark's own. One change's latency runs from just before the call that makes it to the
first answer of the API that shows it: it includes the task's own run in vcsim, and vcsim's 250 ms tick (govmomi
0.24 gathers updates for a waiting collector every 250 ms).

Part 2, idle: the watcher's own count of its SOAP calls (its status in Redis, per method) over `--idle` seconds
without changes, per hour; its resident memory (VmRSS) and peak (VmHWM).

Part 3, first load: for each size a vcsim, a redis-server and a watcher process: the time from starting the
process to the live marker in Redis (everything read and written; includes starting Python and Django), the
watcher's own reload time (feed opened to lists written), its SOAP calls and its peak memory.

Everything started here is stopped at the end, on error, on Ctrl-C and on SIGTERM; nothing is written outside a
temporary directory (and vcsim's build cache under .cache/); Redis at 127.0.0.1:6379 is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make vmprov, inventory, devtools and bench importable
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from pyVim.task import WaitForTask  # noqa: E402
from pyVmomi import vim  # noqa: E402

from bench.inventory_bench import (  # noqa: E402
    LARGE,
    SMALL,
    Web,
    count_objects,
    django_env,
    flag_text,
    log_in,
    manage,
    quote,
    run_vmprov,
    say,
    sigterm_as_exit,
    started,
    stop_process,
    wait_for_http,
)
from devtools.ports import free_port  # noqa: E402
from devtools.redis_server import start_redis  # noqa: E402
from devtools.vcsim import Vcsim, build_vcsim, start_vcsim  # noqa: E402
from devtools.vsphere_provider import session as admin_session  # noqa: E402
from inventory.cache import replica_key, watcher_key  # noqa: E402

# About 50,000 objects: LARGE with ten times the VMs per cluster.
HUGE = {**LARGE, "vm": 1200}
SIZES = {"small": SMALL, "large": LARGE, "huge": HUGE}
P95_GOAL_SECONDS = 2.0


# --- Processes -------------------------------------------------------------------------------------


@dataclass
class Stack:
    """What one part started: vcsim, redis-server, the Django environment, the watcher process."""

    vcsim: Vcsim
    redis_url: str
    env: dict[str, str]
    workdir: Path
    watcher: subprocess.Popen | None = None
    watcher_started: float = 0.0

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def start_watcher(self, stack: contextlib.ExitStack, max_wait: int) -> subprocess.Popen:
        env = {**self.env, "INVENTORY_WATCH_WAIT_SECONDS": str(max_wait), "LOG_LEVEL": "INFO"}
        log = stack.enter_context(open(self.workdir / "watcher.log", "w"))  # noqa: SIM115 (closed by the stack)
        self.watcher_started = time.perf_counter()
        self.watcher = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "watch_inventory"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        stack.callback(stop_process, self.watcher)
        return self.watcher

    def live(self) -> dict | None:
        value = self.redis().get(watcher_key("live"))
        return json.loads(value) if value else None

    def watcher_status(self) -> dict:
        value = self.redis().get(replica_key(self.live()["replica"]))
        return json.loads(value) if value else {}

    def next_status(self, after: float, seconds: float = 120) -> dict:
        """The watcher's first status published after `after` (it publishes one after each wait)."""
        deadline = time.monotonic() + seconds
        while (status := self.watcher_status()).get("updated_at", 0) <= after:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the watcher published no status within {seconds:.0f} s")
            time.sleep(0.1)
        return status

    def wait_live(self, seconds: float) -> float:
        """Seconds from the watcher process's start to its live marker."""
        deadline = time.perf_counter() + seconds
        while self.live() is None:
            if self.watcher.poll() is not None:
                raise RuntimeError(f"the watcher exited: {(self.workdir / 'watcher.log').read_text()[-2000:]}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the watcher was not live within {seconds:.0f} s")
            time.sleep(0.05)
        return time.perf_counter() - self.watcher_started


def start_stack(stack: contextlib.ExitStack, flags: dict[str, Any], delay: int) -> Stack:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vmprov-watch-bench-")))
    server = started(stack, start_vcsim(**flags, delay=delay))
    redis_server = started(stack, start_redis())
    env = django_env(redis_server.url, f"sqlite:///{workdir / 'db.sqlite3'}", server)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env["PYTHONPATH"], os.environ.get("PYTHONPATH")]))
    return Stack(server, redis_server.url, env, workdir)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process (Linux), in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0])
    return fields


# --- Part 1: latency -------------------------------------------------------------------------------


@dataclass
class Latencies:
    kind: str
    seconds: list[float] = field(default_factory=list)  # change made -> the API shows it
    watcher_ms: list[float] = field(default_factory=list)  # vCenter's answer -> the cache holds it (the watcher's)

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 0.95)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class ChangeTimer:
    """Times changes by reading `path` through `web` every `poll` seconds until it shows them."""

    parts: Stack
    web: Web
    path: str
    poll: float

    def time(self, latencies: Latencies, make: Callable[[], Any], shown: Callable[[dict], bool]) -> None:
        """Seconds from just before `make()` to the first answer for which `shown(answer)` holds, and the
        watcher's own share of it (its `lag_ms`: from vCenter's answer to the lists written)."""
        made_at = time.time()
        started_at = time.perf_counter()
        task = make()
        while not shown(self.web.json(self.path)):
            if time.perf_counter() - started_at > 30:
                raise RuntimeError(f"the API did not show the change within 30 s ({self.path})")
            time.sleep(self.poll)
        latencies.seconds.append(time.perf_counter() - started_at)
        if task is not None:
            WaitForTask(task)
        status = self.parts.watcher_status()
        while (status.get("last_update_at") or 0) < made_at:
            time.sleep(0.05)
            status = self.parts.watcher_status()
        latencies.watcher_ms.append(status["lag_ms"])


def machines_by_name(content: Any, datacenter: Any) -> dict[str, Any]:
    view = content.viewManager.CreateContainerView(datacenter, [vim.VirtualMachine], True)
    try:
        return {vm.name: vm for vm in view.view}
    finally:
        view.DestroyView()


def names(answer: dict) -> dict[str, dict]:
    return {vm["name"]: vm for vm in answer["vms"]}


def measure_latency(stack: contextlib.ExitStack, args: argparse.Namespace) -> tuple[list[Latencies], dict]:
    flags = SIZES[args.latency_size]
    say(f"\n== Latency: vcsim {args.latency_size} ({flag_text(flags)}, {args.delay} ms per SOAP call)")
    parts = start_stack(stack, flags, args.delay)
    objects = count_objects(parts.vcsim)
    say(f"   objects: {sum(objects.values())}")
    manage(parts.env, "migrate", "--no-input", "-v", "0")
    username, password = "bench", secrets.token_urlsafe(16)
    manage(
        parts.env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({username!r}, password={password!r}, is_staff=True)",
    )
    parts.start_watcher(stack, args.max_wait)
    took = parts.wait_live(600)
    say(f"   watcher live {took:.2f} s after its start (INVENTORY_WATCH_WAIT_SECONDS={args.max_wait})")

    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"]
    command += ["--workers", "2", "--threads", "4", "--log-level", "warning", "vmprov.wsgi:application"]
    gunicorn_log = stack.enter_context(open(parts.workdir / "gunicorn.log", "w"))  # noqa: SIM115 (closed by the stack)
    gunicorn = subprocess.Popen(command, env=parts.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=gunicorn_log)
    stack.callback(stop_process, gunicorn)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(base_url + "/login/", gunicorn)
    web = Web(base_url, log_in(base_url, username, password), parts.workdir, 1, gunicorn.pid)
    datacenter_id = web.json("/api/vsphere/datacenters")["datacenters"][0]["id"]
    path = f"/api/vsphere/hierarchical/datacenters/{quote(datacenter_id)}/vms"
    first = web.json(path)
    if not first["live"]:
        raise RuntimeError(f"the API does not say live: {first['freshness']}")
    say(f"   gunicorn on {base_url}; the API says: {first['freshness']}")

    timer = ChangeTimer(parts, web, path, args.poll / 1000)
    kinds = {kind: Latencies(kind) for kind in ("rename", "power-off", "new VM", "removed VM")}
    with admin_session(parts.vcsim.url) as si:
        content = si.RetrieveContent()
        datacenter = next(dc for dc in content.rootFolder.childEntity if dc._moId == datacenter_id)
        running = sorted(vm["name"] for vm in first["vms"] if vm["power_state"] == "poweredOn")
        if len(running) < args.changes:
            raise RuntimeError(f"{len(running)} powered-on VMs in {datacenter_id}: too few for {args.changes} changes")
        by_name = machines_by_name(content, datacenter)
        chosen = [by_name[name] for name in running[: args.changes]]
        source = chosen[0]
        for n, vm in enumerate(chosen):
            new_name = f"bench-renamed-{n}"
            timer.time(
                kinds["rename"],
                lambda vm=vm, new_name=new_name: vm.Rename_Task(new_name),
                lambda a, new_name=new_name: new_name in names(a),
            )
        for n, vm in enumerate(chosen):
            timer.time(
                kinds["power-off"],
                vm.PowerOffVM_Task,
                lambda a, n=n: names(a)[f"bench-renamed-{n}"]["power_state"] == "poweredOff",
            )
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=False)
        clones = [f"bench-new-{n}" for n in range(args.changes)]
        for clone_name in clones:
            timer.time(
                kinds["new VM"],
                lambda clone_name=clone_name: source.CloneVM_Task(folder=source.parent, name=clone_name, spec=spec),
                lambda a, clone_name=clone_name: clone_name in names(a),
            )
        by_name = machines_by_name(content, datacenter)
        for clone_name in clones:
            timer.time(
                kinds["removed VM"],
                by_name[clone_name].Destroy_Task,
                lambda a, clone_name=clone_name: clone_name not in names(a),
            )
    for latencies in kinds.values():
        say(
            f"   {latencies.kind:<11} n={len(latencies.seconds)}  p50 {latencies.p50 * 1000:6.0f} ms  "
            f"p95 {latencies.p95 * 1000:6.0f} ms  max {max(latencies.seconds) * 1000:6.0f} ms; the watcher's own "
            f"share p50 {statistics.median(latencies.watcher_ms):.1f} ms, max {max(latencies.watcher_ms):.1f} ms"
        )

    say(f"\n== Idle: {args.idle:g} s without changes (from one status of the watcher to the first after)")
    status_before = parts.next_status(time.time())
    time.sleep(args.idle)
    status_after = parts.next_status(status_before["updated_at"] + args.idle)
    calls = status_after["soap_calls"] - status_before["soap_calls"]
    methods = {
        method: count - status_before["soap_calls_by_method"].get(method, 0)
        for method, count in status_after["soap_calls_by_method"].items()
        if count != status_before["soap_calls_by_method"].get(method, 0)
    }
    elapsed = status_after["updated_at"] - status_before["updated_at"]
    idle = {
        "calls": calls,
        "seconds": elapsed,
        "per_hour": calls / elapsed * 3600 if elapsed else 0.0,
        "by_method": methods,
        "memory": memory_kb(parts.watcher.pid),
        "objects": status_after["objects"],
        "max_wait": args.max_wait,
    }
    say(
        f"   {calls} SOAP calls in {elapsed:.0f} s ({methods}) = {idle['per_hour']:.0f} per hour; "
        f"watcher memory {idle['memory']['VmRSS'] / 1024:.0f} MB (peak {idle['memory']['VmHWM'] / 1024:.0f} MB) "
        f"for {idle['objects']} objects"
    )
    return list(kinds.values()), idle


# --- Part 3: first load ----------------------------------------------------------------------------


@dataclass
class FirstLoad:
    size: str
    flags: dict[str, Any]
    objects: int
    vcsim_start: float
    to_live: float
    reload_seconds: float
    soap_calls: dict[str, int]
    memory: dict[str, int]
    collect_seconds: float  # one full collection (what a refresh does) of the same vcsim, just after


def measure_first_load(size: str, args: argparse.Namespace) -> FirstLoad:
    flags = SIZES[size]
    say(f"\n== First load: vcsim {size} ({flag_text(flags)}, {args.delay} ms per SOAP call)")
    with contextlib.ExitStack() as own:
        began = time.perf_counter()
        parts = start_stack(own, flags, args.delay)
        vcsim_start = time.perf_counter() - began
        say(f"   vcsim started in {vcsim_start:.0f} s; starting the watcher")
        parts.start_watcher(own, args.max_wait)
        to_live = parts.wait_live(args.load_timeout)
        status = parts.next_status(time.time())
        for line in (parts.workdir / "watcher.log").read_text().splitlines():
            if " WARNING " in line or " ERROR " in line:
                say(f"   watcher log: {line}")
        memory = memory_kb(parts.watcher.pid)
        stop_process(parts.watcher)  # the comparison runs alone
        collected = run_vmprov(parts.vcsim)
        result = FirstLoad(
            size,
            flags,
            status["objects"],
            vcsim_start,
            to_live,
            status["reconcile_seconds"],
            status["soap_calls_by_method"],
            memory,
            collected.seconds,
        )
    say(
        f"   {result.objects} objects: live {result.to_live:.1f} s after the process started; reload "
        f"{result.reload_seconds:.1f} s; SOAP calls {result.soap_calls}; memory {memory['VmRSS'] / 1024:.0f} MB "
        f"(peak {memory['VmHWM'] / 1024:.0f} MB); a full collection of the same vcsim: {result.collect_seconds:.1f} s"
    )
    return result


# --- Report and main -------------------------------------------------------------------------------


def report(latencies: list[Latencies], idle: dict, loads: list[FirstLoad], args: argparse.Namespace, began: float):
    say("\n" + "=" * 100)
    say(
        f"SUMMARY   (vCenter = vcsim from Debian's govmomi 0.24, {args.delay} ms per SOAP call; {os.cpu_count()} cores)"
    )
    say("=" * 100)
    if latencies:
        report_latency(latencies, idle, args)
    if loads:
        say("\nFirst load (watcher process start -> everything in Redis and live; collect: one full collection)")
        header = (
            f"{'size':<8}{'objects':>9}{'to live s':>11}{'reload s':>10}{'collect s':>11}{'RSS MB':>8}{'peak MB':>9}"
            "   SOAP calls"
        )
        say(header)
        say("-" * len(header))
        for load in loads:
            say(
                f"{load.size:<8}{load.objects:>9}{load.to_live:>11.1f}{load.reload_seconds:>10.1f}"
                f"{load.collect_seconds:>11.1f}{load.memory['VmRSS'] / 1024:>8.0f}{load.memory['VmHWM'] / 1024:>9.0f}"
                f"   {load.soap_calls}"
            )
    say(f"\nCommand: {shlex.join(sys.orig_argv)}   (in {Path.cwd()})")
    say(f"Total time: {time.monotonic() - began:.0f} s")


def report_latency(latencies: list[Latencies], idle: dict, args: argparse.Namespace) -> None:
    say(
        f"\nLatency, change in vcsim -> the API shows it ({args.latency_size} inventory, API read every {args.poll} ms)"
    )
    say("(watcher ms: its own share, from vCenter's answer to the lists written; the rest is vcsim and the API)")
    header = f"{'change':<12}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'watcher p50':>13}{'watcher p95':>13}"
    say(header)
    say("-" * len(header))
    for item in latencies:
        say(
            f"{item.kind:<12}{len(item.seconds):>4}{item.p50 * 1000:>10.0f}{item.p95 * 1000:>10.0f}"
            f"{max(item.seconds) * 1000:>10.0f}{statistics.median(item.watcher_ms):>13.1f}"
            f"{percentile(item.watcher_ms, 0.95):>13.1f}"
        )
    say(
        f"\nIdle ({idle['objects']} objects, INVENTORY_WATCH_WAIT_SECONDS={idle['max_wait']}): {idle['calls']} SOAP "
        f"calls in {idle['seconds']:.0f} s = {idle['per_hour']:.0f} per hour, by method {idle['by_method']}; "
        f"watcher memory {idle['memory']['VmRSS'] / 1024:.0f} MB (peak {idle['memory']['VmHWM'] / 1024:.0f} MB)"
    )
    worst = max(latencies, key=lambda item: item.p95)
    waits = idle["by_method"].get("WaitForUpdatesEx", 0)
    say("\nTargets")
    say(
        f"  [{'PASS' if worst.p95 <= P95_GOAL_SECONDS else 'MISS'}] p95 <= {P95_GOAL_SECONDS:g} s for every kind of "
        f"change: worst {worst.p95:.2f} s ({worst.kind})"
    )
    say(
        f"  [{'PASS' if waits == idle['calls'] else 'MISS'}] at idle, the waits alone: {waits} WaitForUpdatesEx of "
        f"{idle['calls']} calls"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 changes each, 30 s idle, no 50,000")
    parser.add_argument("--changes", type=int, default=None, help="changes of each kind (default 20)")
    parser.add_argument("--delay", type=int, default=20, help="vcsim ms per SOAP call")
    parser.add_argument("--max-wait", type=int, default=15, help="INVENTORY_WATCH_WAIT_SECONDS of the watcher")
    parser.add_argument("--poll", type=int, default=10, help="ms between two reads of the API")
    parser.add_argument("--idle", type=float, default=None, help="seconds without changes (default 300)")
    parser.add_argument("--latency-size", choices=sorted(SIZES), default="small", help="inventory for part 1")
    parser.add_argument("--sizes", default=None, help="first-load sizes, comma-separated (default large,huge)")
    parser.add_argument("--load-timeout", type=float, default=1800, help="seconds a first load may take")
    parser.add_argument("--no-latency", action="store_true", help="first loads only (parts 1 and 2 skipped)")
    args = parser.parse_args(argv)
    if args.changes is None:
        args.changes = 5 if args.quick else 20
    if args.idle is None:
        args.idle = 30 if args.quick else 300
    if args.sizes is None:
        args.sizes = "large" if args.quick else "large,huge"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    say(f"vmprov watcher benchmark{' (--quick)' if args.quick else ''}; building vcsim…")
    build_vcsim()
    with sigterm_as_exit(), contextlib.ExitStack() as stack:
        latencies, idle = ([], {}) if args.no_latency else measure_latency(stack, args)
        stack.close()  # part 1's processes stop before the first loads are timed
        loads = [measure_first_load(size, args) for size in filter(None, args.sizes.split(","))]
    report(latencies, idle, loads, args, began)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: everything the benchmark started has been stopped", file=sys.stderr)
        sys.exit(130)
