"""Reading the messages of a capture stream (both formats), as the window does."""

from __future__ import annotations

import struct
from array import array

from hypothesis import given
from hypothesis import strategies as st

from tungui.packets.stream import parse_message
from tungui_contract.capture import CAPTURE_FORMAT_SLOTS, CAPTURE_HEADER, CAPTURE_SLOTS, INCOMING


def slots_message(
    packets: list[tuple[bytes, bool]],
    *,
    stride: int,
    prefix: int,
    snaplen: int,
    dropped: int = 0,
    sampled: int = 0,
) -> bytes:
    """A message as the helper sends it for a device it holds."""
    lengths = array("I", [len(p) | (INCOMING if incoming else 0) for p, incoming in packets])
    stamps = array("Q", [1_700_000_000_000_000_000 + 1000 * i for i in range(len(packets))])
    pad = b"\0" * ((4 * len(packets)) % 8)
    slots = b"".join(p[:stride].ljust(stride, b"\xee") for p, _ in packets)
    return (
        CAPTURE_HEADER.pack(dropped, sampled, CAPTURE_FORMAT_SLOTS, 0)
        + CAPTURE_SLOTS.pack(len(packets), stride, prefix, snaplen)
        + lengths.tobytes()
        + pad
        + stamps.tobytes()
        + slots
    )


def test_slots_give_each_packet_without_its_prefix_cut_to_the_snap_length() -> None:
    pi = struct.pack("!HH", 0, 0x0800)
    long_packet = pi + bytes(range(100))
    short_packet = pi + b"\x45" + bytes(30)
    message = slots_message(
        [(long_packet, False), (short_packet, True), (long_packet, False)],
        stride=72,
        prefix=4,
        snaplen=64,
        dropped=3,
        sampled=7,
    )
    first, second, third = parse_message(message)
    assert first.data == bytes(range(64)) and first.original_length == 100
    assert first.outgoing and not second.outgoing and third.outgoing
    assert second.data == short_packet[4:] and second.original_length == 31
    assert [p.timestamp_ns % 10**6 for p in (first, second, third)] == [0, 1000, 2000]
    assert (third.dropped, third.sampled) == (3, 7)


@given(
    st.lists(st.tuples(st.binary(min_size=0, max_size=300), st.booleans()), max_size=40),
    st.integers(0, 16),
    st.integers(1, 300),
)
def test_any_batch_reads_back(packets: list[tuple[bytes, bool]], prefix: int, snaplen: int) -> None:
    stride = (prefix + snaplen + 7) & ~7
    message = slots_message(packets, stride=stride, prefix=prefix, snaplen=snaplen)
    read = parse_message(message)
    assert len(read) == len(packets)
    for got, (sent, incoming) in zip(read, packets, strict=True):
        assert got.data == sent[prefix : prefix + snaplen]
        assert got.original_length == max(len(sent) - prefix, 0)
        assert got.outgoing is not incoming


def test_a_truncated_or_unknown_message_gives_nothing() -> None:
    message = slots_message([(b"x" * 40, False)], stride=40, prefix=0, snaplen=40)
    assert parse_message(message[:-1]) == []
    assert parse_message(CAPTURE_HEADER.pack(0, 0, 99, 0) + b"\0" * 64) == []
    assert parse_message(b"\0" * 3) == []
