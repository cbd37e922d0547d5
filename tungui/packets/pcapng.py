"""Captures saved as pcapng files, which Wireshark and tshark open.

The front end writes the file, as the user, from the packets the helper
hands over (as Wireshark's dumpcap would, the privileged side only
captures).  One Section Header Block, one Interface Description Block per
device, one Enhanced Packet Block per packet; little-endian throughout
(readers follow the byte-order magic).

Link types, per device:

``"ethernet"`` (TAP)
    LINKTYPE_ETHERNET (1).
``"ip"`` (TUN without packet info)
    LINKTYPE_RAW (101): the IP version nibble says IPv4 or IPv6.
``"tun_pi"`` (TUN with packet info)
    Also LINKTYPE_RAW, with the 4-byte packet-info header stripped from
    every packet (and from its original length).  That is what dumpcap
    itself writes for a capture on a Linux TUN device (ARPHRD_NONE), so the
    file reads the same however it was made.  LINKTYPE_NULL would keep a
    4-byte header but not this one: its header is an address family in the
    writer's byte order (2 for IPv4; 24, 28 or 30 for IPv6, never Linux's
    10), while packet info holds flags and an ethertype, so the header would
    have to be rewritten anyway, and the flags mean nothing to a reader.

Every interface has ``if_tsresol`` = 9 (timestamps count nanoseconds) and
``if_name``.  The snap length is honoured: a packet longer than its
interface's snap length is cut to it, and its original length is kept.  A
packet's direction, where known, is its ``epb_flags`` option: the helper's
capture stream says it for each packet (docs/dbus.md, "Capture"), and
Wireshark shows it.

The helper captures from an ``AF_PACKET`` socket, which never sees packet
info, so its TUN captures are ``"ip"``; ``"tun_pi"`` is here for packets
read from the device itself (or built to inject into one).

Why not dpkt's ``pcapng.Writer`` (1.9.8): it writes every packet with its
original length equal to its captured length, takes timestamps as float
seconds and writes microseconds, and takes all interfaces when the file is
opened.  Each would need its block classes patched; the format needs a few
``struct.pack`` calls.
"""

from __future__ import annotations

import struct
from types import TracebackType
from typing import BinaryIO

from tungui import __version__

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
#: The pcapng link type for each of tungui's link types.
LINKTYPES = {"ethernet": LINKTYPE_ETHERNET, "ip": LINKTYPE_RAW, "tun_pi": LINKTYPE_RAW}

_TUN_PI_LENGTH = 4  # struct tun_pi: flags (2 bytes), proto (2 bytes)
_U32_MAX = 0xFFFF_FFFF

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_ENDOFOPT = 0
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_TSRESOL = 9
_TSRESOL_NANOSECONDS = 9  # 10^-9 s
_EPB_FLAGS = 2
_INBOUND, _OUTBOUND = 0b01, 0b10  # epb_flags bits 0-1


