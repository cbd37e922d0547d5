"""The client library's calls, seen on a fake bus."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from dbus_fast import Message, MessageFlag, MessageType, Variant

from tungui.client import Failed, HelperClient, InvalidArgument, NotAuthorized, to_spec
from tungui_contract.device import Device
from tungui_helper.listing import sealed_file


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


def _listing_reply(member: str, devices: list[dict[str, Variant]]) -> Message:
    """The helper's answer to ``member`` with ``devices``: variants, or a JSON file."""
    if member == "ListDevices":
        return Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=1,
            signature="aa{sv}",
            body=[devices],
        )
    return _file_reply(json.dumps([{k: v.value for k, v in d.items()} for d in devices]).encode())


def _file_reply(content: bytes) -> Message:
    """A ListDevicesByFileDescriptor answer: a sealed file holding ``content``."""
    return Message(
        message_type=MessageType.METHOD_RETURN,
        reply_serial=1,
        signature="h",
        body=[0],
        unix_fds=[sealed_file("test", content)],
    )


class _GatedBus:
    """Answers a device listing when told to, noting whether the collector ran meanwhile."""

    def __init__(self) -> None:
        self.collector_on_at_call: list[bool] = []
        self.answer: list[asyncio.Future[None]] = []
        self.members: list[str] = []

    async def call(self, msg: Message) -> Message:
        self.collector_on_at_call.append(gc.isenabled())
        self.members.append(str(msg.member))
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.answer.append(gate)
        await gate
        return _listing_reply(str(msg.member), _device_list(len(self.answer)))


def _list_with(
    method: str,
) -> Callable[[HelperClient], Coroutine[Any, Any, list[Device]]]:
    return {"file": HelperClient.list_devices, "reply": HelperClient.list_devices_in_reply}[method]


@pytest.mark.parametrize(
    ("method", "member"), [("file", "ListDevicesByFileDescriptor"), ("reply", "ListDevices")]
)
def test_device_lists_come_as_records(method: str, member: str) -> None:
    async def run() -> tuple[list[Device], _GatedBus]:
        bus = _GatedBus()
        client = HelperClient(bus)  # type: ignore[arg-type]
        task = asyncio.create_task(_list_with(method)(client))
        while not bus.answer:
            await asyncio.sleep(0)
        bus.answer[0].set_result(None)
        return await task, bus

    devices, bus = asyncio.run(run())
    assert bus.members == [member]
    wire = [{k: v.value for k, v in d.items()} for d in _device_list(1)]
    assert devices == [Device.from_wire(d) for d in wire]
    assert devices[0].addresses == ("192.0.2.1/24", "2001:db8::1/64")


@pytest.mark.parametrize("method", ["file", "reply"])
def test_listing_leaves_the_collector_alone(method: str) -> None:
    """A library must not switch the process's garbage collector (issue 11)."""

    async def run() -> _GatedBus:
        bus = _GatedBus()
        client = HelperClient(bus)  # type: ignore[arg-type]
        listing = asyncio.create_task(_list_with(method)(client))
        while not bus.answer:
            await asyncio.sleep(0)
        bus.answer[0].set_result(None)
        await listing
        return bus

    assert gc.isenabled()
    bus = asyncio.run(run())
    assert bus.collector_on_at_call == [True]
    assert gc.isenabled()


def test_a_helper_without_the_file_listing_is_asked_with_list_devices() -> None:
    def older_helper(msg: Message) -> Message:
        if msg.member == "ListDevicesByFileDescriptor":
            return Message(
                message_type=MessageType.ERROR,
                reply_serial=1,
                error_name="org.freedesktop.DBus.Error.UnknownMethod",
                signature="s",
                body=["No method ListDevicesByFileDescriptor here."],
            )
        return _listing_reply(str(msg.member), _device_list(3))

    bus = _FakeBus(older_helper)
    client = HelperClient(bus)  # type: ignore[arg-type]
    assert asyncio.run(client.list_devices())[0].name == "tap3"
    assert asyncio.run(client.list_devices())[0].index == 3
    # Asked once; from then on it goes straight to ListDevices.
    assert [m.member for m in bus.sent] == [
        "ListDevicesByFileDescriptor",
        "ListDevices",
        "ListDevices",
    ]


def _still_open(fd: int, inode: int) -> bool:
    """Whether ``fd`` is still the file with ``inode`` (its number may be reused)."""
    try:
        return os.fstat(fd).st_ino == inode
    except OSError:
        return False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[{", "not JSON"),
        (b'{"name": "tap0"}', "not a list of devices"),
        (b"[1, 2]", "not a list of devices"),
        (None, "sent no device list"),
    ],
)
def test_a_bad_device_list_file_is_a_named_failure(content: bytes | None, message: str) -> None:
    sent: list[tuple[int, int]] = []

    def answer(msg: Message) -> Message:
        if content is None:  # an "h" that names no fd
            return Message(
                message_type=MessageType.METHOD_RETURN, reply_serial=1, signature="h", body=[0]
            )
        reply = _file_reply(content)
        sent.extend((fd, os.fstat(fd).st_ino) for fd in reply.unix_fds)
        return reply

    client = HelperClient(_FakeBus(answer))  # type: ignore[arg-type]
    with pytest.raises(Failed, match=message):
        asyncio.run(client.list_devices())
    assert not any(_still_open(fd, inode) for fd, inode in sent)
