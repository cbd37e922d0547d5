"""The client library's calls, seen on a fake bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dbus_fast import Message, MessageFlag, MessageType

from tungui.client import HelperClient, InvalidArgument, NotAuthorized, to_spec


class _FakeBus:
    def __init__(self, reply: Any = None) -> None:
        self.sent: list[Message] = []
        self.reply = reply

    async def call(self, msg: Message) -> Message:
        self.sent.append(msg)
        if self.reply is not None:
            return self.reply(msg)  # type: ignore[no-any-return]
        return Message(
            message_type=MessageType.METHOD_RETURN, reply_serial=1, signature="s", body=["tap0"]
        )


def test_person_started_calls_allow_interactive_authorization() -> None:
    bus = _FakeBus()
    client = HelperClient(bus)  # type: ignore[arg-type]
    name = asyncio.run(client.create_device({"mode": "tap", "mtu": 1400}))
    assert name == "tap0"
    (msg,) = bus.sent
    assert int(msg.flags) & int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
    assert msg.member == "CreateDevice" and msg.signature == "a{sv}"
    assert msg.body[0]["mtu"].signature == "u"

    asyncio.run(client.create_device({"mode": "tap"}, interactive=False))
    assert not int(bus.sent[1].flags) & int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)


def test_errors_become_exceptions_with_the_helpers_sentence() -> None:
    def refuse(msg: Message) -> Message:
        return Message(
            message_type=MessageType.ERROR,
            reply_serial=1,
            error_name="io.github.tungui.Error.NotAuthorized",
            signature="s",
            body=["You are not allowed to do that."],
        )

    client = HelperClient(_FakeBus(refuse))  # type: ignore[arg-type]
    with pytest.raises(NotAuthorized) as refused:
        asyncio.run(client.delete_device("tap0"))
    assert refused.value.message == "You are not allowed to do that."
    assert refused.value.name == "io.github.tungui.Error.NotAuthorized"


def test_unknown_keys_are_refused_before_sending() -> None:
    with pytest.raises(InvalidArgument, match="colour"):
        to_spec({"colour": "red"})
