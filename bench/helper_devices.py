#!/usr/bin/env python3
"""How fast the helper creates, deletes and lists devices, beside ``ip``.

Brings up the real stack of the integration tests (a private system bus,
the real polkitd, the helper as root in a network namespace of its own; see
tests/support/) and measures, in one invocation:

1. ``--count`` TAP devices created, then deleted, one D-Bus call each
   (CreateDevice ``{"mode": "tap", "name": "bt%d", "persist": true}``, then
   DeleteDevice by name) on one client connection, as root (polkit
   authorizes uid 0 before it reads any rule, so the helper does not ask
   it); then the same as ``nobody``, whom a polkit rule grants
   io.github.tungui.manage (every call authorized by polkit, a "yes" reused
   for a second for the same request: the creates share one, each delete
   names another device), and that again with ``--reuse-authorization 0``;
   beside ``ip tuntap add`` / ``ip tuntap del``, one process per device, in
   a second namespace.
2. The device list with ``--listed`` TAP devices present (made by one
   ``ip -batch``): median and p90 of ``--repeat`` round trips, client side,
   unmarshalled into Python values, of ListDevices and of
   ListDevicesByFileDescriptor (the list as JSON in a memfd, which the
   client library, and so ``tunguictl`` and the window, use); beside the
   wall time of the process ``ip -d -s -j link show`` in the same namespace.
3. The helper's start, with those devices present, until its first answer.

Needs root.  Touches nothing outside the namespaces it makes, except
polkit's actions directory (the policy file is installed for the run and
removed after, as the integration tests do).

    sudo .venv/bin/python -m bench.helper_devices [--count 200] [--listed 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbus_fast import Message, MessageType

from bench.benchlib import BenchStack, cpu_ticks, log, raise_interrupt
from tests.support.environment import base_env
from tests.support.errors import StackError
from tests.support.helper import HelperProcess
from tests.support.names import DBUS_NAME, DBUS_PATH, HELPER_BUS_NAME, REPO_ROOT
from tests.support.netns import Netns
from tests.support.nobody import User
from tests.support.polkit import PolkitDaemon, remove_stale_rules
from tests.support.processes import missing_requirements, run

if TYPE_CHECKING:
    from tungui.client import HelperClient

#: Namespaces of a run are tungui-bench-<pid> (the helper's) and
#: tungui-bench-<pid>-ip (the ip loop's); a dead pid means a killed run.
NETNS_PREFIX = "tungui-bench-"

TAP_SPEC: dict[str, Any] = {"mode": "tap", "name": "bt%d", "persist": True}
#: A user's devices: a name within what io.github.tungui.manage alone may give.
USER_TAP_SPEC: dict[str, Any] = {"mode": "tap", "name": "tgb%d", "persist": True}
#: The user the second loop runs as, granted io.github.tungui.manage by a rule.
USER = "nobody"

VERSIONS_CODE = """\
import importlib.metadata as m, json, platform, sys
import dbus_fast.message
print(json.dumps({
    "python": platform.python_version(),
    "executable": sys.executable,
    "dbus-fast": m.version("dbus-fast"),
    "compiled": dbus_fast.message.__file__.endswith(".so"),
    "pyroute2": m.version("pyroute2"),
}))
"""


# --------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    versions_helper: dict[str, Any] = field(default_factory=dict)
    versions_client: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    helper_create: float = 0.0
    helper_delete: float = 0.0
    #: The same loop as a user that polkit grants io.github.tungui.manage.
    user_create: float = 0.0
    user_delete: float = 0.0
    #: The user's loop with ``--reuse-authorization 0``: polkit asked every call.
    asking_create: float = 0.0
    asking_delete: float = 0.0
    ip_add: float = 0.0
    ip_del: float = 0.0
    listed: int = 0
    batch_seconds: float = 0.0
    seen_after: float = 0.0
    list_times: list[float] = field(default_factory=list)
    file_times: list[float] = field(default_factory=list)
    ip_show_times: list[float] = field(default_factory=list)
    reply_devices: int = 0
    starts: list[float] = field(default_factory=list)
    owned: list[float] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def verdict(ratio: float) -> str:
    return "met" if ratio <= 1.0 else "MISSED"


def versions_line(label: str, v: dict[str, Any]) -> str:
    build = "compiled" if v["compiled"] else "pure Python"
    return (
        f"{label}: Python {v['python']} ({v['executable']}), "
        f"dbus-fast {v['dbus-fast']} ({build}), pyroute2 {v['pyroute2']}"
    )


def report(f: Figures) -> str:
    lines = [versions_line("helper", f.versions_helper)]
    if f.versions_client != f.versions_helper:
        lines.append(versions_line("client", f.versions_client))
    ip_version = run(["ip", "-V"], check=False).stdout.strip()
    lines.append(f"kernel {platform.release()}, {ip_version}, {os.cpu_count()} CPUs")
    lines.append("")

    total_helper = f.helper_create + f.helper_delete
    total_ip = f.ip_add + f.ip_del
    ratio = total_helper / total_ip
    head = f"create+delete {f.count} TAP"
    lines.append(
        f"{head:<27} helper {total_helper:6.2f} s   ip loop {total_ip:6.2f} s   "
        f"ratio {ratio:4.2f}  (target <= 1: {verdict(ratio)})"
    )
    for what, h, i in (
        ("create", f.helper_create, f.ip_add),
        ("delete", f.helper_delete, f.ip_del),
    ):
        lines.append(
            f"  {what + ' only':<25} helper {h:6.2f} s   ip loop {i:6.2f} s   "
            f"ratio {h / i:4.2f}   ({1000 * h / f.count:.1f} vs {1000 * i / f.count:.1f} ms each)"
        )
    lines.append(
        "  (root: polkit authorizes uid 0 before reading any rule, so the helper does not ask it)"
    )
    user = f.user_create + f.user_delete
    ratio = user / total_ip
    lines.append(
        f"{'  as ' + USER + ', polkit asked':<27} helper {user:6.2f} s   "
        f"ip loop {total_ip:6.2f} s   "
        f"ratio {ratio:4.2f}  (target <= 1: {verdict(ratio)}; "
        f"{1000 * f.user_create / f.count:.1f} ms a create, "
        f"{1000 * f.user_delete / f.count:.1f} ms a delete)"
    )
    asking = f.asking_create + f.asking_delete
    lines.append(
        f"  {'asking polkit every call':<25} helper {asking:6.2f} s   ip loop {total_ip:6.2f} s   "
        f"ratio {asking / total_ip:4.2f}   (as {USER}, --reuse-authorization 0: "
        f"{1000 * f.asking_create / f.count:.1f} ms a create)"
    )

    im, i90 = 1000 * median(f.ip_show_times), 1000 * p90(f.ip_show_times)
    for head, times in (
        (f"ListDevices, {f.listed} devices", f.list_times),
        ("  in a file (the client's)", f.file_times),
    ):
        lm, l90 = 1000 * median(times), 1000 * p90(times)
        ratio = lm / im
        lines.append(
            f"{head:<27} helper {lm:6.1f} ms (p90 {l90:.1f})   "
            f"ip -d -s -j {im:6.1f} ms (p90 {i90:.1f})   ratio {ratio:4.2f}  "
            f"(target <= 1: {verdict(ratio)})"
        )
    lines.append(
        f"  ({len(f.list_times)} calls each, in turn; each answer held {f.reply_devices} devices; "
        f"ip -batch made them in {f.batch_seconds:.2f} s, "
        f"the helper listed all {f.seen_after:.2f} s after)"
    )
    runs = " ".join(f"{s:.2f}" for s in f.starts)
    lines.append(
        f"helper start to first answer with {f.listed} devices: {median(f.starts):.2f} s "
        f"(median of {len(f.starts)}: {runs}; name owned after {median(f.owned):.2f} s)"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The stack


class TimedHelper(HelperProcess):
    """The stack's helper, noting when it is spawned.

    ``start`` reads :attr:`argv` right before it spawns the process, so the
    last read is the moment of the spawn.
    """

    spawned_at = 0.0

    @property
    def argv(self) -> list[str]:
        self.spawned_at = time.perf_counter()
        return super().argv


def python_versions(python: str, env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        run([python, "-c", VERSIONS_CODE], env=env, cwd=REPO_ROOT).stdout
    )
    return result


async def wait_idle(pid: int, *, timeout: float = 60.0) -> None:
    """Wait until a process has used no CPU for half a second."""
    deadline = time.perf_counter() + timeout
    before = cpu_ticks(pid)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        now = cpu_ticks(pid)
        if now - before <= 1:
            return
        before = now
    raise TimeoutError(f"process {pid} did not settle within {timeout:g} s")


# --------------------------------------------------------------------------
# The measurements


def ip_loop(netns: Netns, count: int) -> tuple[float, float]:
    """``ip tuntap add`` then ``del``, one process per device; the two wall times."""
    add = [
        ["ip", "-n", netns.name, "tuntap", "add", "mode", "tap", "name", f"rt{i}"]
        for i in range(count)
    ]
    delete = [
        ["ip", "-n", netns.name, "tuntap", "del", "mode", "tap", "name", f"rt{i}"]
        for i in range(count)
    ]
    t0 = time.perf_counter()
    for argv in add:
        run(argv)
    t1 = time.perf_counter()
    made = sum(name.startswith("rt") for name in netns.link_names())
    t2 = time.perf_counter()
    for argv in delete:
        run(argv)
    t3 = time.perf_counter()
    if made != count:
        raise StackError(f"the ip loop made {made} devices, not {count}")
    return t1 - t0, t3 - t2


async def helper_loop(
    client: HelperClient, netns: Netns, count: int, spec: dict[str, Any] = TAP_SPEC
) -> tuple[float, float]:
    """CreateDevice then DeleteDevice, one call per device; the two wall times."""
    prefix = str(spec["name"]).split("%", 1)[0]
    names: list[str] = []
    t0 = time.perf_counter()
    for _ in range(count):
        names.append(await client.create_device(spec, interactive=False))
    t1 = time.perf_counter()
    made = sum(name.startswith(prefix) for name in netns.link_names())
    t2 = time.perf_counter()
    for name in names:
        await client.delete_device(name, interactive=False)
    t3 = time.perf_counter()
    if made != count or len(set(names)) != count:
        raise StackError(f"the helper made {made} devices ({len(set(names))} names)")
    left = [name for name in netns.link_names() if name.startswith(prefix)]
    if left:
        raise StackError(f"DeleteDevice left {left}")
    return t1 - t0, t3 - t2


async def connect_as(address: str, user: str) -> HelperClient:
    """A client whose bus connection is ``user``'s: the bus and polkit take the
    caller's identity from the socket when it connects."""
    from tungui.client import HelperClient

    account = User.named(user)
    os.setresgid(account.gid, account.gid, 0)
    os.setresuid(account.uid, account.uid, 0)
    try:
        return await HelperClient.connect(address)
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)


