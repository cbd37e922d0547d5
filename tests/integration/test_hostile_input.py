"""Input from a hostile local user: bounded before any work, never echoed whole.

Every call here comes from ``nobody``, who holds no polkit grant: what it
sends is refused, and the refusal must cost the helper little, answer
briefly, and leave everyone else served (docs/security.md).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bus import DBusDaemon
from tests.support.buscall import bus_call, name_owner_pid
from tests.support.errors import DBusCallError
from tests.support.helper import HelperProcess
from tests.support.helperbus import call, devices, variants
from tests.support.netns import Netns
from tests.support.nobody import SpawnNobodyPython
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HELPER = "io.github.tungui.Helper1"
PATH = "/io/github/tungui/Helper1"
INVALID = "io.github.tungui.Error.InvalidArgument"
#: No error a refusal sends is longer than this (the bus takes up to 32 MiB).
SHORT = 1_000
#: A root ListDevices must answer within this while nobody's call is being
#: refused.  Generous for a loaded 2-core machine; the unbounded checks
#: this guards against held the helper for minutes.
PROMPT = 5.0

#: Sends one call as nobody, described by a JSON line on stdin, and prints
#: the reply as a JSON line.  The calls are built here, in nobody's process,
#: so the test process never holds them.
CLIENT = """
import asyncio, json, sys
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

def build(case):
    huge = "\\x01" * 9_000_000
    if case == "addresses":
        addresses = [f"2001:db8::{i:x}/128" for i in range(30_000)]
        return "CreateDevice", "a{sv}", [{"mode": Variant("s", "tap"),
                                          "addresses": Variant("as", addresses)}]
    if case == "name":
        return "DeleteDevice", "s", [huge]
    if case == "template":
        return "CreateDevice", "a{sv}", [{"mode": Variant("s", "tap"), "name": Variant("s", huge)}]
    if case == "key":
        return "CreateDevice", "a{sv}", [{"mode": Variant("s", "tap"), huge: Variant("b", True)}]
    if case == "capture":
        return "StartCapture", "sa{sv}", ["lo", {huge: Variant("u", 1)}]
    if case == "address":
        return "ConfigureDevice", "sa{sv}", ["lo", {"addresses": Variant("as", [huge])}]
    if case == "packet":
        return "InjectPacket", "say", ["lo", b"\\0" * 20_000_000]
    raise SystemExit(f"unknown case {case}")

async def main():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    member, signature, body = build(sys.stdin.readline().strip())
    print("sending", flush=True)
    reply = await bus.call(Message(
        destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
        interface="io.github.tungui.Helper1", member=member, signature=signature, body=body))
    text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
    print(json.dumps({"type": reply.message_type.name, "error": reply.error_name,
                      "length": len(text), "text": text[:300]}), flush=True)
    bus.disconnect()

asyncio.run(main())
"""


@pytest.fixture
def nobody_call(
    spawn_nobody_python: SpawnNobodyPython,
) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _send(spawn: SpawnNobodyPython, started: list[subprocess.Popen[str]], case: str) -> Any:
    proc = spawn(CLIENT, preimport=["dbus_fast", "dbus_fast.aio"])
    started.append(proc)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(case + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "sending\n", proc.stderr.read() if proc.stderr else ""
    return proc


def _reply(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reply: dict[str, object] = json.loads(out)
    return reply


def _root_is_served_while(bus: DBusDaemon, proc: subprocess.Popen[str]) -> None:
    """Root's ListDevices is answered, again and again, until ``proc`` has its answer."""
    while proc.poll() is None:
        bus_call(bus.address, HELPER, PATH, HELPER, "ListDevices", timeout=PROMPT)


def test_thirty_thousand_addresses_are_refused_at_once(
    helper: HelperProcess,
    bus: DBusDaemon,
    clean_netns: Netns,
    spawn_nobody_python: SpawnNobodyPython,
    nobody_call: list[subprocess.Popen[str]],
) -> None:
    proc = _send(spawn_nobody_python, nobody_call, "addresses")
    # The old duplicate check compared each address with every earlier one:
    # minutes of the helper's only thread, with nobody answered meanwhile.
    _root_is_served_while(bus, proc)
    reply = _reply(proc)
    assert reply["error"] == INVALID, reply
    assert "too many" in str(reply["text"]), reply
    assert clean_netns.link_names() == ["lo"]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("name", "is not the name of a network device"),
        ("template", "is too long"),
        ("key", "Unknown key"),
        ("capture", "Unknown capture option"),
        ("address", "too long to be an address"),
        ("packet", "longer than any device takes"),
    ],
)
def test_huge_input_gets_a_short_error_and_the_helper_stays(
    helper: HelperProcess,
    bus: DBusDaemon,
    spawn_nobody_python: SpawnNobodyPython,
    nobody_call: list[subprocess.Popen[str]],
    case: str,
    words: str,
) -> None:
    pid = name_owner_pid(bus.address, HELPER)
    proc = _send(spawn_nobody_python, nobody_call, case)
    _root_is_served_while(bus, proc)
    reply = _reply(proc)
    # Echoed whole, 9 MB of control bytes would make a 36 MB error: the bus
    # refuses it and drops the helper, ending every user's devices.
    assert reply["type"] == "ERROR", reply
    assert reply["error"] == INVALID, reply
    assert int(str(reply["length"])) < SHORT, reply
    assert words in str(reply["text"]), reply
    assert "(9000000 long)" in str(reply["text"]) or case == "packet", reply
    assert name_owner_pid(bus.address, HELPER) == pid
    assert helper.exited_unexpectedly() is None


def test_a_name_cannot_pass_for_another_names_escape(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    # A TAP literally named tg\xff (four ASCII characters after "tg") and a
    # device whose name holds the byte 0xff: each lists as itself, and each
    # listed name addresses its own device.
    clean_netns.ip("tuntap", "add", "mode", "tap", "name", "tg\\xff")
    subprocess.run(
        ["ip", "-n", clean_netns.name, "link", "add", b"tg\xff", "type", "bridge"], check=True
    )
    listed = devices()
    literal, byte = "tg\\\\xff", "tg\\xff"
    assert listed[literal]["kind"] == "tap"
    assert listed[byte]["kind"] == "bridge"
    call("DeleteDevice", "s", literal)
    wait_until(lambda: "tg\\xff" not in clean_netns.link_names(), what="the TAP deleted")
    assert [n for n in clean_netns.link_names() if n.startswith("tg")] == ["tg\udcff"]
    call("DeleteDevice", "s", byte)
    wait_until(lambda: clean_netns.link_names() == ["lo"], what="the bridge deleted")


def test_new_names_cannot_hold_a_backslash(helper: HelperProcess, clean_netns: Netns) -> None:
    with pytest.raises(DBusCallError) as refused:
        call("CreateDevice", "a{sv}", variants(mode="tap", name="tg\\xff", persist=True))
    assert refused.value.name == INVALID
    assert "backslash" in refused.value.message
    assert clean_netns.link_names() == ["lo"]
