"""Reading a capture stream from the helper (StartCapture), unprivileged.

Each message is one TPACKET_V3 block as the kernel filled it, after a small
header (``CAPTURE_BLOCK_HEADER`` in the contract); walking the packets in
it, decoding them, keeping a bounded number and writing files all happen
here, as the user, so that the helper does no work per packet.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from tungui_helper.contract import CAPTURE_BLOCK_HEADER

#: The largest message: the header and one block of the helper's ring.
MESSAGE_MAX = CAPTURE_BLOCK_HEADER.size + (1 << 18)

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


def parse_message(message: bytes) -> list[Packet]:
    """The packets of one message of a capture stream."""
    dropped, _reserved = CAPTURE_BLOCK_HEADER.unpack_from(message)
    block = memoryview(message)[CAPTURE_BLOCK_HEADER.size :]
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
        packets.append(Packet(sec * 1_000_000_000 + nsec, length, dropped, outgoing, data))
        if not next_offset:
            break
        offset += next_offset
    return packets


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
