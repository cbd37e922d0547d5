"""A packet socket's receive ring (TPACKET_V3), bound to one device.

The kernel fills blocks of the ring with packets and hands each over when
it is full or RETIRE_MS after its first packet; the helper passes a block
on whole and gives it back, so it does no work per packet (per-packet
Python was ~60x tcpdump's CPU a packet, bench/capture.py; a block at a time
is not).  The layout is linux/if_packet.h's.
"""

from __future__ import annotations

import errno
import mmap
import socket
import struct
from typing import NamedTuple

from tungui_contract.errors import Failed

from .bpf import attach_filter

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
#: struct tpacket_req3: block size, block count, frame size, frame count,
#: retire timeout (ms), private size, feature word.
_REQ3 = struct.Struct("=IIIIIII")
#: In struct tpacket_block_desc: block_status, num_pkts, offset_to_first_pkt, blk_len.
_BLOCK = struct.Struct("=IIII")
_BLOCK_STATUS = 8
#: In struct tpacket_block_desc: ts_first_pkt and ts_last_pkt (seconds, nanoseconds).
_TS2 = struct.Struct("=IIII")
_TS_FIRST = 32
_STATUS = struct.Struct("=I")
_STATS = struct.Struct("=III")  # tpacket_stats_v3: packets, drops, freeze_q_cnt
BLOCK_SIZE = 1 << 18
BLOCKS = 16
FRAME_SIZE = 1 << 11
#: A block is handed over when full, or this many ms after its first packet.
RETIRE_MS = 50


class Block(NamedTuple):
    """A block the kernel handed over."""

    #: Where it starts in the ring.
    offset: int
    #: Packets in it.
    packets: int
    #: Bytes of it in use, its descriptor included.
    length: int


class Ring:
    """A packet socket on ``device`` with its receive ring mapped.

    Args:
        device: the interface name.
        program: the classic BPF program to attach before the ring fills.
    """

    def __init__(self, device: str, program: bytes) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            attach_filter(sock, program)
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            sock.setsockopt(
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
                sock.fileno(),
                BLOCK_SIZE * BLOCKS,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
            sock.bind((device, ETH_P_ALL))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.ENODEV:
                raise Failed(f"{device} went away before its capture could start.") from None
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        self.sock = sock
        self.memory = ring
        self._block = 0

    def next_block(self) -> Block | None:
        """The next block in turn, if the kernel has handed it over."""
        offset = self._block * BLOCK_SIZE
        status, packets, _first, length = _BLOCK.unpack_from(self.memory, offset + _BLOCK_STATUS)
        if not status & TP_STATUS_USER:
            return None
        return Block(offset, packets, length)

    def burst_rate(self, block: Block) -> float:
        """Packets a second a block filled by a burst came at (0 for another block).

        The kernel's timestamps of a block's first and last packets say how
        fast they came; a block the retire timeout handed over half empty
        says nothing of a burst.
        """
        if block.length <= BLOCK_SIZE // 2 or block.packets <= 1:
            return 0.0
        first_s, first_ns, last_s, last_ns = _TS2.unpack_from(self.memory, block.offset + _TS_FIRST)
        span = int((last_s - first_s) * 1_000_000_000 + last_ns - first_ns)
        return block.packets * 1e9 / max(span, 1_000_000)

    def give_back(self, block: Block) -> None:
        """Return a block to the kernel; the next in turn comes up."""
        _STATUS.pack_into(self.memory, block.offset + _BLOCK_STATUS, TP_STATUS_KERNEL)
        self._block = (self._block + 1) % BLOCKS

    def kernel_drops(self) -> int:
        """Packets the kernel dropped since the last call (reading resets them)."""
        stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        return int(_STATS.unpack(stats)[1])

    def close(self) -> None:
        """Unmap the ring and close the socket."""
        self.memory.close()
        self.sock.close()