async def user_loops(
    address: str, helper: TimedHelper, polkit: PolkitDaemon, netns: Netns, f: Figures
) -> None:
    """The create/delete loop as a user granted manage, then the same asking polkit every call."""
    with polkit.grant("io.github.tungui.manage", USER):
        for extra_args in ([], ["--reuse-authorization", "0"]):
            await asyncio.to_thread(restart, helper, extra_args)
            client = await connect_as(address, USER)
            try:
                name = await client.create_device(USER_TAP_SPEC, interactive=False)  # warm up
                await client.delete_device(name, interactive=False)
                times = await helper_loop(client, netns, f.count, USER_TAP_SPEC)
            finally:
                client.disconnect()
                with contextlib.suppress(Exception):
                    await client.bus.wait_for_disconnect()
            if extra_args:
                f.asking_create, f.asking_delete = times
            else:
                f.user_create, f.user_delete = times
    await asyncio.to_thread(restart, helper, [])


def restart(helper: TimedHelper, extra_args: list[str]) -> None:
    """Start the helper again with other options."""
    helper.stop()
    helper.extra_args = extra_args
    helper.start()


async def count_listed(client: HelperClient, prefix: str) -> int:
    return sum(d.name.startswith(prefix) for d in await client.list_devices())


async def fill_namespace(
    client: HelperClient, netns: Netns, listed: int, directory: Path, f: Figures
) -> None:
    """Make ``listed`` TAP devices with one ``ip -batch``; wait until the helper lists them."""
    batch = directory / "tuntap.batch"
    batch.write_text("".join(f"tuntap add mode tap name lb{i}\n" for i in range(listed)), "ascii")
    t0 = time.perf_counter()
    run(["ip", "-n", netns.name, "-batch", str(batch)], timeout=600)
    t1 = time.perf_counter()
    f.batch_seconds = t1 - t0
    deadline = t1 + max(30.0, listed * 0.05)
    seen = 0
    while (seen := await count_listed(client, "lb")) < listed:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the helper listed {seen} of {listed} devices")
        await asyncio.sleep(0.01)
    f.seen_after = time.perf_counter() - t1


