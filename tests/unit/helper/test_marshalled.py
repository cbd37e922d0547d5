"""A reply body marshalled once is the same message as one marshalled anew."""

from __future__ import annotations

import io
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast._private.unmarshaller import Unmarshaller

from tungui_helper.marshalled import MarshalledBody, MarshalledReply

DEVICES: list[Any] = [
    {
        "name": Variant("s", "tap0"),
        "index": Variant("u", 7),
        "up": Variant("b", True),
        "owner": Variant("i", -1),
        "addresses": Variant("as", ["192.0.2.1/24", "2001:db8::1/64"]),
    },
    {"name": Variant("s", "br0"), "mtu": Variant("u", 1500)},
]


def call(serial: int = 41) -> Message:
    msg = Message(
        destination="io.github.tungui.Helper1",
        path="/io/github/tungui/Helper1",
        interface="io.github.tungui.Helper1",
        member="ListDevices",
        serial=serial,
    )
    msg.sender = ":1.7"
    return msg


@pytest.mark.parametrize("devices", [DEVICES, []])
def test_the_bytes_equal_a_reply_marshalled_anew(devices: list[Any]) -> None:
    kept = MarshalledBody.of("aa{sv}", devices)
    for serial in (41, 42):  # one body, two replies
        reply = MarshalledReply(call(serial), kept)
        reply.serial = 9
        fresh = Message.new_method_return(call(serial), "aa{sv}", [devices])
        fresh.serial = 9
        assert bytes(reply._marshall(False)) == bytes(fresh._marshall(False))


def test_a_reader_gets_the_body_back() -> None:
    reply = MarshalledReply(call(), MarshalledBody.of("aa{sv}", DEVICES))
    reply.serial = 3
    reader = Unmarshaller(io.BytesIO(bytes(reply._marshall(False))))  # type: ignore[arg-type]
    reader.unmarshall()
    got = reader.message
    assert got is not None
    assert got.message_type == MessageType.METHOD_RETURN and got.reply_serial == 41
    assert got.signature == "aa{sv}"
    assert [{k: v.value for k, v in d.items()} for d in got.body[0]] == [
        {k: v.value for k, v in d.items()} for d in DEVICES
    ]


def test_only_array_bodies_are_kept() -> None:
    with pytest.raises(ValueError, match="array"):
        MarshalledBody.of("s", ["x"])
