"""A packet flood with one window watching: CPU, bus traffic and memory of both sides.

    sudo flock /tmp/tungui-stack.lock .venv/bin/python bench/flood.py \
        [--seconds 60] [--rate 500000] [--reference-rate 1000] [--max-rss 4096]

Issue 4 ("Live traffic") asks, under a 500k packets/s flood with one window
watching, for the helper's CPU, the front end's CPU, the D-Bus messages per
second (target: constant, whatever the packet rate) and both processes'
peak memory (target: flat over a 60 s flood).  This script measures exactly
that, twice in one invocation: a reference run at a low rate (1,000
frames/s; 0 for none), then the flood, each with a freshly started helper
and window, so the two columns of the table can be read side by side.

The stack is the integration tests' (tests/integration/stack.py): a private
system bus, the real polkitd, the helper as root in a network namespace
made for the run.  In that namespace a TAP device, ``flood0``, is held by a
small C program that plays a VM: on command it writes Ethernet frames
(UDP, 106 bytes, to a MAC address that is not the host's, so the host's
stack drops them at once) into the TAP at a paced rate.  A TAP written to
rather than a TUN sent through (as bench/capture.py does): on this 2-core
machine a UDP socket through a TUN tops out near 310k packets/s with its
drain, one write() per frame into a TAP reaches 500k with a core to spare.
The rate reached is the device's kernel counter (rx_packets), not the
writer's wish.

The front end is the real window in a process of its own (this script run
with ``--front-end``, Qt's offscreen platform, as root): ``tungui.gui.app.App``
on the private bus, ``flood0`` selected and Watch Packets triggered, so the
packet window comes up through the controller exactly as it does for a
person, while the main window's table, counters and rate graph keep
following the device.  It prints "watching" when the packet window is up,
then, from a thread of its own every half second, what the window got:
packets its capture thread parsed, those that reached the list, those
skipped or let go, the helper's dropped and sampled-out counts, what is
still queued between its threads, how many list updates it made and how
late its event loop runs.  After the flood the script waits (up to half
the run) for the window to catch up.

Sampled once a second from /proc: CPU (utime + stime, as % of one core and
per frame; the front end's split by thread too) and memory (VmRSS, and
VmHWM for the peak) of both processes; CPU of the writer too (the kernel
delivers each frame to the capture ring in its context).  Every message on
the bus is seen by ``dbus-monitor --profile`` (a monitor connection:
BecomeMonitor, allowed to root) and counted.  The table goes to stdout,
progress to stderr; all it made (namespace, processes, the polkit policy
file, temporary files) is removed when it ends, on Ctrl+C or SIGTERM too.
Run it alone: the tests and the other benchmarks install the same polkit
policy (this machine's convention is ``flock /tmp/tungui-stack.lock``
around each of them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# The integration tests' stack (``integration.stack``) is the real stack.
sys.path.insert(0, str(REPO_ROOT / "tests"))

from benchlib import (  # noqa: E402
    BenchStack,
    compile_c,
    cpu_ticks,
    log,
    raise_interrupt,
)
from integration import stack  # noqa: E402

#: Namespace and temporary directory of a run: tungui-bench-flood-<pid>.
NETNS_PREFIX = "tungui-bench-flood-"
DEVICE = "flood0"
FRAME_BYTES = 106
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024
#: How often the window's event loop is asked to tick, to see how late it runs.
HEARTBEAT_S = 0.05

# Holds the TAP as a VM would, and floods it on command: each line
# "RATE SECONDS" on stdin writes frames at RATE a second for SECONDS (or
# until SIGUSR1), then prints how many it wrote.  Pacing: as many frames as
# are due, at most 64 between two looks at the clock; sleep when ahead.
VM_C = r"""
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_usr1(int sig) { (void)sig; stop = 1; }
static double since(const struct timespec *start) {
    struct timespec now; clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}
