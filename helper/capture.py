"""Packet capture for one caller: an AF_PACKET socket in, a private stream out.

The helper reads packets from a packet socket bound to the device and
writes one record per packet to its end of a socket pair; the caller gets
the other end, and only that, over D-Bus fd passing.  The caller never holds
the packet socket itself: a packet socket can be re-bound to any interface
and can send to any, which would hand out capture and injection everywhere.

Bounded whatever the traffic: the kernel cuts each packet to the snap length
(a classic BPF program, locked), the socket buffers are fixed, and a record
the reader is too slow for is dropped and counted, never queued in Python.
No packet is parsed here beyond the lengths.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket
import struct
from collections.abc import Callable

from .contract import CAPTURE_DIRECTION_IN, CAPTURE_DIRECTION_OUT, CAPTURE_RECORD
from .errors import Failed

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
#: struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_AUXDATA = struct.Struct("=IIIHHHH")
_TIMESPEC = struct.Struct("=qq")
_STATS = struct.Struct("=II")  # tpacket_stats: packets, drops
#: Packets read per wake-up, so one busy capture cannot starve the helper.
BATCH = 256
BUFFER = 4 * 1024 * 1024


def snaplen_filter(snaplen: int) -> bytes:
    """A classic BPF program that accepts every packet, cut to ``snaplen`` bytes."""
    ret_k = 0x06  # BPF_RET | BPF_K
    program = struct.pack("=HBBI", ret_k, 0, 0, snaplen)
    return program


class Capture:
    """One capture of one device for one client.

    Args:
        device: the interface name.
        snaplen: bytes kept of each packet.
        client: the caller's unique bus name.
        on_end: called once when the capture ends.
    """

    def __init__(
        self, device: str, snaplen: int, client: str, on_end: Callable[[Capture], None]
    ) -> None:
        self.device = device
        self.snaplen = snaplen
        self.client = client
        self._on_end = on_end
        self.dropped = 0
        self.sent = 0
        self._ended = False
        self._loop: asyncio.AbstractEventLoop | None = None
        packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            program = snaplen_filter(snaplen)
            buffer = bytearray(program)
            fprog = struct.pack("HL", 1, _address_of(buffer))
            packet.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            packet.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
            packet.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            packet.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            packet.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
            packet.bind((device, ETH_P_ALL))
            packet.setblocking(False)
        except OSError as exc:
            packet.close()
            if exc.errno == errno.ENODEV:
                raise Failed(f"{device} went away before its capture could start.") from None
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        self._packet = packet
        self._ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        self._ours.setblocking(False)

    def start(self) -> None:
        """Begin streaming (after the caller has its end)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._packet.fileno(), self._pump)
        # Readable at the end of the stream (the reader closed its end), or
        # if the reader writes, which it has no reason to: that is discarded.
        self._loop.add_reader(self._ours.fileno(), self._from_reader)

    def stop(self) -> None:
        """End the capture and free everything it holds."""
        if self._ended:
            return
        self._ended = True
        if self._loop is not None:
            self._loop.remove_reader(self._packet.fileno())
            self._loop.remove_reader(self._ours.fileno())
        self._packet.close()
        self._ours.close()
        self.theirs.close()
        self._on_end(self)

    def _from_reader(self) -> None:
        try:
            data = self._ours.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.debug("capture of %s for %s: reader closed", self.device, self.client)
            self.stop()

    def _kernel_drops(self) -> int:
        stats = self._packet.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        return int(_STATS.unpack(stats)[1])

    def _pump(self) -> None:
        ancillary = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size)
        for _ in range(BATCH):
            try:
                data, cmsgs, _flags, address = self._packet.recvmsg(self.snaplen, ancillary)
            except BlockingIOError:
                break
            except OSError as exc:
                log.info("capture of %s ended: %s", self.device, exc.strerror)
                self.stop()
                return
            original = len(data)
            timestamp = 0
            for level, kind, payload in cmsgs:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    original = _AUXDATA.unpack_from(payload)[1]
                elif level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
                    timestamp = seconds * 1_000_000_000 + nanoseconds
            outgoing = len(address) > 2 and address[2] == PACKET_OUTGOING
            record = (
                CAPTURE_RECORD.pack(
                    timestamp,
                    original,
                    min(self.dropped, 0xFFFFFFFF),
                    CAPTURE_DIRECTION_OUT if outgoing else CAPTURE_DIRECTION_IN,
                    0,
                )
                + data
            )
            try:
                self._ours.send(record)
                self.sent += 1
            except BlockingIOError:
                self.dropped += 1  # the reader is behind: drop, count, go on
            except OSError:
                self.stop()
                return
        self.dropped += self._kernel_drops()


def _address_of(buffer: bytearray) -> int:
    """The address of a buffer, for struct sock_fprog."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