class CaptureWriter:
    """Writes packets from one or more devices to a pcapng file.

    The Section Header Block is written at once; an interface can be added
    at any time, before its first packet.  Use it as a context manager, or
    call :meth:`close`.  The file stays the caller's: closing the writer
    flushes it and leaves it open, as :mod:`zipfile` and :mod:`tarfile` do
    with a file object they are given.

    Args:
        file: a binary file open for writing, at its start.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._interfaces: list[tuple[str, int]] = []  # (link, snaplen) per interface id
        self._closed = False
        options = _option(_SHB_USERAPPL, f"tungui {__version__}".encode())
        # Version 1.0; section length -1: not known while writing.
        body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + options + _end_of_options()
        self._file.write(_block(_SHB, body))

    def add_interface(self, name: str, link: str, snaplen: int) -> int:
        """Describe one capturing device.

        Args:
            name: the device's name, such as ``tap0`` (written as ``if_name``).
            link: ``"ethernet"`` (TAP), ``"ip"`` (TUN) or ``"tun_pi"`` (TUN with
                packet info); see the module docstring.
            snaplen: the most bytes kept of a packet, 0 for no limit (on a
                ``"tun_pi"`` interface, after its packet-info header is stripped).

        Returns:
            The interface id to give :meth:`write` (0 for the first, then 1, …).

        Raises:
            ValueError: an unknown link type, a snap length out of range, or
                a name longer than 65,535 bytes.
        """
        self._check_open()
        if link not in LINKTYPES:
            raise ValueError(f"unknown link type {link!r}; expected one of {', '.join(LINKTYPES)}")
        if not 0 <= snaplen <= _U32_MAX:
            raise ValueError(f"snap length {snaplen} is out of range (0 to {_U32_MAX})")
        options = _option(_IF_NAME, name.encode())
        options += _option(_IF_TSRESOL, bytes([_TSRESOL_NANOSECONDS]))
        body = struct.pack("<HHI", LINKTYPES[link], 0, snaplen) + options + _end_of_options()
        self._file.write(_block(_IDB, body))
        self._interfaces.append((link, snaplen))
        return len(self._interfaces) - 1

    def write(
        self,
        interface_id: int,
        timestamp_ns: int,
        data: bytes,
        original_length: int,
        *,
        inbound: bool | None = None,
    ) -> None:
        """Write one packet.

        Args:
            interface_id: what :meth:`add_interface` returned for its device.
            timestamp_ns: when it was captured, in nanoseconds since the epoch.
            data: the packet as captured (with the packet-info header on a
                ``"tun_pi"`` interface; it is stripped here).
            original_length: its length on the wire, at least ``len(data)``
                (more when the capture already cut it short).
            inbound: True for a packet the device received (from its program,
                or the wire: direction 0 of the capture stream), False for one
                the host sent through it (direction 1); None: not known, and
                not written.

        Raises:
            ValueError: an unknown interface, a timestamp out of pcapng's
                range, or an original length shorter than the data.
        """
        self._check_open()
        if not 0 <= interface_id < len(self._interfaces):
            raise ValueError(f"no interface {interface_id} in this capture")
        if not 0 <= timestamp_ns < 1 << 64:
            raise ValueError(f"timestamp {timestamp_ns} ns is out of range")
        if original_length < len(data):
            raise ValueError(
                f"original length {original_length} is shorter than the data ({len(data)} bytes)"
            )
        if original_length > _U32_MAX:
            raise ValueError(f"original length {original_length} is out of range")
        link, snaplen = self._interfaces[interface_id]
        if link == "tun_pi":
            data = data[_TUN_PI_LENGTH:]
            original_length = max(0, original_length - _TUN_PI_LENGTH)
        if snaplen:
            data = data[:snaplen]
        header = struct.pack(
            "<IIIII",
            interface_id,
            timestamp_ns >> 32,
            timestamp_ns & _U32_MAX,
            len(data),
            original_length,
        )
        options = b""
        if inbound is not None:
            flags = _INBOUND if inbound else _OUTBOUND
            options = _option(_EPB_FLAGS, struct.pack("<I", flags)) + _end_of_options()
        self._file.write(_block(_EPB, header + _padded(bytes(data)) + options))

    def close(self) -> None:
        """Flush the file; the writer takes no more interfaces or packets."""
        if not self._closed:
            self._closed = True
            self._file.flush()

    def __enter__(self) -> CaptureWriter:
        """The writer itself."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the writer (not the file)."""
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the capture writer is closed")


def _padded(value: bytes) -> bytes:
    """``value`` padded with zeros to a multiple of 4 bytes."""
    return value + bytes(-len(value) % 4)


def _option(code: int, value: bytes) -> bytes:
    """One option: code, length, value padded to 32 bits."""
    if len(value) > 0xFFFF:
        raise ValueError(f"an option of {len(value)} bytes does not fit in pcapng")
    return struct.pack("<HH", code, len(value)) + _padded(value)


def _end_of_options() -> bytes:
    return struct.pack("<HH", _OPT_ENDOFOPT, 0)


def _block(kind: int, body: bytes) -> bytes:
    """A whole block: type, total length, body, total length again."""
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)
