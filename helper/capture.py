"""Packet capture for one caller: a TPACKET_V3 ring in, a private stream out.

The helper maps a packet socket's receive ring (TPACKET_V3) bound to the
device and passes each block the kernel fills, whole, to its end of a
socket pair; the caller gets the other end, and only that, over D-Bus fd
passing, and walks the packets itself, unprivileged.  The helper does no
work per packet: per-packet Python was ~60x tcpdump's CPU a packet
(bench/capture.py), a block at a time is not.

The caller never holds the packet socket itself: a packet socket can be
re-bound to any interface and can send to any, which would hand out capture
and injection everywhere.

Bounded whatever the traffic: the kernel cuts each packet to the snap length
(a classic BPF program, locked), the ring and the stream's buffer are fixed,
and a block the reader is too slow for is dropped and its packets counted.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import mmap
import socket
import struct
from collections.abc import Callable

from .contract import CAPTURE_BLOCK_HEADER
from .errors import Failed

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
SO_SNDBUFFORCE = 32
#: struct tpacket_req3: block size, block count, frame size, frame count,
#: retire timeout (ms), private size, feature word.
_REQ3 = struct.Struct("=IIIIIII")
#: In struct tpacket_block_desc: block_status, num_pkts, offset_to_first_pkt, blk_len.
_BLOCK = struct.Struct("=IIII")
_BLOCK_STATUS = 8
_STATS = struct.Struct("=III")  # tpacket_stats_v3: packets, drops, freeze_q_cnt
BLOCK_SIZE = 1 << 18
BLOCKS = 16
FRAME_SIZE = 1 << 11
#: A block is handed over when full, or this many ms after its first packet.
RETIRE_MS = 50
#: Room in the stream for all blocks of the ring.
BUFFER = (BLOCK_SIZE + 64) * BLOCKS


def snaplen_filter(snaplen: int) -> bytes:
    """A classic BPF program that accepts every packet, cut to ``snaplen`` bytes."""
    ret_k = 0x06  # BPF_RET | BPF_K
    return struct.pack("=HBBI", ret_k, 0, 0, snaplen)


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
            buffer = bytearray(snaplen_filter(snaplen))
            fprog = struct.pack("HL", 1, _address_of(buffer))
            packet.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            packet.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
            packet.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            packet.setsockopt(
                SOL_PACKET,
                PACKET_RX_RING,
                _REQ3.pack(
                    BLOCK_SIZE,
                    BLOCKS,
                    FRAME_SIZE,
                    BLOCK_SIZE * BLOCKS // FRAME_SIZE,
                    RETIRE_MS,
                    0,
                    0,
                ),
            )
            ring = mmap.mmap(
                packet.fileno(),
                BLOCK_SIZE * BLOCKS,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
            packet.bind((device, ETH_P_ALL))
            packet.setblocking(False)
        except OSError as exc:
            packet.close()
            if exc.errno == errno.ENODEV:
                raise Failed(f"{device} went away before its capture could start.") from None
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        self._ring = ring
        self._block = 0
        self._packet = packet
        self._ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The helper is root: past net.core.wmem_max, so the stream holds
        # the whole ring.
        try:
            self._ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, BUFFER)
        except OSError:
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
        self._ring.close()
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
        # Reading the statistics resets them: they add up to the total.
        stats = self._packet.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        return int(_STATS.unpack(stats)[1])

    def _pump(self) -> None:
        """Pass on every block the kernel has handed over, then give them back."""
        ring = self._ring
        self.dropped += self._kernel_drops()
        for _ in range(BLOCKS):
            offset = self._block * BLOCK_SIZE
            status, packets, _first, length = _BLOCK.unpack_from(ring, offset + _BLOCK_STATUS)
            if not status & TP_STATUS_USER:
                break
            message = (
                CAPTURE_BLOCK_HEADER.pack(min(self.dropped, 0xFFFFFFFF), 0)
                + ring[offset : offset + length]
            )
            struct.pack_into("=I", ring, offset + _BLOCK_STATUS, TP_STATUS_KERNEL)
            self._block = (self._block + 1) % BLOCKS
            try:
                self._ours.send(message)
                self.sent += packets
            except BlockingIOError:
                self.dropped += packets  # the reader is behind: drop, count, go on
            except OSError:
                self.stop()
                return


def _address_of(buffer: bytearray) -> int:
    """The address of a buffer, for struct sock_fprog."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
