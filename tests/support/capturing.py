"""What the capture tests share: a transient TUN to capture, and reading a stream dry."""

from __future__ import annotations

import contextlib
import socket

from tungui.packets.stream import Packet, read_packets

#: CreateDevice's spec for a TUN the helper holds (it reads the device itself).
TRANSIENT_TUN: dict[str, object] = {
    "mode": "tun",
    "name": "held%d",
    "addresses": ["192.0.2.1/24"],
    "up": True,
}


def until_quiet(stream: socket.socket) -> list[Packet]:
    """Every packet until the stream has been quiet for a second."""
    stream.settimeout(1.0)
    packets: list[Packet] = []
    with contextlib.suppress(TimeoutError):
        packets.extend(read_packets(stream))
    return packets
