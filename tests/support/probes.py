"""Root's measurements of the helper: timed calls, its fds and memory, CPU time.

For test_hostile.py and bench/hostile.py: root calls the helper on a
connection of its own at a steady pace (:class:`LatencyProbe`) and samples
the helper's open fds and VmRSS (:class:`HelperWatch`), each in a thread of
its own, while the test or benchmark waits on other things.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from .errors import StackError
from .helper import HelperProcess
from .names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH

# --------------------------------------------------------------------------
# Root's timed calls


@dataclass
class Latencies:
    """The round trips of one method, answered or not."""

    member: str
    seconds: list[float] = field(default_factory=list)
    #: When each answered call was sent (CLOCK_MONOTONIC).
    sent_at: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def slowest(self, count: int) -> list[tuple[float, float]]:
        """The ``count`` slowest calls: (seconds, when sent)."""
        return sorted(zip(self.seconds, self.sent_at, strict=True), reverse=True)[:count]

    def percentile(self, q: float) -> float:
        return percentile(self.seconds, q)

    def summary(self) -> str:
        if not self.seconds:
            return f"{self.member}: no answer ({dict(self.failures)})"
        ms = [1000 * s for s in (self.percentile(0.5), self.percentile(0.99), max(self.seconds))]
        failed = f", {sum(self.failures.values())} failed {dict(self.failures)}"
        return (
            f"{self.member}: {len(self.seconds)} answered, p50 {ms[0]:.1f} ms, "
            f"p99 {ms[1]:.1f} ms, max {ms[2]:.1f} ms" + (failed if self.failures else "")
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..1) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class LatencyProbe:
    """Root calls the helper, one call every ``interval`` (members in turn), on a
    connection of its own, and times each from send to reply.

    Runs in a thread with its own event loop, so the caller can block on
    other things meanwhile.  A call not answered within ``timeout`` is a
    failure, not a sample.
    """

    def __init__(
        self,
        address: str,
        members: Sequence[str] = ("ListDevices",),
        *,
        interval: float = 0.05,
        timeout: float = 1.0,
    ) -> None:
        self.address = address
        self.members = list(members)
        self.interval = interval
        self.timeout = timeout
        self.results = {m: Latencies(m) for m in self.members}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        """Connect, make one untimed call of each member, then start timing."""
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise StackError("the latency probe did not start")

    def stop(self) -> dict[str, Latencies]:
        self._stop.set()
        self._thread.join(self.timeout + 10)
        if self._error is not None:
            raise self._error
        return self.results

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        bus = MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
        await bus.connect()
        try:
            for member in self.members:
                await self._call(bus, member)
            self._ready.set()
            next_call = time.monotonic()
            while not self._stop.is_set():
                for member in self.members:
                    sent_at = time.monotonic()
                    t0 = time.perf_counter()
                    outcome = await self._call(bus, member)
                    elapsed = time.perf_counter() - t0
                    if outcome is None:
                        self.results[member].seconds.append(elapsed)
                        self.results[member].sent_at.append(sent_at)
                    else:
                        self.results[member].failures[outcome] += 1
                next_call = max(next_call + self.interval, time.monotonic())
                await asyncio.sleep(next_call - time.monotonic())
        finally:
            bus.disconnect()

    async def _call(self, bus: MessageBus, member: str) -> str | None:
        """One call; None if it was answered, else what went wrong."""
        msg = Message(
            destination=HELPER_BUS_NAME,
            path=HELPER_OBJECT_PATH,
            interface=HELPER_INTERFACE,
            member=member,
        )
        try:
            reply = await asyncio.wait_for(bus.call(msg), self.timeout)
        except TimeoutError:
            return f"no answer in {self.timeout:g} s"
        assert reply is not None
        for fd in reply.unix_fds:
            os.close(fd)
        if reply.message_type == MessageType.ERROR:
            return str(reply.error_name)
        return None


# --------------------------------------------------------------------------
# The helper's descriptors and memory


@dataclass(frozen=True)
class Sample:
    """The helper at one moment: seconds since the watch began, open fds, VmRSS in KiB."""

    at: float
    fds: int
    rss_kib: int


def vm_rss_kib(pid: int) -> int:
    """A process's resident memory (VmRSS of /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise StackError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text("ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HelperWatch:
    """Samples the helper's fd count and VmRSS every ``interval`` in a thread,
    until stopped or until the helper is gone (:attr:`gone_at`)."""

    def __init__(self, helper: HelperProcess, *, interval: float = 0.1) -> None:
        self.helper = helper
        self.pid = helper.pid
        self.interval = interval
        self.samples: list[Sample] = []
        self.gone_at: float | None = None
        self.started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> Sample | None:
        try:
            fds = self.helper.fd_count()
            rss = vm_rss_kib(self.pid)
        except (OSError, StackError):
            return None
        return Sample(time.monotonic() - self.started, fds, rss)

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(10)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample() if self.helper.running else None
            if sample is None:
                self.gone_at = time.monotonic() - self.started
                return
            self.samples.append(sample)
            self._stop.wait(self.interval)
