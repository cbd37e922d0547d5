"""Reply bodies marshalled once and sent many times.

ListDevices with 1,000 devices is a 520 KB body of about 21,000 variants;
marshalling it costs more than ``ip -d -s -j link show`` takes to answer
whole, and it is the same bytes until a device changes.  So the helper keeps
the marshalled body and sends it again: :class:`MarshalledReply` is a method
return whose header dbus-fast builds as usual (around a placeholder body of
the same signature) and whose body is the kept bytes.

dbus-fast writes a message by calling its ``_marshall`` (a ``cpdef`` in the
compiled builds, so an override in a subclass is honoured); that hook has
the same shape from 1.84 (Debian 12) to 5.x, and the tests run on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dbus_fast import Message, MessageType

#: Offset of the body length in a message header (after the endianness,
#: type, flags and version bytes).
_BODY_LENGTH = slice(4, 8)


def _byteorder(data: bytes | bytearray) -> Literal["little", "big"]:
    return "little" if data[:1] == b"l" else "big"


def _body_of(data: bytes | bytearray) -> bytes:
    length = int.from_bytes(data[_BODY_LENGTH], _byteorder(data))
    return bytes(data[len(data) - length :])


@dataclass(frozen=True)
class MarshalledBody:
    """A body of one array type, marshalled.

    Bodies begin 8-aligned in every message, so the bytes are the same
    whatever header they follow.
    """

    signature: str
    data: bytes

    @classmethod
    def of(cls, signature: str, array: list[Any]) -> MarshalledBody:
        """Marshal ``[array]`` as a body of ``signature`` (an array type)."""
        if not signature.startswith("a"):
            raise ValueError(f"only array bodies are kept marshalled, not {signature}")
        message = Message(path="/", member="M", signature=signature, body=[array])
        return cls(signature, _body_of(message._marshall(False)))


class MarshalledReply(Message):
    """The method return to ``call`` carrying a body marshalled earlier."""

    def __init__(self, call: Message, body: MarshalledBody) -> None:
        # An empty array of the same signature stands in for the body while
        # dbus-fast builds the header; _marshall swaps the bytes in.
        super().__init__(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=call.serial,
            destination=call.sender,
            signature=body.signature,
            body=[[]],
        )
        self.marshalled = body

    def _marshall(self, negotiate_unix_fd: bool) -> bytearray:
        data = super()._marshall(negotiate_unix_fd)
        placeholder = int.from_bytes(data[_BODY_LENGTH], _byteorder(data))
        out = bytearray(data[: len(data) - placeholder])
        out[_BODY_LENGTH] = len(self.marshalled.data).to_bytes(4, _byteorder(data))
        out += self.marshalled.data
        return out
