"""File descriptors that callers attach to their messages never stay in the helper.

The helper's connection accepts fds (its replies carry capture streams and
listings), and the bus lets any caller attach up to 16 to any message.  No
method of the helper takes one, so whatever a message brings is closed: its
fd count stays where it was, and it goes on serving.
"""

from __future__ import annotations

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import devices
from tests.support.nobody import NobodyPython
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

#: Messages of each kind sent, with 16 fds each (the system bus's
#: max_message_unix_fds).
COUNT = 8
FDS_PER_MESSAGE = 16

# nobody's client: sends COUNT messages of KIND, each carrying 16 fds, and
# after each one pings the helper, so that once it prints "done" the helper
# has read every message it sent (the bus keeps one sender's messages in order).
CLIENT = """
import asyncio, os
from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

HELPER = "io.github.tungui.Helper1"
PATH = "/io/github/tungui/Helper1"
INTERFACE = "io.github.tungui.Helper1"

def build(kind, owner, fds):
    call = dict(destination=HELPER, path=PATH, interface=INTERFACE, unix_fds=fds)
    if kind == "our method":
        return Message(member="ListDevices", **call)
    if kind == "a method polkit refuses":
        return Message(member="CreateBridge", signature="a{sv}", body=[{}], **call)
    if kind == "bad arguments":
        return Message(member="ListDevices", signature="s", body=["x"], **call)
    if kind == "an unknown method":
        return Message(member="NoSuchMethod", **call)
    if kind == "no reply expected":
        return Message(member="ListDevices", flags=MessageFlag.NO_REPLY_EXPECTED, **call)
    if kind == "Introspect":
        call["interface"] = "org.freedesktop.DBus.Introspectable"
        return Message(member="Introspect", **call)
    if kind == "Properties":
        call["interface"] = "org.freedesktop.DBus.Properties"
        return Message(member="Get", signature="ss", body=[INTERFACE, "Version"], **call)
    if kind == "Peer":
        call["interface"] = "org.freedesktop.DBus.Peer"
        return Message(member="Ping", **call)
    if kind == "another path":
        call.update(path="/", interface="org.freedesktop.DBus.Introspectable")
        return Message(member="Introspect", **call)
    if kind == "a signal to the helper":
        return Message(
            message_type=MessageType.SIGNAL, destination=owner, path="/",
            interface="org.example.Hostile", member="Boom", unix_fds=fds,
        )
    if kind == "an unrequested return":
        return Message(
            message_type=MessageType.METHOD_RETURN, destination=owner,
            reply_serial=7, unix_fds=fds,
        )
    if kind == "an unrequested error":
        return Message(
            message_type=MessageType.ERROR, destination=owner, reply_serial=7,
            error_name="org.example.Error", unix_fds=fds,
        )
    raise ValueError(kind)

async def main():
    bus = await MessageBus(
        bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], negotiate_unix_fd=True
    ).connect()
    owner = (await bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="GetNameOwner", signature="s", body=[HELPER],
    ))).body[0]
    null = os.open("/dev/null", os.O_RDONLY)
    kind = os.environ["KIND"]
    for _ in range(int(os.environ["COUNT"])):
        msg = build(kind, owner, [null] * int(os.environ["FDS"]))
        no_reply = msg.flags & MessageFlag.NO_REPLY_EXPECTED
        if msg.message_type == MessageType.METHOD_CALL and not no_reply:
            reply = await bus.call(msg)
            print("reply", reply.message_type.name, reply.error_name, flush=True)
        else:
            await bus.send(msg)
        pong = await bus.call(Message(
            destination=HELPER, path=PATH, interface="org.freedesktop.DBus.Peer", member="Ping",
        ))
        assert pong.message_type == MessageType.METHOD_RETURN, pong.body
    print("done", flush=True)

asyncio.run(main())
"""

KINDS = [
    "our method",
    "a method polkit refuses",
    "bad arguments",
    "an unknown method",
    "no reply expected",
    "Introspect",
    "Properties",
    "Peer",
    "another path",
    "a signal to the helper",
    "an unrequested return",
    "an unrequested error",
]


@pytest.mark.parametrize("kind", KINDS)
def test_fds_a_message_brings_are_closed(
    helper: HelperProcess, nobody_python: NobodyPython, kind: str
) -> None:
    before = helper.fd_count()
    result = nobody_python(
        CLIENT, env={"KIND": kind, "COUNT": str(COUNT), "FDS": str(FDS_PER_MESSAGE)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "done", result.stdout
    # Every message was read before the last ping was answered; what a call
    # opens for itself (a listing's memfd) is closed once its reply is out.
    wait_until(
        lambda: helper.fd_count() <= before,
        timeout=5,
        what=f"the helper's fds back to {before} (now {helper.fd_count()})",
    )
    assert helper.fd_count() == before
    assert isinstance(devices(), dict), "the helper still serves"
