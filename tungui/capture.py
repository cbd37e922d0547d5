"""Reading a capture stream from the helper (StartCapture), unprivileged.

Each record is one packet: a fixed header (``CAPTURE_RECORD`` in the
contract) and the captured bytes.  Decoding packets, keeping a bounded
number of them and writing files all happen here, as the user.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

from tungui_helper.contract import CAPTURE_DIRECTION_OUT, CAPTURE_MAX_SNAPLEN, CAPTURE_RECORD

#: The largest record: the header and a full snap length.
RECORD_MAX = CAPTURE_RECORD.size + CAPTURE_MAX_SNAPLEN


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


def parse_record(record: bytes) -> Packet:
    """One record of a capture stream as a :class:`Packet`."""
    timestamp, original, dropped, direction, _reserved = CAPTURE_RECORD.unpack_from(record)
    return Packet(
        timestamp, original, dropped, direction == CAPTURE_DIRECTION_OUT,
        bytes(record[CAPTURE_RECORD.size :]),
    )  # fmt: skip


def read_packets(stream: socket.socket, limit: int | None = None) -> Iterator[Packet]:
    """The packets of a (blocking) capture stream, until it ends or ``limit`` are read."""
    count = 0
    while limit is None or count < limit:
        record = stream.recv(RECORD_MAX)
        if not record:
            return
        count += 1
        yield parse_record(record)
