"""The client library's calls, seen on a fake bus."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from dbus_fast import Message, MessageFlag, MessageType, Variant

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


def _device_list(index: int) -> list[dict[str, Variant]]:
    return [
        {
            "name": Variant("s", f"tap{index}"),
            "index": Variant("u", index),
            "addresses": Variant("as", ["192.0.2.1/24", "2001:db8::1/64"]),
            "up": Variant("b", True),
        }
    ]


class _GatedBus:
    """Answers ListDevices when told to, noting whether the collector ran meanwhile."""

    def __init__(self) -> None:
        self.collector_on_at_call: list[bool] = []
        self.answer: list[asyncio.Future[None]] = []

    async def call(self, msg: Message) -> Message:
        self.collector_on_at_call.append(gc.isenabled())
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.answer.append(gate)
        await gate
        return Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=1,
            signature="aa{sv}",
            body=[_device_list(len(self.answer))],
        )


def test_list_devices_unwraps_the_variants() -> None:
    async def run() -> list[dict[str, Any]]:
        bus = _GatedBus()
        client = HelperClient(bus)  # type: ignore[arg-type]
        task = asyncio.create_task(client.list_devices())
        while not bus.answer:
            await asyncio.sleep(0)
        bus.answer[0].set_result(None)
        return await task

    devices = asyncio.run(run())
    assert devices == [{k: v.value for k, v in d.items()} for d in _device_list(1)]
    assert devices[0]["addresses"] == ["192.0.2.1/24", "2001:db8::1/64"]


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_off_while_device_lists_come_in(enabled_before: bool) -> None:
    async def run() -> _GatedBus:
        bus = _GatedBus()
        client = HelperClient(bus)  # type: ignore[arg-type]
        first = asyncio.create_task(client.list_devices())
        second = asyncio.create_task(client.list_devices())
        while len(bus.answer) < 2:
            await asyncio.sleep(0)
        bus.answer[0].set_result(None)
        await first
        # The second list is still on its way: the collector stays off.
        assert not gc.isenabled()
        bus.answer[1].set_result(None)
        await second
        return bus

    was = gc.isenabled()
    try:
        if not enabled_before:
            gc.disable()
        bus = asyncio.run(run())
        assert bus.collector_on_at_call == [False, False]
        # Back to what it was: a program that turned it off keeps it off.
        assert gc.isenabled() == enabled_before
    finally:
        if was:
            gc.enable()