int main(int argc, char **argv) {
    struct ifreq ifr; struct sigaction sa;
    int fd = open("/dev/net/tun", O_RDWR);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("tap"); return 1; }
    memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1; sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    /* 02:..:02 <- 02:..:01, IPv4 UDP 192.0.2.2:12345 -> 192.0.2.1:9, 64 bytes of payload */
    unsigned char f[106] = {
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
        0x45, 0, 0, 92, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        0x30, 0x39, 0, 9, 0, 72, 0, 0 };
    memcpy(f + 42, "tungui flood", 12);
    unsigned sum = 0;
    for (int i = 14; i < 34; i += 2) sum += f[i] << 8 | f[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    f[24] = ~sum >> 8; f[25] = ~sum & 0xff;
    printf("attached\n"); fflush(stdout);
    double rate, seconds;
    while (scanf("%lf %lf", &rate, &seconds) == 2) {
        struct timespec start; long sent = 0; double t;
        stop = 0;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!stop && (t = since(&start)) < seconds) {
            if (rate <= 0) { usleep(10000); continue; }  /* no flood: just hold the TAP */
            long due = (long)(rate * t) + 1 - sent;
            if (due <= 0) {
                double wait = (sent + 1) / rate - t;
                struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
                nanosleep(&ts, NULL);
                continue;
            }
            for (long i = 0; i < due && i < 64; i++)
                if (write(fd, f, sizeof f) > 0) sent++;
        }
        printf("%ld\n", sent); fflush(stdout);
    }
    return 0;
}
"""


# --------------------------------------------------------------------------
# The front end: this file run with --front-end, in a process of its own


def front_end(address: str, device: str, settings_path: str) -> int:
    """The window watching ``device``, as a person would open it; reports on stdout.

    What the window got is read from the outside where it can be: the
    packets its capture thread parsed (``parse_message`` in
    ``tungui.gui.capture.reader``, wrapped here to count them and to note the
    helper's dropped and sampled-out figures that each packet carries), the
    packets that went into the list (its rows and those let go), and what
    the packet window itself counts (``skipped``, ``not_shown``).  The rest
    is queued between the capture thread and the GUI thread.
    """
    from PySide6.QtCore import QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    import tungui.gui.capture.reader as capture_reader
    import tungui.gui.capture.window as packetview
    from tungui.gui.actions import Act
    from tungui.gui.app import App
    from tungui.packets.stream import Packet

    def say(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    # The capture thread calls the name parse_message of its reader's module:
    # wrap what that name holds, before any packet window exists.
    parsed = dropped = sampled = 0
    parse: Callable[[bytes], list[Packet]] = vars(capture_reader)["parse_message"]

    def counted(message: bytes) -> list[Packet]:  # on the capture thread
        nonlocal parsed, dropped, sampled
        packets = parse(message)
        parsed += len(packets)
        if packets:
            # The helper's counts so far, as of this message (the list may lag behind).
            dropped = packets[-1].dropped
            sampled = getattr(packets[-1], "sampled", 0)
        return packets

    vars(capture_reader)["parse_message"] = counted
    tungui = App(address, QSettings(settings_path, QSettings.Format.IniFormat))

    class Probe(QObject):
        """Triggers Watch Packets once the device is listed; reports what arrives."""

        def __init__(self) -> None:
            super().__init__()
            self.packets: packetview.PacketWindow | None = None
            self.asked = False
            self.last_beat = time.monotonic()
            self.late = 0.0
            #: Rows added to the packet list, one batch at a time.
            self.updates = 0

        def maybe_watch(self, *_args: object) -> None:
            window = tungui.window
            if self.asked or not tungui.helper.available or window.graph is None:
                return
            if tungui.model.row_of(device) is None:
                return
            window.select(device)
            if window.action(Act.WATCH).isEnabled():
                self.asked = True
                # The controller's path: StartCapture, PacketWindow.
                window.action(Act.WATCH).trigger()

        def finished(self, _request: int, _result: object) -> None:
            # Connected after the controller's slot: the packet window exists now.
            found = tungui.window.findChildren(packetview.PacketWindow)
            if self.packets is not None or not found:
                return
            self.packets = found[0]
            self.packets.model.rowsInserted.connect(self.updated)
            threads = {t.name: t.native_id for t in threading.enumerate()}
            say(
                event="watching",
                gui=threading.get_native_id(),
                reader=threads.get("tungui-capture"),
                bus=threads.get("tungui-bus"),
            )
            threading.Thread(target=self.report, name="flood-report", daemon=True).start()

        def failed(self, _request: int, error: str, message: str) -> None:
            say(event="failed", error=error, message=message)
            app.exit(1)

        def beat(self) -> None:
            now = time.monotonic()
            self.late = max(self.late, now - self.last_beat - HEARTBEAT_S)
            self.last_beat = now

        def updated(self, *_args: object) -> None:
            self.updates += 1

        def report(self) -> None:  # on a thread of its own, so a busy GUI thread cannot delay it
            window = self.packets
            assert window is not None
            while True:
                time.sleep(0.5)
                late = max(self.late, time.monotonic() - self.last_beat - HEARTBEAT_S)
                self.late = 0.0
                rows = window.model.rowCount()
                listed = rows + window.model.pushed_out
                skipped = int(getattr(window, "skipped", 0))
                say(
                    event="stats",
                    parsed=parsed,
                    listed=listed,
                    rows=rows,
                    pushed_out=window.model.pushed_out,
                    skipped=skipped,
                    queued=parsed - listed - skipped - window.not_shown,
                    dropped=dropped,
                    sampled=sampled,
                    late_ms=max(late, 0.0) * 1000,
                    updates=self.updates,
                )

    probe = Probe()
    tungui.helper.availabilityChanged.connect(probe.maybe_watch)
    tungui.model.modelReset.connect(probe.maybe_watch)
    tungui.model.rowsInserted.connect(probe.maybe_watch)
    tungui.window.graphReady.connect(probe.maybe_watch)
    tungui.helper.finished.connect(probe.finished)
    tungui.helper.failed.connect(probe.failed)
    heartbeat = QTimer()
    heartbeat.timeout.connect(probe.beat)
    heartbeat.start(int(HEARTBEAT_S * 1000))
    tungui.start()
    return app.exec()


class FrontEnd:
    """The window's process, seen from here: its announcements and latest counts."""

    def __init__(self, address: str, directory: Path, pythonpath: str) -> None:
        env = stack.base_env(address, pythonpath)
        runtime = directory / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env.update(QT_QPA_PLATFORM="offscreen", HOME=str(directory), XDG_RUNTIME_DIR=str(runtime))
        self.stderr_path = directory / "front-end-stderr.log"
        argv = [sys.executable, __file__, "--front-end", address, DEVICE, str(directory / "ini")]
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                preexec_fn=stack.die_with_parent,
            )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stats: dict[str, Any] = {}
        self.stats_seen = 0
        self.threads: dict[str, int] = {}
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            message = json.loads(line)
            if message.get("event") == "stats":
                self.stats = message
                self.stats_seen += 1
            else:
                self.events.put(message)
        self.events.put({"event": "exited"})

    def wait_watching(self, timeout: float = 60.0) -> None:
        """Until the packet window is up; raise with the process's stderr if it is not."""
        try:
            message = self.events.get(timeout=timeout)
        except queue.Empty:
            message = {"event": f"nothing within {timeout:g} s"}
        if message.get("event") != "watching":
            raise stack.StackError(
                f"the window did not start watching ({message}):\n{stack.tail(self.stderr_path)}"
            )
        self.threads = {k: int(message[k]) for k in ("gui", "reader", "bus") if message.get(k)}

    def stop(self) -> None:
        stack.terminate(self.proc)


