"""One run: a fresh helper and window, one flood, sampled until the window caught up."""

from __future__ import annotations

import argparse
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.benchlib import cpu_ticks, log
from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.processes import tail
from tests.support.waiting import wait_until

from .frontend import FrontEnd
from .sampling import MB, BusMonitor, Sample, memory, sample
from .vm import DEVICE, Vm


@dataclass
class Run:
    label: str
    rate: int
    samples: list[Sample] = field(default_factory=list)
    written: int = 0
    cut_short: str = ""
    #: Packets still queued in the front end when the flood stopped, the
    #: seconds it took to take them all in (None: not within the limit).
    behind_at_end: int = 0
    caught_up_after: float | None = None
    final_window: dict[str, Any] = field(default_factory=dict)
    final_helper_hwm: int = 0
    final_front_hwm: int = 0


def wait_idle(pid: int, *, timeout: float = 30.0) -> None:
    """Until a process has used at most one clock tick in half a second."""
    deadline = time.monotonic() + timeout
    before = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_ticks(pid)
        if now - before <= 1:
            return
        before = now
    log(f"process {pid} did not settle within {timeout:g} s; measuring anyway")


def backlog(window: dict[str, Any]) -> int:
    """Packets the window's capture thread read that the list has not taken yet."""
    return int(window.get("queued", 0))


def one_run(
    label: str,
    rate: int,
    args: argparse.Namespace,
    netns: Netns,
    helper: HelperProcess,
    vm: Vm,
    monitor: BusMonitor,
    address: str,
    directory: Path,
    pythonpath: str,
) -> Run:
    run = Run(label, rate)
    helper.start()
    front = FrontEnd(address, directory, pythonpath)
    try:
        front.wait_watching()
        log(f"{label}: the window watches {DEVICE}; its threads {front.threads}")
        wait_idle(front.pid)
        log(f"{label}: {rate:,} frames/s for {args.seconds:g} s with the window watching")
        run.samples.append(sample(netns, helper, front, vm, monitor))
        vm.flood(rate, args.seconds)
        next_at = run.samples[0].at + 1.0
        while True:
            try:
                run.written = vm.written.get(timeout=max(0.0, next_at - time.monotonic()))
                break
            except queue.Empty:
                pass
            now = sample(netns, helper, front, vm, monitor)
            run.samples.append(now)
            next_at += 1.0
            if not run.cut_short and now.front_rss > args.max_rss * MB:
                run.cut_short = (
                    f"stopped after {now.at - run.samples[0].at:.0f} s: the front end's RSS "
                    f"passed --max-rss {args.max_rss} MB"
                )
                log(run.cut_short)
                vm.cut_short()
        run.samples.append(sample(netns, helper, front, vm, monitor))
        # After the flood: how far behind the window is, and how long it takes to catch up.
        run.behind_at_end = backlog(run.samples[-1].window)
        limit = max(10.0, args.seconds / 2)
        previous: dict[str, Any] = {}
        seen = front.stats_seen

        def caught_up() -> bool:
            # Two reports in a row with nothing queued and nothing new read.
            nonlocal previous, seen
            if front.stats_seen == seen:
                return False
            seen = front.stats_seen
            now = dict(front.stats)
            done = backlog(now) == 0 and now.get("parsed") == previous.get("parsed")
            previous = now
            return done

        start = time.monotonic()
        try:
            wait_until(caught_up, timeout=limit, interval=0.05, what="the window")
            run.caught_up_after = time.monotonic() - start
        except TimeoutError:
            log(f"{label}: the window is still {backlog(front.stats):,} packets behind")
        run.final_window = dict(front.stats)
        _rss, run.final_helper_hwm = memory(helper.pid)
        _rss, run.final_front_hwm = memory(front.pid)
    finally:
        front.stop()
        helper.stop()
        # Qt's offscreen platform says so for every window shown: not news.
        complaints = "\n".join(
            line
            for line in tail(front.stderr_path, 2000).splitlines()
            if line.strip() and "propagateSizeHints" not in line
        )
        if complaints:
            log(f"{label}: the window's stderr:\n{complaints}")
        front.stderr_path.unlink(missing_ok=True)
    return run
