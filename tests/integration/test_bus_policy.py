"""The shipped D-Bus policy lets nobody reach the helper only through its methods.

resources/dbus/io.github.tungui.Helper1.conf allows everyone method calls on
the helper's interface and on Introspectable, Properties and Peer, without
file descriptors, and refuses everything else addressed to the helper. Each
test sends as ``nobody`` on the private bus, whose only rules for the helper
are that file. A refusal is proven by the bus's own answer: an AccessDenied
error whose sender is the bus (``org.freedesktop.DBus``), which dbus-daemon
sends only for a message it did not deliver; the helper's descriptor count
shows that no descriptor reached it. Delivery is proven by a reply whose
sender is the helper's unique name.

The broadcasts the helper must still receive are tried where their effect
shows: polkitd's Changed in test_authorization.py
(test_polkit_reporting_a_change_ends_the_reuse_of_its_yes), the bus's
NameOwnerChanged in test_lifetime.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.support.bus import DBusDaemon
from tests.support.helper import HelperProcess
from tests.support.names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH
from tests.support.nobody import NobodyPython, RunAsNobody

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parents[2] / "resources/dbus/io.github.tungui.Helper1.xml"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
#: What the bus answers for a message it refused to deliver.
REFUSED = [["error", "bus", ACCESS_DENIED]]

# Runs as nobody. stdin: a JSON list of messages to send, each
# {"type", "interface", "member", "to": "name" | "unique", "fds"}. stdout: for
# each, what came back to it, as [type, "bus" | "helper" | sender, error name].
# A message other than a call gets no reply of its own; then a Ping to the
# helper follows it on the same connection, and the bus handles one
# connection's messages in order: the bus's refusal, if any, arrives before
# the Ping's reply, and a message the bus delivered reached the helper first.
SEND = """
import asyncio, json, os, sys
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

HELPER, PATH = "io.github.tungui.Helper1", "/io/github/tungui/Helper1"


async def main():
    bus = await MessageBus(
        bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"],
        bus_type=BusType.SYSTEM,
        negotiate_unix_fd=True,
    ).connect()
    came = []
    bus.add_message_handler(lambda msg: came.append(msg) and False)
    owner = await bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="GetNameOwner",
        signature="s", body=[HELPER]))
    unique = owner.body[0]

    def who(msg):
        if msg.sender == "org.freedesktop.DBus":
            return "bus"
        return "helper" if msg.sender == unique else msg.sender

    def outcome(msg):
        return [msg.message_type.name.lower(), who(msg), msg.error_name]

    results = []
    for case in json.load(sys.stdin):
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(case["fds"])]
        kind = MessageType[case["type"].upper()]
        msg = Message(
            message_type=kind,
            destination=HELPER if case["to"] == "name" else unique,
            path=PATH if kind in (MessageType.METHOD_CALL, MessageType.SIGNAL) else None,
            interface=case["interface"],
            member=case["member"],
            error_name="org.example.Fake" if kind == MessageType.ERROR else None,
            reply_serial=4242 if kind in (MessageType.METHOD_RETURN, MessageType.ERROR) else None,
            signature="h" * len(fds),
            body=list(range(len(fds))),
            unix_fds=fds,
        )
        if kind == MessageType.METHOD_CALL:
            results.append([outcome(await bus.call(msg))])
        else:
            came.clear()
            await bus.send(msg)
            ping = await bus.call(Message(
                destination=HELPER, path=PATH,
                interface="org.freedesktop.DBus.Peer", member="Ping"))
            assert ping.message_type == MessageType.METHOD_RETURN, ping.body
            results.append([outcome(m) for m in came if m.reply_serial == msg.serial])
        for fd in fds:
            os.close(fd)
    print(json.dumps(results))