# --------------------------------------------------------------------------
# What is sampled


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
            preexec_fn=stack.die_with_parent,
        )
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        # Ready once it sees a message: make some until it does.
        stack.wait_until(
            lambda: stack.dbus_daemon_call(address, "GetId") and self.total(),
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
        stack.terminate(self.proc)


class Vm:
    """The C program that holds ``flood0`` and writes frames into it."""

    def __init__(self, netns: stack.Netns, binary: str) -> None:
        self.proc = subprocess.Popen(
            netns.exec_argv(binary, DEVICE),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=stack.die_with_parent,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "attached":
            raise stack.StackError("the flood program could not attach to the TAP")
        self.written: queue.Queue[int] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.written.put(int(line))

    def flood(self, rate: int, seconds: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{rate} {seconds}\n")
        self.proc.stdin.flush()

    def cut_short(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        stack.terminate(self.proc)


def rx_packets(netns: stack.Netns) -> int:
    (link,) = netns.ip_json("-s", "link", "show", "dev", DEVICE)
    return int(link["stats64"]["rx"]["packets"])


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
    netns: stack.Netns, helper: stack.HelperProcess, front: FrontEnd, vm: Vm, monitor: BusMonitor
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


# --------------------------------------------------------------------------
# One run: a fresh helper and window, one flood


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
    netns: stack.Netns,
    helper: stack.HelperProcess,
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
            stack.wait_until(caught_up, timeout=limit, interval=0.05, what="the window")
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
            for line in stack.tail(front.stderr_path, 2000).splitlines()
            if line.strip() and "propagateSizeHints" not in line
        )
        if complaints:
            log(f"{label}: the window's stderr:\n{complaints}")
        front.stderr_path.unlink(missing_ok=True)
    return run


# --------------------------------------------------------------------------
# The table


def core_percent(ticks: int, seconds: float) -> float:
    return ticks / CLOCK_TICK / seconds * 100


def mb(value: float) -> str:
    return f"{value / MB:,.1f}"


@dataclass
class Figures:
    seconds: float
    frames: int
    rate: float
    slowest: float
    helper_cpu: float
    front_cpu: float
    threads: dict[str, float]
    helper_us: float
    writer_cpu: float
    front_us: float
    bus_rate: float
    statistics_rate: float
    bus_kinds: list[tuple[str, float]]
    helper_rss: list[int]
    front_rss: list[int]
    list_updates: float
    late_median: float
    late_max: float


def figures(run: Run) -> Figures:
    first, last = run.samples[0], run.samples[-1]
    seconds = last.at - first.at
    frames = last.frames - first.frames
    per_second = [
        (b.frames - a.frames) / (b.at - a.at)
        for a, b in zip(run.samples[1:-1], run.samples[2:-1], strict=False)
    ]
    helper_ticks = last.helper_ticks - first.helper_ticks
    front_ticks = last.front_ticks - first.front_ticks
    bus = last.bus - first.bus
    late = [float(s.window.get("late_ms", 0.0)) for s in run.samples[1:]]
    return Figures(
        seconds=seconds,
        frames=frames,
        rate=frames / seconds,
        slowest=min(per_second) if per_second else frames / seconds,
        helper_cpu=core_percent(helper_ticks, seconds),
        front_cpu=core_percent(front_ticks, seconds),
        threads={
            name: core_percent(last.thread_ticks[name] - first.thread_ticks.get(name, 0), seconds)
            for name in last.thread_ticks
        },
        helper_us=helper_ticks / CLOCK_TICK / max(frames, 1) * 1e6,
        writer_cpu=core_percent(last.writer_ticks - first.writer_ticks, seconds),
        front_us=front_ticks / CLOCK_TICK / max(frames, 1) * 1e6,
        bus_rate=sum(bus.values()) / seconds,
        statistics_rate=bus["sig Statistics"] / seconds,
        bus_kinds=[(kind, n / seconds) for kind, n in bus.most_common(4)],
        helper_rss=[s.helper_rss for s in run.samples],
        front_rss=[s.front_rss for s in run.samples],
        list_updates=(last.window.get("updates", 0) - first.window.get("updates", 0)) / seconds,
        late_median=statistics.median(late) if late else 0.0,
        late_max=max(late) if late else 0.0,
    )


def every_ten_seconds(run: Run) -> list[Sample]:
    """The first sample, one each 10 s after it, and the last."""
    start = run.samples[0].at
    kept: dict[int, Sample] = {}
    for s in run.samples:
        if round(s.at - start) % 10 == 0:
            kept.setdefault(round(s.at - start), s)
    kept[round(run.samples[-1].at - start)] = run.samples[-1]
    return list(kept.values())


def warm_growth(rss: list[int]) -> int:
    """Growth from a sixth of the way in (10 s of a 60 s flood) to the end."""
    return rss[-1] - rss[len(rss) // 6]


def report(runs: Sequence[Run], args: argparse.Namespace) -> str:
    from PySide6 import __version__ as pyside

    ref, flood = runs
    a, b = figures(ref), figures(flood)
    rows: list[tuple[str, str, str]] = []

    def row(name: str, fmt: Callable[[Figures, Run], str]) -> None:
        rows.append((name, fmt(a, ref), fmt(b, flood)))

    row("rate asked (frames/s)", lambda f, r: f"{r.rate:,}")
    row("rate reached, kernel rx (frames/s)", lambda f, r: f"{f.rate:,.0f}")
    row("  slowest second", lambda f, r: f"{f.slowest:,.0f}")
    row("frames through flood0", lambda f, r: f"{f.frames:,} in {f.seconds:.1f} s")
    row("helper CPU (% of one core)", lambda f, r: f"{f.helper_cpu:.1f}")
    row("  per frame (µs)", lambda f, r: f"{f.helper_us:.2f}" if f.frames else "no frames")
    row("front end CPU (% of one core)", lambda f, r: f"{f.front_cpu:.1f}")

    def thread(name: str) -> Callable[[Figures, Run], str]:
        return lambda f, r: f"{f.threads.get(name, 0.0):.1f}"

    for name, label in (("gui", "GUI"), ("reader", "capture reader"), ("bus", "bus")):
        row(f"  {label} thread", thread(name))
    row("  per frame (µs)", lambda f, r: f"{f.front_us:.2f}" if f.frames else "no frames")
    row("flood writer CPU, kernel's share in", lambda f, r: f"{f.writer_cpu:.1f}")
    row("D-Bus messages/s, all", lambda f, r: f"{f.bus_rate:.2f}")
    row("  of which Statistics signals", lambda f, r: f"{f.statistics_rate:.2f}")
    row(
        "helper RSS start / end (MB)",
        lambda f, r: f"{mb(f.helper_rss[0])} / {mb(f.helper_rss[-1])}",
    )
    row("helper peak, VmHWM (MB)", lambda f, r: mb(r.final_helper_hwm))
    row(
        "helper growth: whole / after 1/6 (MB)",
        lambda f, r: (
            f"{(f.helper_rss[-1] - f.helper_rss[0]) / MB:+.1f} / "
            f"{warm_growth(f.helper_rss) / MB:+.1f}"
        ),
    )
    row(
        "front end RSS start / end (MB)",
        lambda f, r: f"{mb(f.front_rss[0])} / {mb(f.front_rss[-1])}",
    )
    row("front end peak, VmHWM (MB)", lambda f, r: mb(r.final_front_hwm))
    row(
        "front end growth: whole / after 1/6 (MB)",
        lambda f, r: (
            f"{(f.front_rss[-1] - f.front_rss[0]) / MB:+.1f} / {warm_growth(f.front_rss) / MB:+.1f}"
        ),
    )

    def window(key: str) -> Callable[[Figures, Run], str]:
        return lambda f, r: f"{int(r.final_window.get(key, 0)):,}"

    row("window: packets its capture thread read", window("parsed"))
    row("  put in the list", window("listed"))
    row("  in the list at the end", window("rows"))
    row("  let go to keep the list bounded", window("pushed_out"))
    row("  skipped, faster than the list", window("skipped"))
    row("  dropped before reaching tungui", window("dropped"))
    row("  sampled out by the helper (about)", window("sampled"))
    row(
        "  queued in the front end: flood end / last",
        lambda f, r: f"{r.behind_at_end:,} / {backlog(r.final_window):,}",
    )
    row(
        "  caught up after the flood in",
        lambda f, r: (
            "not within limit" if r.caught_up_after is None else f"{r.caught_up_after:.1f} s"
        ),
    )
    row("list updates (row insertions) per second", lambda f, r: f"{f.list_updates:.1f}")
    row(
        "GUI event loop late, median / max (ms)",
        lambda f, r: f"{f.late_median:.0f} / {f.late_max:,.0f}",
    )

    width = max(len(r[0]) for r in rows) + 2
    head_a, head_b = f"reference ({ref.rate:,}/s)", f"flood ({flood.rate:,}/s)"
    lines = [
        f"Python {platform.python_version()}, PySide6 {pyside}, kernel {platform.release()}, "
        f"{os.cpu_count()} CPUs; Qt offscreen; front end as root",
        f"TAP {DEVICE} held by a C program writing {FRAME_BYTES}-byte UDP frames into it; "
        f"one window watching (Watch Packets + main window with its graph); "
        f"{args.seconds:g} s each",
        "",
        f"{'':<{width}}{head_a:>24}{head_b:>26}",
    ]
    lines += [f"{name:<{width}}{x:>24}{y:>26}" for name, x, y in rows]
    for run in runs:
        if run.cut_short:
            lines.append(f"{run.label}: {run.cut_short}")

    lines += ["", "RSS every 10 s (MB): helper, front end"]
    for run in runs:
        start = run.samples[0].at
        points = "  ".join(
            f"{s.at - start:>3.0f}s {mb(s.helper_rss)}, {mb(s.front_rss)}"
            for s in every_ten_seconds(run)
        )
        lines.append(f"  {run.label:<9} {points}")
    lines += ["", "Busiest bus messages (per second):"]
    for run, f in ((ref, a), (flood, b)):
        kinds = ", ".join(f"{kind} {n:.2f}" for kind, n in f.bus_kinds)
        lines.append(f"  {run.label:<9} {kinds}")

    same_bus = abs(b.bus_rate - a.bus_rate) <= max(0.5, 0.1 * a.bus_rate)
    flat = {
        "helper": warm_growth(b.helper_rss) <= 5 * MB,
        "front end": warm_growth(b.front_rss) <= 5 * MB,
    }
    lines += [
        "",
        f"bus messages/s constant whatever the rate: {a.bus_rate:.2f} vs {b.bus_rate:.2f} "
        f"({'met' if same_bus else 'MISSED'}; within 10% or 0.5/s)",
        "memory flat over the flood (at most 5 MB of growth after the first sixth): "
        + ", ".join(f"{who} {'met' if ok else 'MISSED'}" for who, ok in flat.items()),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Setting up, tearing down


def bench_pythonpath(shim: Path) -> str:
    """PYTHONPATH under which the helper and the window are this tree's code.

    Unlike ``stack.python_path``, always through a shim: an editable or
    installed ``tungui_helper`` elsewhere must not be what is measured.
    """
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "tungui_helper").symlink_to(REPO_ROOT / "helper", target_is_directory=True)
    return os.pathsep.join([str(shim), str(REPO_ROOT)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run (60)")
    parser.add_argument("--rate", type=int, default=500_000, help="frames/s of the flood")
    parser.add_argument(
        "--reference-rate", type=int, default=1000, help="frames/s of the reference run (1000)"
    )
    parser.add_argument(
        "--max-rss",
        type=int,
        default=4096,
        help="MB of front-end RSS past which the flood is stopped early (4096)",
    )
    parser.add_argument("--front-end", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.front_end:
        return front_end(*args.front_end)
    missing = stack.missing_requirements()
    missing += [
        f"{tool} is not installed" for tool in ("cc", "dbus-monitor") if not shutil.which(tool)
    ]
    if missing:
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_interrupt)
    stack.remove_stale_rules()
    bench = BenchStack(NETNS_PREFIX, pythonpath=lambda d: bench_pythonpath(d / "pythonpath"))
    bus, netns, helper, directory = bench.bus, bench.netns, bench.helper, bench.directory
    pythonpath = bench.pythonpath
    started: list[Vm | BusMonitor] = []
    runs: list[Run] = []
    failed = True
    try:
        vm_binary = compile_c(directory, "vm", VM_C)
        log("starting dbus-daemon, polkitd, the namespace and the TAP")
        bench.start(helper=False)
        netns.ip("tuntap", "add", "mode", "tap", "name", DEVICE)
        netns.ip("link", "set", DEVICE, "address", "fe:00:00:00:00:01")
        netns.ip("address", "add", "192.0.2.1/24", "dev", DEVICE)
        netns.ip("link", "set", DEVICE, "up")
        vm = Vm(netns, vm_binary)
        started.append(vm)
        stack.wait_until(
            lambda: netns.ip_json("link", "show", "dev", DEVICE)[0]["operstate"] != "DOWN",
            what="carrier on the TAP",
        )
        monitor = BusMonitor(bus.address)
        started.append(monitor)
        for label, rate in (("reference", args.reference_rate), ("flood", args.rate)):
            runs.append(
                one_run(
                    label,
                    rate,
                    args,
                    netns,
                    helper,
                    vm,
                    monitor,
                    bus.address,
                    directory,
                    pythonpath,
                )
            )
        failed = False
    except KeyboardInterrupt:
        failed = False
        log("interrupted; cleaning up")
        return 130
    finally:
        bench.close(*((type(p).__name__, p.stop) for p in reversed(started)), helper_stderr=failed)
    print(report(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