async def list_latency(client: HelperClient, netns: Netns, repeat: int, f: Figures) -> None:
    """ListDevices, the listing in a file and ``ip -d -s -j link show``, taken in turn."""
    argv = ["ip", "-n", netns.name, "-d", "-s", "-j", "link", "show"]
    for _ in range(2):  # warm up all three
        await client.list_devices_in_reply()
        await client.list_devices()
        subprocess.run(argv, capture_output=True, check=True)
    for _ in range(repeat):
        t0 = time.perf_counter()
        devices = await client.list_devices_in_reply()
        t1 = time.perf_counter()
        in_file = await client.list_devices()
        t2 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=True)
        t3 = time.perf_counter()
        f.list_times.append(t1 - t0)
        f.file_times.append(t2 - t1)
        f.ip_show_times.append(t3 - t2)
        f.reply_devices = min(len(devices), len(in_file))
        if f.reply_devices < f.listed or not proc.stdout:
            raise StackError(f"the helper listed {len(devices)} and {len(in_file)} devices")


async def startup(client: HelperClient, helper: TimedHelper, f: Figures) -> None:
    """Stop the helper, start it again, time its first ListDevices answer."""
    owned = asyncio.Event()

    def on_message(msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body
            and msg.body[0] == HELPER_BUS_NAME
            and msg.body[2]
        ):
            owned.set()
        return False

    client.bus.add_message_handler(on_message)
    rule = (
        "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
        f"arg0='{HELPER_BUS_NAME}'"
    )
    await client.bus.call(
        Message(
            destination=DBUS_NAME,
            path=DBUS_PATH,
            interface=DBUS_NAME,
            member="AddMatch",
            signature="s",
            body=[rule],
        )
    )
    try:
        await asyncio.to_thread(helper.stop)
        owned.clear()
        starting = asyncio.ensure_future(asyncio.to_thread(helper.start, timeout=60.0))
        try:
            await asyncio.wait_for(owned.wait(), 60.0)
        except BaseException:
            with contextlib.suppress(BaseException):
                await starting
            raise
        t_owned = time.perf_counter()
        devices = await client.list_devices()
        t_answer = time.perf_counter()
        await starting
        if len(devices) < f.listed:
            raise StackError(f"the restarted helper listed {len(devices)} devices")
        f.starts.append(t_answer - helper.spawned_at)
        f.owned.append(t_owned - helper.spawned_at)
    finally:
        client.bus.remove_message_handler(on_message)


