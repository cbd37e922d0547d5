"""Caps hold per user, however many connections the user opens; polkit calls time out.

Each hostile client is the unprivileged user ``nobody`` on several bus
connections at once.  A call over a cap gets LimitsExceeded at once and
nothing else happens; what the helper holds does not grow past the cap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bus import DBusDaemon
from tests.support.buscall import bus_call
from tests.support.helper import HelperProcess
from tests.support.helperbus import busctl_argv, call, create
from tests.support.netns import Netns
from tests.support.nobody import RunAsNobody, SpawnNobodyPython
from tests.support.polkit import Grant as GrantFixture
from tests.support.polkit import PolkitDaemon
from tests.support.waiting import wait_until
from tungui_helper.limits import (
    CALLS_PER_CONNECTION,
    CALLS_PER_USER,
    CAPTURES_PER_USER,
    HELD_QUEUES_PER_USER,
    PROMPTS_PER_USER,
    TRANSIENT_DEVICES_PER_USER,
)

pytestmark = pytest.mark.integration

MANAGE = "io.github.tungui.manage"
CAPTURE = "io.github.tungui.capture"
LIMITS_EXCEEDED = "io.github.tungui.Error.LimitsExceeded"
NOT_AUTHORIZED = "io.github.tungui.Error.NotAuthorized"

# Shared by nobody's clients: connections, and one helper call as a coroutine.
PRELUDE = """
import asyncio, os, sys
from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

async def connections(count):
    return [
        await MessageBus(
            bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], negotiate_unix_fd=True
        ).connect()
        for _ in range(count)
    ]

def helper_call(member, signature="", body=(), interactive=False):
    return Message(
        destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
        interface="io.github.tungui.Helper1", member=member, signature=signature,
        body=list(body),
        flags=MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION if interactive else MessageFlag.NONE,
    )

def answer(reply):
    if reply.message_type == MessageType.ERROR:
        return f"{reply.error_name} {reply.body[0]}"
    return "ok"

