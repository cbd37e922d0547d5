"""Root's side of the hostile-client runs: nobody's processes, a timed root caller, the
helper's descriptors and memory.

Shared by test_hostile.py (the soak) and bench/hostile.py (the free methods
flooded).  nobody's processes run ``hostile_client.py`` (its docstring has
the conversation over their pipes); this module starts them, hands them the
contract, and collects what they report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from tungui_helper.contract import SPEC_SIGNATURES

from . import stack

INTERFACE_XML = stack.REPO_ROOT / "resources" / "dbus" / "io.github.tungui.Helper1.xml"
#: The methods anyone may call (the interface XML says "Free." of each).
FREE_METHODS = (
    "ListDevices",
    "ListDevicesByFileDescriptor",
    "Subscribe",
    "WatchStatistics",
    "UnwatchStatistics",
    "GetPermissions",
)
#: StartCapture's options, as the interface XML documents them.
CAPTURE_OPTIONS = {"snaplen": "u", "max_rate": "u"}
#: The client runs from the tests' directory, imported as root before the drop.
CLIENT_MODULE = "integration.hostile_client"
CLIENT_CODE = "from integration.hostile_client import main\nmain()\n"
CLIENT_PATH = str(stack.REPO_ROOT / "tests")


def contract(targets: Sequence[str]) -> dict[str, Any]:
    """The contract as hostile_client.py takes it: the interface XML's methods and keys."""
    root = ElementTree.parse(INTERFACE_XML).getroot()  # our own, trusted file
    members = {
        m.attrib["name"]: "".join(
            a.attrib["type"] for a in m.iter("arg") if a.attrib.get("direction", "in") == "in"
        )
        for m in root.iter("method")
    }
    missing = [m for m in FREE_METHODS if m not in members]
    if missing:
        raise stack.StackError(f"free methods missing from the interface XML: {missing}")
    dict_keys = {
        member: (CAPTURE_OPTIONS if member == "StartCapture" else dict(SPEC_SIGNATURES))
        for member, signature in members.items()
        if "a{sv}" in signature
    }
    return {
        "bus_name": stack.HELPER_BUS_NAME,
        "path": stack.HELPER_OBJECT_PATH,
        "interface": stack.HELPER_INTERFACE,
        "members": members,
        "free": list(FREE_METHODS),
        "dict_keys": dict_keys,
        "targets": list(targets),
    }


# --------------------------------------------------------------------------
# nobody's processes


class HostileProcess:
    """One hostile_client.py as nobody; its stderr goes to ``log``."""

    def __init__(self, bus_address: str, log: Path, settings: dict[str, Any], nice: int) -> None:
        self.log = log
        self.settings = settings
        argv = stack.nobody_python_argv(
            CLIENT_CODE, user=stack.User.named("nobody"), preimport=[CLIENT_MODULE]
        )
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                argv,
                env=stack.nobody_python_env(bus_address, CLIENT_PATH, None),
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                preexec_fn=lambda: os.nice(nice),
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.tell(json.dumps(settings))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # end of output

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def expect(self, timeout: float) -> str:
        """The next line the process prints; raises with its stderr if none comes."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            stack.terminate(self.proc)
            raise stack.StackError(
                f"hostile client {self.settings['process']} printed nothing "
                f"(exit {self.proc.poll()}):\n{stack.tail(self.log)}"
            )
        return line

    def kill(self) -> None:
        stack.terminate(self.proc)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class HostileClients:
    """nobody's processes, started together, let go together, collected together.

    Args:
        bus_address: the private bus.
        directory: where their logs go.
        settings: one dict of hostile_client.Settings per process.
        nice: their niceness, so that they do not starve the processes under test.
    """

    def __init__(
        self,
        bus_address: str,
        directory: Path,
        settings: Sequence[dict[str, Any]],
        *,
        nice: int = 0,
    ) -> None:
        self.bus_address = bus_address
        self.directory = directory
        self.settings = list(settings)
        self.nice = nice
        self.processes: list[HostileProcess] = []
        self.started = 0.0

    def start(self, *, timeout: float = 30.0) -> None:
        """Start them and wait until each has its connections open."""
        for s in self.settings:
            log = self.directory / f"hostile-{s['process']}.log"
            self.processes.append(HostileProcess(self.bus_address, log, s, self.nice))
        for p in self.processes:
            line = p.expect(timeout)
            if line != "ready":
                raise stack.StackError(f"hostile client {p.settings['process']} said {line!r}")

    def go(self) -> None:
        self.started = time.monotonic()
        for p in self.processes:
            p.tell("go")

    def stop(self) -> None:
        """Ask them to stop early."""
        for p in self.processes:
            p.tell("stop")

    def results(self, timeout: float) -> list[dict[str, Any]]:
        """What each reported, once all have ended; raises if one did not end well."""
        deadline = time.monotonic() + timeout
        tallies = []
        for p in self.processes:
            line = p.expect(max(0.1, deadline - time.monotonic()))
            status = p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if status != 0:
                raise stack.StackError(
                    f"hostile client {p.settings['process']} exited {status}:\n{stack.tail(p.log)}"
                )
            tallies.append(json.loads(line))
        return tallies

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.processes]

    def kill(self) -> None:
        for p in self.processes:
            p.kill()


def merge(tallies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The tallies of several processes as one: counters added, longest errors kept."""
    total: dict[str, Any] = {"sent": Counter(), "answers": Counter(), "connections": Counter()}
    for t in tallies:
        for key in ("sent", "answers", "connections"):
            total[key].update(t[key])
        for key in ("fds_sent", "tracebacks", "unanswered", "calls_answered", "cpu_seconds"):
            total[key] = total.get(key, 0) + t[key]
        if t["longest_error"] >= total.get("longest_error", 0):
            total["longest_error"] = t["longest_error"]
            total["longest_error_name"] = t["longest_error_name"]
        total["seconds"] = max(total.get("seconds", 0.0), t["seconds"])
        total.setdefault("huge", []).extend(t["huge"])
        total["huge"].sort()
    return total


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
            raise stack.StackError("the latency probe did not start")

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
            destination=stack.HELPER_BUS_NAME,
            path=stack.HELPER_OBJECT_PATH,
            interface=stack.HELPER_INTERFACE,
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
    raise stack.StackError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text("ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HelperWatch:
    """Samples the helper's fd count and VmRSS every ``interval`` in a thread,
    until stopped or until the helper is gone (:attr:`gone_at`)."""

    def __init__(self, helper: stack.HelperProcess, *, interval: float = 0.1) -> None:
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
        except (OSError, stack.StackError):
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
