#!/usr/bin/env python3
"""How long root waits for the helper while unprivileged users flood its free methods.

    sudo .venv/bin/python -m bench.hostile [--devices 300] [--seconds 20]
    sudo .venv-floor/bin/python -m bench.hostile   # Debian 12's dbus-fast and pyroute2

Brings up the real stack of the integration tests (a private system bus,
the real polkitd, the helper as root in a network namespace of its own),
makes ``--devices`` TAP devices in that namespace with one ``ip -batch`` and
waits until the helper lists them all.  Then, in one invocation, two runs of
``--seconds`` each:

1. idle (the reference): root alone calls ListDevices, then
   ListDevicesByFileDescriptor, every ``--interval`` on one connection of
   its own, and times each from send to reply (the listing's fd is closed
   unread: the round trip is the helper's part);
2. flood: the same, while ``--processes`` processes of ``nobody``
   (tests/support/hostile/client.py in its ``flood`` mode) keep
   ``--window`` calls in flight on each of ``--connections`` connections,
   each call one of the free methods (ListDevices, ListDevicesByFileDescriptor,
   Subscribe, WatchStatistics, UnwatchStatistics, GetPermissions, Introspect,
   Properties.GetAll) at random, as fast as the bus answers.  Timing starts
   once the flood has run for ``--ramp`` seconds.

It prints p50, p99 and max of each method in both runs and the ratio
flood/idle; issue 10's target is a p99 under the flood within 2x of idle.
Also the flood's call rate (answers a second, by method), and the CPU of
the helper, dbus-daemon, polkitd and the flood during each run.  Figures go
to stdout, progress to stderr.  It removes everything it made when it ends,
on Ctrl+C or SIGTERM too.  Do not run it while the integration tests run
(both install polkit's policy file; the figures would include their load).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.benchlib import BenchStack, log, raise_interrupt
from tests.support.buscall import bus_call
from tests.support.environment import base_env
from tests.support.names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH
from tests.support.polkit import remove_stale_rules
from tests.support.processes import missing_requirements, run
from tests.support.waiting import wait_until

NETNS_PREFIX = "tungui-bench-hostile-"
MEMBERS = ("ListDevices", "ListDevicesByFileDescriptor")
#: Issue 10's target: p99 under the flood at most this many times idle.
TARGET_RATIO = 2.0

VERSIONS_CODE = """\
import importlib.metadata as m, json, platform
print(json.dumps({"python": platform.python_version(), "dbus-fast": m.version("dbus-fast"),
                  "pyroute2": m.version("pyroute2")}))
"""


@dataclass
class Run:
    """One timed run: root's round trips, and what each process spent meanwhile."""

    label: str
    latencies: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    flood: dict[str, Any] | None = None
    helper_died: int | None = None


def fill_namespace(bench: BenchStack, devices: int) -> float:
    """Make ``devices`` TAPs with one ``ip -batch``; wait until the helper lists them all."""
    batch = bench.directory / "tuntap.batch"
    batch.write_text("".join(f"tuntap add mode tap name hb{i}\n" for i in range(devices)), "ascii")
    run(["ip", "-n", bench.netns.name, "-batch", str(batch)], timeout=600)
    t0 = time.perf_counter()

    def listed() -> bool:
        (found,) = bus_call(
            bench.bus.address,
            HELPER_BUS_NAME,
            HELPER_OBJECT_PATH,
            HELPER_INTERFACE,
            "ListDevices",
        )
        return sum(str(d["name"].value).startswith("hb") for d in found) >= devices

    wait_until(listed, timeout=max(30.0, devices * 0.05), what=f"{devices} devices listed")
    return time.perf_counter() - t0


def cpu_of(pids: dict[str, list[int]]) -> dict[str, float]:
    from tests.support import probes

    totals = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            with contextlib.suppress(OSError):  # a process that has ended
                total += probes.cpu_seconds(pid)
        totals[name] = total
    return totals


def timed(
    bench: BenchStack, args: argparse.Namespace, label: str, pids: dict[str, list[int]]
) -> Run:
    """Root's calls for ``--seconds``; the CPU of ``pids`` meanwhile."""
    from tests.support.probes import LatencyProbe

    run = Run(label)
    probe = LatencyProbe(bench.bus.address, MEMBERS, interval=args.interval, timeout=5.0)
    before = cpu_of(pids)
    t0 = time.monotonic()
    # Unmarshalling a listing of hundreds of devices makes thousands of objects:
    # no collection of this process's garbage may land inside a timed call.
    gc.disable()
    probe.start()
    try:
        time.sleep(args.seconds)
    finally:
        run.latencies = probe.stop()
        gc.enable()
    run.seconds = time.monotonic() - t0
    after = cpu_of(pids)
    run.cpu = {name: (after[name] - before[name]) / run.seconds for name in pids}
    return run


def flooded(
    bench: BenchStack, args: argparse.Namespace, seed: int, pids: dict[str, list[int]]
) -> Run:
    """The timed run with nobody's flood going on."""
    from tests.support.hostile import processes as hostile

    contract = hostile.contract(["lo"])
    settings = [
        {
            "contract": contract,
            "mode": "flood",
            "seed": seed,
            "process": p,
            "seconds": args.ramp + args.seconds + 600,  # stopped by us
            "connections": args.connections,
            "slow_readers": 0,
            "window": args.window,
        }
        for p in range(args.processes)
    ]
    clients = hostile.HostileClients(bench.bus.address, bench.directory, settings, nice=args.nice)
    try:
        clients.start()
        pids = {**pids, "nobody's flood": clients.pids()}
        clients.go()
        time.sleep(args.ramp)
        run = timed(bench, args, "flood", pids)
        clients.stop()
        tallies = clients.results(timeout=60)
    finally:
        clients.kill()
    run.flood = hostile.merge(tallies)
    return run