async def wait_for_stdin_to_close():
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
"""


def _lines_until(proc: subprocess.Popen[str], last: str) -> list[str]:
    """stdout lines of ``proc`` up to the one starting with ``last``."""
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    while not (lines and lines[-1].startswith(last)):
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"nobody's client ended early: {lines}\n{proc.stderr.read()}")
        lines.append(line.strip())
    return lines


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


def _packet_rings(helper: HelperProcess) -> int:
    """Capture rings the helper has mapped (a packet socket's mmap shows as the socket)."""
    maps = Path(f"/proc/{helper.pid}/maps").read_text("utf-8")
    return sum(1 for line in maps.splitlines() if "socket:[" in line)


# --------------------------------------------------------------------- captures

CAPTURES = (
    PRELUDE
    + """
async def main():
    buses = await connections(3)
    streams, n = [], 0
    while n < 40:
        reply = await buses[n % 3].call(
            helper_call("StartCapture", "sa{sv}", [os.environ["DEVICE"], {}])
        )
        n += 1
        if reply.message_type == MessageType.ERROR:
            print("refused", answer(reply), flush=True)
            break
        streams.extend(reply.unix_fds)
    print("captures", len(streams), flush=True)
    await wait_for_stdin_to_close()

asyncio.run(main())
"""
)


def test_captures_are_capped_per_user_over_connections(
    helper: HelperProcess,
    clean_netns: Netns,
    grant: GrantFixture,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    device = create(mode="tun", name="cap%d", persist=True, up=True)
    fds, rings = helper.fd_count(), _packet_rings(helper)
    with grant(CAPTURE):
        proc = spawn_nobody_python(CAPTURES, env={"DEVICE": device})
        *_, refused, captures = _lines_until(proc, "captures")
    assert captures == f"captures {CAPTURES_PER_USER}"
    assert refused == (
        f"refused {LIMITS_EXCEEDED} Your user already runs {CAPTURES_PER_USER} captures; "
        "close one first."
    )
    # Each capture: a packet socket, the duplicate its ring's mmap keeps, and
    # the helper's end of the stream.
    assert helper.fd_count() - fds == 3 * CAPTURES_PER_USER
    assert _packet_rings(helper) - rings == CAPTURES_PER_USER
    _end(proc)
    wait_until(lambda: helper.fd_count() == fds, timeout=5, what="the captures' fds closed")
    assert _packet_rings(helper) == rings


# ---------------------------------------------------------- transient devices

TRANSIENT = (
    PRELUDE
    + """
def spec(queues):
    return {
        "mode": Variant("s", "tap"), "persist": Variant("b", False),
        "multi_queue": Variant("b", queues > 1), "queues": Variant("u", queues),
    }

async def main():
    buses = await connections(2)
    for n, queues in enumerate(int(q) for q in os.environ["QUEUES"].split()):
        reply = await buses[n % 2].call(helper_call("CreateDevice", "a{sv}", [spec(queues)]))
        print(queues, answer(reply), flush=True)
    print("end", flush=True)
    await wait_for_stdin_to_close()

asyncio.run(main())
"""
)


def _transient(
    spawn_nobody_python: SpawnNobodyPython, queues: list[int]
) -> tuple[subprocess.Popen[str], list[str]]:
    proc = spawn_nobody_python(TRANSIENT, env={"QUEUES": " ".join(map(str, queues))})
    return proc, _lines_until(proc, "end")[:-1]


def _taps(netns: Netns) -> list[str]:
    return [n for n in netns.link_names() if n.startswith("tap")]


def test_transient_devices_are_capped_per_user_over_connections(
    helper: HelperProcess,
    clean_netns: Netns,
    grant: GrantFixture,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    before = helper.fd_count()
    with grant(MANAGE):
        proc, answers = _transient(spawn_nobody_python, [1] * (TRANSIENT_DEVICES_PER_USER + 2))
    assert (
        answers
        == ["1 ok"] * TRANSIENT_DEVICES_PER_USER
        + [
            f"1 {LIMITS_EXCEEDED} Your user already has {TRANSIENT_DEVICES_PER_USER} transient "
            "devices; remove one or make it persistent first."
        ]
        * 2
    )
    assert len(_taps(clean_netns)) == TRANSIENT_DEVICES_PER_USER
    assert helper.fd_count() - before == TRANSIENT_DEVICES_PER_USER, "one queue each"
    _end(proc)
    wait_until(lambda: not _taps(clean_netns), timeout=5, what="the transient devices gone")
    wait_until(lambda: helper.fd_count() == before, timeout=5, what="their queues closed")


def test_queues_of_transient_devices_are_capped_per_user(
    helper: HelperProcess,
    clean_netns: Netns,
    grant: GrantFixture,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    before = helper.fd_count()
    first = HELD_QUEUES_PER_USER - 8
    with grant(MANAGE):
        proc, answers = _transient(spawn_nobody_python, [first, 16, 8, 1])
    assert answers == [
        f"{first} ok",
        f"16 {LIMITS_EXCEEDED} Your user's transient devices would have more than "
        f"{HELD_QUEUES_PER_USER} queues (they have {first}; this asks for 16).",
        "8 ok",
        f"1 {LIMITS_EXCEEDED} Your user's transient devices would have more than "
        f"{HELD_QUEUES_PER_USER} queues (they have {HELD_QUEUES_PER_USER}; this asks for 1).",
    ]
    assert len(_taps(clean_netns)) == 2, "nothing made for the refused calls"
    assert helper.fd_count() - before == HELD_QUEUES_PER_USER
    _end(proc)
    wait_until(lambda: helper.fd_count() == before, timeout=5, what="their queues closed")


# ------------------------------------------------------------ calls in flight


@contextlib.contextmanager
def polkit_stopped(polkit: PolkitDaemon) -> Iterator[None]:
    """polkitd frozen (SIGSTOP) for the block: every check waits."""
    assert polkit.proc is not None
    pid = polkit.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


FLOOD = (
    PRELUDE
    + """
async def main():
    buses = await connections(int(os.environ["CONNECTIONS"]))
    per = int(os.environ["CALLS"])
    interactive = os.environ.get("INTERACTIVE") == "1"
    calls = [
        asyncio.ensure_future(
            bus.call(helper_call("CreateBridge", "a{sv}", [{}], interactive=interactive))
        )
        for bus in buses
        for _ in range(per)
    ]
    # Refusals come at once; the other calls wait for polkit.
    done, waiting = await asyncio.wait(calls, timeout=float(os.environ["WAIT"]))
    for reply in sorted(answer(c.result()) for c in done):
        print("answered", reply, flush=True)
    print("waiting", len(waiting), flush=True)
    if os.environ.get("INTROSPECT") == "1":
        # One more call from the same user, of a standard interface.
        (another,) = await connections(1)
        reply = await another.call(Message(
            destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
            interface="org.freedesktop.DBus.Introspectable", member="Introspect",
        ))
        print("introspect", answer(reply), flush=True)
    for reply in sorted(answer(r) for r in await asyncio.gather(*waiting)):
        print("later", reply, flush=True)
    print("end", flush=True)

asyncio.run(main())
"""
)


def _flood(
    spawn_nobody_python: SpawnNobodyPython,
    connections: int,
    calls: int,
    *,
    interactive: bool,
    introspect: bool = False,
) -> subprocess.Popen[str]:
    return spawn_nobody_python(
        FLOOD,
        env={
            "CONNECTIONS": str(connections),
            "CALLS": str(calls),
            "INTERACTIVE": "1" if interactive else "0",
            "INTROSPECT": "1" if introspect else "0",
            "WAIT": "3",
        },
    )


def test_calls_in_flight_are_capped_per_user_while_polkit_hangs(
    helper: HelperProcess,
    polkit: PolkitDaemon,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    connections = CALLS_PER_USER // CALLS_PER_CONNECTION + 1
    total = connections * CALLS_PER_CONNECTION
    with polkit_stopped(polkit):
        proc = _flood(spawn_nobody_python, connections, CALLS_PER_CONNECTION, interactive=False)
        refused = _lines_until(proc, "waiting")
        # Root is another user: answered at once all the while.
        started = time.monotonic()
        call("ListDevices")
        assert time.monotonic() - started < 0.5
    assert refused == [
        f"answered {LIMITS_EXCEEDED} Your user already has {CALLS_PER_USER} calls in flight; "
        "wait for their answers."
    ] * (total - CALLS_PER_USER) + [f"waiting {CALLS_PER_USER}"]
    later = _lines_until(proc, "end")[:-1]
    assert len(later) == CALLS_PER_USER
    assert all(line.startswith(f"later {NOT_AUTHORIZED}") for line in later), later


def test_calls_of_the_standard_interfaces_count_against_the_cap_per_user(
    helper: HelperProcess,
    polkit: PolkitDaemon,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    connections = CALLS_PER_USER // CALLS_PER_CONNECTION
    with polkit_stopped(polkit):
        proc = _flood(
            spawn_nobody_python,
            connections,
            CALLS_PER_CONNECTION,
            interactive=False,
            introspect=True,
        )
        lines = _lines_until(proc, "introspect")
        # Root is another user: its Introspect is answered all the while.
        (xml,) = bus_call(
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"],
            "io.github.tungui.Helper1",
            "/io/github/tungui/Helper1",
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
        )
        assert "io.github.tungui.Helper1" in xml
    assert lines == [
        f"waiting {CALLS_PER_USER}",
        f"introspect {LIMITS_EXCEEDED} Your user already has {CALLS_PER_USER} calls in flight; "
        "wait for their answers.",
    ]
    _lines_until(proc, "end")


def test_calls_in_flight_are_capped_per_connection(
    helper: HelperProcess,
    polkit: PolkitDaemon,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    with polkit_stopped(polkit):
        proc = _flood(spawn_nobody_python, 1, CALLS_PER_CONNECTION + 4, interactive=False)
        refused = _lines_until(proc, "waiting")
    assert refused == [
        f"answered {LIMITS_EXCEEDED} This connection already has {CALLS_PER_CONNECTION} calls "
        "in flight; wait for their answers."
    ] * 4 + [f"waiting {CALLS_PER_CONNECTION}"]
    _lines_until(proc, "end")


def test_calls_waiting_at_a_password_prompt_are_capped_per_user(
    helper: HelperProcess,
    polkit: PolkitDaemon,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    with polkit_stopped(polkit):
        proc = _flood(spawn_nobody_python, 2, PROMPTS_PER_USER, interactive=True)
        refused = _lines_until(proc, "waiting")
    assert refused == [
        f"answered {LIMITS_EXCEEDED} You already have {PROMPTS_PER_USER} calls waiting for a "
        "password; answer or cancel those first."
    ] * PROMPTS_PER_USER + [f"waiting {PROMPTS_PER_USER}"]
    _lines_until(proc, "end")


# ------------------------------------------------------------ polkit timeouts


@pytest.fixture
def impatient_helper(helper: HelperProcess) -> Iterator[HelperProcess]:
    """The helper, restarted to wait for polkit 1 s (2 s when a password may be asked)."""
    helper.stop()
    helper.extra_args = ["--polkit-timeout", "1", "--polkit-interactive-timeout", "2"]
    helper.start()
    try:
        yield helper
    finally:
        helper.stop()
        helper.extra_args = []
        helper.start()


@pytest.mark.parametrize("interactive", [False, True])
def test_a_call_polkit_does_not_answer_is_refused_in_time(
    impatient_helper: HelperProcess,
    polkit: PolkitDaemon,
    bus: DBusDaemon,
    run_as_nobody: RunAsNobody,
    interactive: bool,
) -> None:
    timeout = 2 if interactive else 1
    argv = busctl_argv(bus.address, "CreateBridge", "a{sv}", "0")
    argv[1:1] = ["--timeout=10", f"--allow-interactive-authorization={str(interactive).lower()}"]
    with polkit_stopped(polkit):
        started = time.monotonic()
        result = run_as_nobody(argv)
        took = time.monotonic() - started
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"Call failed: polkit gave no answer within {timeout} seconds on whether you may "
        "manage TUN/TAP devices and bridges; nothing was done."
    )
    assert timeout <= took < timeout + 3
    wait_until(
        lambda: "polkit gave no answer within" in impatient_helper.stderr_text(),
        timeout=5,
        what="the refusal in the helper's log",
    )
