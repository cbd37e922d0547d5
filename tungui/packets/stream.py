"""Reading a capture stream from the helper (StartCapture), unprivileged.

Each message is a header (``CAPTURE_HEADER`` in the contract: drops and
sampled-out packets so far, and the format of the rest) and then either one
TPACKET_V3 block as the kernel filled it, or a batch of packets the helper
read from a device it holds (docs/dbus.md).  Walking the packets, decoding
them, keeping a bounded number and writing files all happen here, as the
user, so that the helper does no work per packet.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tungui_contract.capture import (
    CAPTURE_FORMAT_BLOCK,
    CAPTURE_FORMAT_SLOTS,
    CAPTURE_HEADER,
    CAPTURE_MESSAGE_MAX,
    CAPTURE_RATE,
    CAPTURE_SLOTS,
    INCOMING,
)

from .pcapng import CaptureWriter

#: The largest message on a capture stream.
MESSAGE_MAX = CAPTURE_MESSAGE_MAX

#: In struct tpacket_block_desc: num_pkts, offset_to_first_pkt.
_BLOCK = struct.Struct("=II")
_BLOCK_AT = 12
#: struct tpacket3_hdr: next offset, sec, nsec, snaplen, len, status, mac, net.
_PACKET = struct.Struct("=IIIIIIHH")
#: struct sockaddr_ll follows the 48-byte tpacket3_hdr; sll_pkttype is its 11th byte.
_PKTTYPE_AT = 48 + 10
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class Packet:
    """One captured packet."""

    timestamp_ns: int
    original_length: int
    #: Packets lost so far in this capture (kernel or slow reader).
    dropped: int
    #: Sent by the host through the device (rather than received by it).
    outgoing: bool
    data: bytes
    #: Packets left out so far by sampling (the capture's max_rate).
    sampled: int = 0


def parse_message(message: bytes) -> list[Packet]:
    """The packets of one message of a capture stream."""
    if len(message) < CAPTURE_HEADER.size:
        return []
    dropped, sampled, kind, _reserved = CAPTURE_HEADER.unpack_from(message)
    body = memoryview(message)[CAPTURE_HEADER.size :]
    if kind == CAPTURE_FORMAT_BLOCK:
        return _block(body, dropped, sampled)
    if kind == CAPTURE_FORMAT_SLOTS:
        return _slots(body, dropped, sampled)
    return []  # a format this version does not know


def _block(block: memoryview, dropped: int, sampled: int) -> list[Packet]:
    if len(block) < _BLOCK_AT + _BLOCK.size:
        return []
    count, offset = _BLOCK.unpack_from(block, _BLOCK_AT)
    packets = []
    for _ in range(count):
        if offset + _PACKET.size > len(block):
            break
        next_offset, sec, nsec, snaplen, length, _status, mac, _net = _PACKET.unpack_from(
            block, offset
        )
        outgoing = block[offset + _PKTTYPE_AT] == PACKET_OUTGOING
        data = bytes(block[offset + mac : offset + mac + snaplen])
        packets.append(Packet(sec * 1_000_000_000 + nsec, length, dropped, outgoing, data, sampled))
        if not next_offset:
            break
        offset += next_offset
    return packets


def _slots(body: memoryview, dropped: int, sampled: int) -> list[Packet]:
    if len(body) < CAPTURE_SLOTS.size:
        return []
    count, stride, prefix, snaplen = CAPTURE_SLOTS.unpack_from(body)
    lengths_at = CAPTURE_SLOTS.size
    stamps_at = lengths_at + 4 * count + (4 * count) % 8
    slots_at = stamps_at + 8 * count
    if prefix > stride or slots_at + count * stride > len(body):
        return []
    lengths = body[lengths_at : lengths_at + 4 * count].cast("I")
    stamps = body[stamps_at : stamps_at + 8 * count].cast("Q")
    packets = []
    for i in range(count):
        length = lengths[i] & ~INCOMING
        start = slots_at + i * stride
        data = bytes(body[start + prefix : start + min(length, stride, prefix + snaplen)])
        packets.append(
            Packet(
                stamps[i],
                max(length - prefix, 0),
                dropped,
                # The helper read it: the host sent it through the device.
                not lengths[i] & INCOMING,
                data,
                sampled,
            )
        )
    return packets


def write_packets(writer: CaptureWriter, interface: int, packets: Iterable[Packet]) -> None:
    """Write captured packets to a pcapng file, each with its direction."""
    for packet in packets:
        writer.write(
            interface,
            packet.timestamp_ns,
            packet.data,
            packet.original_length,
            inbound=not packet.outgoing,
        )


def ask_rate(stream: socket.socket, max_rate: int) -> None:
    """Ask for at most ``max_rate`` packets a second on this stream from now on (0: all).

    The helper samples above it, as StartCapture's ``max_rate`` does.
    """
    stream.send(CAPTURE_RATE.pack(max_rate))


def read_packets(stream: socket.socket, limit: int | None = None) -> Iterator[Packet]:
    """The packets of a (blocking) capture stream, until it ends or ``limit`` are read."""
    count = 0
    while limit is None or count < limit:
        message = stream.recv(MESSAGE_MAX)
        if not message:
            return
        for packet in parse_message(message):
            yield packet
            count += 1
            if limit is not None and count >= limit:
                return