def report(
    args: argparse.Namespace,
    versions: dict[str, Any],
    seed: int,
    listed_after: float,
    idle: Run,
    flood: Run,
) -> str:
    from tests.support.probes import Latencies

    lines = [
        f"helper: Python {versions['python']}, dbus-fast {versions['dbus-fast']}, "
        f"pyroute2 {versions['pyroute2']}; kernel {platform.release()}, {os.cpu_count()} CPUs",
        f"{args.devices} TAP devices in the namespace (the helper listed them all "
        f"{listed_after:.2f} s after ip -batch made them)",
        "",
        f"reference (idle): root alone on the bus, one connection of its own, calling "
        f"{' then '.join(MEMBERS)} every {args.interval * 1000:.0f} ms for {args.seconds:g} s, "
        "each timed from send to reply unmarshalled by dbus-fast, garbage collection off "
        "(nothing else calls the helper; polkitd and dbus-daemon idle).",
        f"flood: the same calls, timed the same way, {args.ramp:g} s after {args.processes} "
        f"processes of nobody (niceness {args.nice}) began, each with {args.connections} "
        f"connections keeping {args.window} calls of the free methods in flight "
        f"(seed {seed}).",
        "",
        f"{'':30} {'idle p50/p99/max ms':>22} {'flood p50/p99/max ms':>24} "
        f"{'p99 ratio':>9}  target <= {TARGET_RATIO:g}x",
    ]
    for member in MEMBERS:
        a: Latencies = idle.latencies[member]
        b: Latencies = flood.latencies[member]

        def trio(lat: Latencies) -> str:
            if not lat.seconds:
                return "no answer"
            values = (lat.percentile(0.5), lat.percentile(0.99), max(lat.seconds))
            return "/".join(f"{1000 * v:.1f}" for v in values)

        ratio = b.percentile(0.99) / a.percentile(0.99) if a.seconds and b.seconds else float("nan")
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        failed = sum(b.failures.values()) + sum(a.failures.values())
        lines.append(
            f"{member:30} {trio(a):>22} {trio(b):>24} {ratio:8.1f}x  {verdict}"
            + (
                f"  ({failed} calls failed: {dict(a.failures)} {dict(b.failures)})"
                if failed
                else ""
            )
        )
        lines.append(f"{'':30} {len(a.seconds):>22} {len(b.seconds):>24}  calls timed")
    assert flood.flood is not None
    total = flood.flood
    seconds = total["seconds"] or 1.0
    by_member: dict[str, int] = {}
    for key, count in total["answers"].items():
        if key.endswith(" ok"):
            by_member[key[:-3]] = by_member.get(key[:-3], 0) + count
    succeeded = sum(by_member.values())
    errors = {k: v for k, v in total["answers"].items() if not k.endswith(" ok")}
    lines += [
        "",
        f"flood: {succeeded} calls answered with success in {seconds:.1f} s, "
        f"{succeeded / seconds:.0f} a second ("
        + ", ".join(f"{m} {c / seconds:.0f}/s" for m, c in sorted(by_member.items()))
        + ")",
        f"  errors: {errors or 'none'}; unanswered {total['unanswered']}",
    ]
    if flood.helper_died is not None:
        lines.append(f"  the helper DIED during the flood (exit status {flood.helper_died})")
    for timed_run in (idle, flood):
        lines.append(
            f"CPU during {timed_run.label} (% of one core): "
            + ", ".join(f"{name} {100 * v:.0f}" for name, v in timed_run.cpu.items())
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=300, help="TAPs in the namespace (300)")
    parser.add_argument("--seconds", type=float, default=20.0, help="each timed run (20)")
    parser.add_argument("--interval", type=float, default=0.02, help="between root's calls (0.02)")
    parser.add_argument("--processes", type=int, default=3, help="nobody's processes (3)")
    parser.add_argument("--connections", type=int, default=4, help="connections each (4)")
    parser.add_argument("--window", type=int, default=8, help="calls in flight each (8)")
    parser.add_argument("--ramp", type=float, default=2.0, help="flood before timing (2)")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the flood (0)")
    parser.add_argument("--seed", type=int, default=None, help="the flood's seed (random)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_requirements()
    if missing:
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_interrupt)
    remove_stale_rules()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    bench = BenchStack(NETNS_PREFIX)
    failed = True
    try:
        env = base_env(bench.bus.address, bench.pythonpath)
        versions = json.loads(run([sys.executable, "-c", VERSIONS_CODE], env=env).stdout)
        log("starting dbus-daemon, polkitd, the namespace and the helper")
        bench.start()
        log(f"making {args.devices} TAP devices")
        listed_after = fill_namespace(bench, args.devices)
        assert bench.polkit.proc is not None
        pids = {
            "helper": [bench.helper.pid],
            "dbus-daemon": [bench.bus.pid],
            "polkitd": [bench.polkit.proc.pid],
        }
        log(f"idle: root's calls for {args.seconds:g} s")
        idle = timed(bench, args, "idle", pids)
        log(f"flood: {args.processes} x {args.connections} connections x {args.window} calls")
        flood = flooded(bench, args, seed, pids)
        died = flood.helper_died = bench.helper.exited_unexpectedly()
        if died is not None:
            log(f"the helper DIED during the flood (status {died}); the start of its stderr:")
            print(bench.helper.stderr_text()[:3000], file=sys.stderr)
        failed = False
    except KeyboardInterrupt:
        failed = False
        log("interrupted; cleaning up")
        return 130
    finally:
        bench.close(helper_stderr=failed)
    print(report(args, versions, seed, listed_after, idle, flood))
    return 0


if __name__ == "__main__":
    sys.exit(main())
