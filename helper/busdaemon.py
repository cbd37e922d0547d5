"""Calls to the bus daemon itself, and the one signal of it the helper follows."""

from __future__ import annotations

from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

DAEMON = "org.freedesktop.DBus"

#: Every unique name that leaves the bus (a client gone: what it held is let go).
NAME_OWNER_GONE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg2=''"
)


def name_gone(msg: Message) -> str | None:
    """The name a NameOwnerChanged signal says left the bus, if ``msg`` is one."""
    if (
        msg.message_type == MessageType.SIGNAL
        and msg.member == "NameOwnerChanged"
        and msg.sender == DAEMON
        and not msg.body[2]
    ):
        return str(msg.body[0])
    return None


async def call(bus: MessageBus, member: str, signature: str, body: list[Any]) -> Message | None:
    """Call a method of the bus daemon."""
    return await bus.call(
        Message(
            destination=DAEMON,
            path="/org/freedesktop/DBus",
            interface=DAEMON,
            member=member,
            signature=signature,
            body=body,
        )
    )


async def still_connected(bus: MessageBus, name: str) -> bool:
    """Whether a unique name is still on the bus (a caller may leave mid-call)."""
    reply = await call(bus, "NameHasOwner", "s", [name])
    return bool(reply is not None and reply.body and reply.body[0])