async def measure(
    args: argparse.Namespace,
    address: str,
    helper: TimedHelper,
    polkit: PolkitDaemon,
    netns: Netns,
    reference: Netns,
    directory: Path,
    f: Figures,
) -> None:
    from tungui.client import HelperClient

    client = await HelperClient.connect(address)
    try:
        # Warm up: the first call of each kind pays for imports and caches.
        name = await client.create_device(TAP_SPEC, interactive=False)
        await client.delete_device(name, interactive=False)
        run(["ip", "-n", reference.name, "tuntap", "add", "mode", "tap", "name", "warm"])
        run(["ip", "-n", reference.name, "tuntap", "del", "mode", "tap", "name", "warm"])

        log(f"ip loop: {args.count} x ip tuntap add, then del")
        f.ip_add, f.ip_del = ip_loop(reference, args.count)
        log(f"helper: {args.count} x CreateDevice, then DeleteDevice")
        f.helper_create, f.helper_delete = await helper_loop(client, netns, args.count)
        log(f"the same as {USER}, granted manage by polkit; then asking polkit every call")
        await user_loops(address, helper, polkit, netns, f)

        log(f"making {args.listed} TAP devices with ip -batch")
        await fill_namespace(client, netns, args.listed, directory, f)
        await wait_idle(helper.pid)
        log(f"ListDevices and ip -d -s -j link show, {args.repeat} times each")
        await list_latency(client, netns, args.repeat, f)

        for n in range(args.starts):
            log(f"restarting the helper ({n + 1}/{args.starts})")
            await startup(client, helper, f)
    finally:
        client.disconnect()
        with contextlib.suppress(Exception):
            await client.bus.wait_for_disconnect()


# --------------------------------------------------------------------------
# Setting up, tearing down


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the tungui helper's CreateDevice/DeleteDevice and ListDevices "
        "on the real stack, beside ip.  Needs root."
    )
    parser.add_argument(
        "--count", type=positive, default=200, help="TAP devices to create and delete (200)"
    )
    parser.add_argument(
        "--listed", type=positive, default=1000, help="devices present for ListDevices (1000)"
    )
    parser.add_argument(
        "--repeat", type=positive, default=30, help="timed ListDevices and ip runs (30)"
    )
    parser.add_argument("--starts", type=positive, default=3, help="helper restarts to time (3)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that runs the helper (default: this one)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_requirements()
    if missing:
        print("cannot run: " + "; ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_interrupt)
    remove_stale_rules()
    bench = BenchStack(NETNS_PREFIX, helper_class=TimedHelper, python=args.python)
    bus, netns, directory = bench.bus, bench.netns, bench.directory
    helper = bench.helper
    assert isinstance(helper, TimedHelper)
    pythonpath = bench.pythonpath
    reference = Netns(f"{NETNS_PREFIX}{os.getpid()}-ip")
    f = Figures(count=args.count, listed=args.listed)
    failed = True
    try:
        f.versions_helper = python_versions(args.python, base_env(bus.address, pythonpath))
        f.versions_client = python_versions(sys.executable, base_env(bus.address, pythonpath))
        log("starting dbus-daemon, polkitd, the namespaces and the helper")
        bench.start()
        reference.create()
        asyncio.run(
            measure(args, bus.address, helper, bench.polkit, netns, reference, directory, f)
        )
        failed = False
    except KeyboardInterrupt:
        failed = False  # nothing to explain
        log("interrupted; cleaning up")
        return 130
    finally:
        bench.close((reference.name, reference.delete), helper_stderr=failed)
    print(report(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
