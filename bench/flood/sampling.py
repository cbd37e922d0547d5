"""What is sampled once a second: frames, CPU, memory, bus messages, what the window got."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.benchlib import cpu_ticks
from tests.support.buscall import dbus_daemon_call
from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.processes import die_with_parent, terminate
from tests.support.waiting import wait_until

from .frontend import FrontEnd
from .vm import Vm, rx_packets

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


def memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


class BusMonitor:
    """``dbus-monitor --profile`` on the private bus: every message, counted by kind."""

    def __init__(self, address: str) -> None:
        self.proc = subprocess.Popen(
            ["dbus-monitor", "--address", address, "--profile"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        # Ready once it sees a message: make some until it does.
        wait_until(
            lambda: dbus_daemon_call(address, "GetId") and self.total(),
            what="dbus-monitor to see the bus",
        )

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            if line.startswith("#"):
                continue
            words = line.rstrip("\n").split("\t")
            # Signals and calls name their member (8th column); replies do not.
            named = words[0] in ("sig", "mc") and len(words) > 7
            kind = f"{words[0]} {words[7]}" if named else words[0]
            with self._lock:
                self.counts[kind] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def stop(self) -> None:
        terminate(self.proc)


@dataclass
class Sample:
    at: float
    frames: int
    helper_ticks: int
    front_ticks: int
    writer_ticks: int
    thread_ticks: dict[str, int]
    helper_rss: int
    helper_hwm: int
    front_rss: int
    front_hwm: int
    bus: Counter[str]
    window: dict[str, Any]


def sample(
    netns: Netns, helper: HelperProcess, front: FrontEnd, vm: Vm, monitor: BusMonitor
) -> Sample:
    helper_rss, helper_hwm = memory(helper.pid)
    front_rss, front_hwm = memory(front.pid)
    return Sample(
        at=time.monotonic(),
        frames=rx_packets(netns),
        helper_ticks=cpu_ticks(helper.pid),
        front_ticks=cpu_ticks(front.pid),
        writer_ticks=cpu_ticks(vm.proc.pid),
        thread_ticks={name: cpu_ticks(front.pid, tid) for name, tid in front.threads.items()},
        helper_rss=helper_rss,
        helper_hwm=helper_hwm,
        front_rss=front_rss,
        front_hwm=front_hwm,
        bus=monitor.snapshot(),
        window=dict(front.stats),
    )