asyncio.run(main())
"""


def message(
    kind: str,
    interface: str | None = None,
    member: str | None = None,
    *,
    to: str = "name",
    fds: int = 0,
) -> dict[str, Any]:
    return {"type": kind, "interface": interface, "member": member, "to": to, "fds": fds}


def send_as_nobody(nobody_python: NobodyPython, *messages: dict[str, Any]) -> list[list[Any]]:
    """Send ``messages`` to the helper as nobody; what came back for each."""
    proc = nobody_python(SEND, input=json.dumps(messages))
    assert proc.returncode == 0, proc.stderr
    results: list[list[Any]] = json.loads(proc.stdout)
    assert len(results) == len(messages)
    return results


def contract_methods() -> list[str]:
    root = ET.parse(CONTRACT).getroot()  # our own, trusted file
    (iface,) = [i for i in root.iter("interface") if i.get("name") == HELPER_INTERFACE]
    return [str(m.get("name")) for m in iface.findall("method")]


# ------------------------------------------------------------------ refused


@pytest.mark.parametrize("fds", [0, 4])
@pytest.mark.parametrize("to", ["name", "unique"])
def test_a_signal_sent_to_the_helper_alone_never_reaches_it(
    helper: HelperProcess, nobody_python: NobodyPython, fds: int, to: str
) -> None:
    # The helper would receive a unicast signal whatever it subscribed to,
    # with the descriptors it carries.
    before = helper.fd_count()
    signal = message("signal", "org.example.Hostile", "Take", to=to, fds=fds)
    assert send_as_nobody(nobody_python, signal, signal, signal) == [REFUSED] * 3
    assert helper.fd_count() == before


def test_a_signal_that_looks_like_polkits_cannot_be_sent_to_the_helper(
    helper: HelperProcess, nobody_python: NobodyPython
) -> None:
    # The helper acts on Changed from whoever sends it (it makes the helper
    # ask polkit again); sent to it alone, the bus refuses it.
    fake = message("signal", "org.freedesktop.PolicyKit1.Authority", "Changed")
    assert send_as_nobody(nobody_python, fake) == [REFUSED]


@pytest.mark.parametrize("kind", ["method_return", "error"])
@pytest.mark.parametrize("fds", [0, 1])
def test_a_reply_the_helper_did_not_ask_for_never_reaches_it(
    helper: HelperProcess, nobody_python: NobodyPython, kind: str, fds: int
) -> None:
    before = helper.fd_count()
    assert send_as_nobody(nobody_python, message(kind, to="unique", fds=fds)) == [REFUSED]
    assert helper.fd_count() == before


@pytest.mark.parametrize(
    "interface",
    ["org.example.Unknown", "org.freedesktop.DBus.ObjectManager", "org.freedesktop.DBus", None],
)
def test_a_call_on_another_interface_or_none_is_refused_by_the_bus(
    helper: HelperProcess, nobody_python: NobodyPython, interface: str | None
) -> None:
    # Without the policy the helper answers these itself (UnknownMethod, or
    # a call without interface taken as its own ListDevices).
    assert send_as_nobody(nobody_python, message("method_call", interface, "ListDevices")) == [
        REFUSED
    ]


@pytest.mark.parametrize(
    ("interface", "member"),
    [
        (HELPER_INTERFACE, "ListDevices"),
        (HELPER_INTERFACE, "CreateDevice"),
        ("org.freedesktop.DBus.Peer", "Ping"),
        ("org.freedesktop.DBus.Properties", "GetAll"),
        ("org.freedesktop.DBus.Introspectable", "Introspect"),
    ],
)
def test_a_call_carrying_descriptors_is_refused_by_the_bus(
    helper: HelperProcess, nobody_python: NobodyPython, interface: str, member: str
) -> None:
    # No method of the helper takes a descriptor.
    before = helper.fd_count()
    call = message("method_call", interface, member, fds=4)
    assert send_as_nobody(nobody_python, call, call) == [REFUSED] * 2
    assert helper.fd_count() == before


def test_an_outside_client_is_told_access_denied(
    helper: HelperProcess, run_as_nobody: RunAsNobody
) -> None:
    result = run_as_nobody(
        [
            "gdbus",
            "call",
            "--system",
            "--dest",
            HELPER_BUS_NAME,
            "--object-path",
            HELPER_OBJECT_PATH,
            "--method",
            "org.example.Unknown.ListDevices",
        ]
    )
    assert result.returncode != 0
    assert ACCESS_DENIED in result.stderr, result.stderr


# ------------------------------------------------------------------ allowed


def test_every_method_of_the_contract_reaches_the_helper(
    helper: HelperProcess, nobody_python: NobodyPython
) -> None:
    # Without arguments: the helper answers each, with a result or its own
    # error (wrong arguments, not authorized); never the bus.
    methods = contract_methods()
    assert len(methods) >= 10
    calls = [message("method_call", HELPER_INTERFACE, m) for m in methods]
    results = send_as_nobody(nobody_python, *calls)
    for method, result in zip(methods, results, strict=True):
        ((_, sender, error),) = result
        assert sender == "helper", (method, result)
        assert error != ACCESS_DENIED


@pytest.mark.parametrize(
    ("interface", "member"),
    [
        ("org.freedesktop.DBus.Introspectable", "Introspect"),
        ("org.freedesktop.DBus.Properties", "GetAll"),
        ("org.freedesktop.DBus.Peer", "Ping"),
        ("org.freedesktop.DBus.Peer", "GetMachineId"),
    ],
)
def test_the_standard_interfaces_reach_the_helper(
    helper: HelperProcess, nobody_python: NobodyPython, interface: str, member: str
) -> None:
    ((_, sender, _),) = send_as_nobody(nobody_python, message("method_call", interface, member))[0]
    assert sender == "helper"


def test_outside_clients_reach_every_standard_interface(
    helper: HelperProcess, bus: DBusDaemon, run_as_nobody: RunAsNobody
) -> None:
    def gdbus(method: str, *args: str) -> str:
        result = run_as_nobody(
            [
                "gdbus",
                "call",
                "--system",
                "--dest",
                HELPER_BUS_NAME,
                "--object-path",
                HELPER_OBJECT_PATH,
                "--method",
                method,
                *args,
            ]
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def busctl(*args: str) -> str:
        result = run_as_nobody(["busctl", f"--address={bus.address}", *args])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert gdbus("org.freedesktop.DBus.Peer.Ping") == "()"
    assert "'Version'" in gdbus("org.freedesktop.DBus.Properties.GetAll", HELPER_INTERFACE)
    version = gdbus("org.freedesktop.DBus.Properties.Get", HELPER_INTERFACE, "Version")
    assert version.startswith("(<'")
    assert busctl(
        "get-property", HELPER_BUS_NAME, HELPER_OBJECT_PATH, HELPER_INTERFACE, "Version"
    ).startswith('s "')
    listing = busctl("call", HELPER_BUS_NAME, HELPER_OBJECT_PATH, HELPER_INTERFACE, "ListDevices")
    assert listing.startswith("aa{sv} ")
    introspection = busctl("introspect", "--xml-interface", HELPER_BUS_NAME, HELPER_OBJECT_PATH)
    assert f'<interface name="{HELPER_INTERFACE}">' in introspection
