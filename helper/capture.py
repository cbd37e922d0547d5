"""Packet capture for one caller, over a stream only that caller holds.

Each capture owns one end of a ``SOCK_SEQPACKET`` socket pair; the caller
gets the other end, and only that, over D-Bus fd passing, and walks the
packets itself, unprivileged.  Two sources feed it:

:class:`RingCapture`, for any device
    A packet socket's receive ring (TPACKET_V3) bound to the device; each
    block the kernel fills is passed on whole, so the helper does no work
    per packet (per-packet Python was ~60x tcpdump's CPU a packet,
    bench/capture.py; a block at a time is not).  A classic BPF program
    cuts the snap length in the kernel and, when the caller asked for at
    most ``max_rate`` packets a second and more come, keeps one packet in
    N at random (``ld rand``), N chosen again every second.  The caller
    never holds the packet socket itself: a packet socket can be re-bound
    to any interface and can send to any, which would hand out capture and
    injection everywhere.

:class:`HeldCapture`, for a device the helper holds (a transient one)
    The helper is the program at the other end of that device, so it reads
    the device's queues, as that program would, on a thread of its own,
    straight into fixed slots cut to the snap length (the kernel copies
    only what fits), and sends a batch of slots as one message.  Packets
    injected into the device (InjectPacket) meanwhile are written by that
    thread too, and added to the stream, marked, in their place.

Bounded whatever the traffic: the ring, the slots and the stream's buffer
are fixed, and a message the reader is too slow for is dropped and its
packets counted.  No packet is parsed here beyond its length.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import errno
import logging
import math
import mmap
import os
import select
import socket
import struct
import threading
import time
from array import array
from collections.abc import Callable, Sequence

from tungui_contract.capture import (
    CAPTURE_FORMAT_BLOCK,
    CAPTURE_FORMAT_SLOTS,
    CAPTURE_HEADER,
    CAPTURE_MESSAGE_MAX,
    CAPTURE_RATE,
    CAPTURE_SLOTS,
    INCOMING,
)
from tungui_contract.errors import Failed, InvalidArgument

from .drain import SlotReader
from .tun import TunHandle
from .validate import CaptureOptions

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
SO_SNDBUFFORCE = 32
#: struct tpacket_req3: block size, block count, frame size, frame count,
#: retire timeout (ms), private size, feature word.
_REQ3 = struct.Struct("=IIIIIII")
#: In struct tpacket_block_desc: block_status, num_pkts, offset_to_first_pkt, blk_len.
_BLOCK = struct.Struct("=IIII")
_BLOCK_STATUS = 8
#: In struct tpacket_block_desc: ts_first_pkt and ts_last_pkt (seconds, nanoseconds).
_TS2 = struct.Struct("=IIII")
_TS_FIRST = 32
_STATS = struct.Struct("=III")  # tpacket_stats_v3: packets, drops, freeze_q_cnt
BLOCK_SIZE = 1 << 18
BLOCKS = 16
FRAME_SIZE = 1 << 11
#: A block is handed over when full, or this many ms after its first packet.
RETIRE_MS = 50
#: Room in the stream for all blocks of the ring.
BUFFER = (BLOCK_SIZE + 64) * BLOCKS
#: How often sampling is chosen again (seconds).
SAMPLING_PERIOD = 0.25
#: Keep at least one packet in this many.
MAX_SAMPLING = 1 << 16
#: Packets in one message of a held device's capture, at most.
MAX_SLOTS = 4096
#: A held device's packets go out when a message is full, or this long
#: after its first packet.
BATCH_SECONDS = 0.02
_U32 = 0xFFFFFFFF

# Classic BPF (linux/filter.h, linux/bpf_common.h).
_BPF_RET_K = 0x06
_BPF_LD_W_ABS = 0x20
_BPF_ALU_MOD_K = 0x94
_BPF_JEQ_K = 0x15
_SKF_AD_RANDOM = (-0x1000 + 56) & _U32
_INSN = struct.Struct("=HBBI")


def capture_filter(snaplen: int, keep_one_in: int = 1) -> bytes:
    """A classic BPF program: packets cut to ``snaplen``, one in ``keep_one_in`` kept at random."""
    if keep_one_in <= 1:
        return _INSN.pack(_BPF_RET_K, 0, 0, snaplen)
    return b"".join(
        (
            _INSN.pack(_BPF_LD_W_ABS, 0, 0, _SKF_AD_RANDOM),  # A = a random u32
            _INSN.pack(_BPF_ALU_MOD_K, 0, 0, keep_one_in),  # A %= N
            _INSN.pack(_BPF_JEQ_K, 0, 1, 0),  # A == 0: keep it
            _INSN.pack(_BPF_RET_K, 0, 0, snaplen),
            _INSN.pack(_BPF_RET_K, 0, 0, 0),
        )
    )


def sampling_for(offered: float, max_rate: int) -> int:
    """Keep one packet in how many, so ``offered`` packets a second come to ``max_rate``."""
    if max_rate <= 0 or offered <= max_rate:
        return 1
    return min(MAX_SAMPLING, math.ceil(offered / max_rate))


class Capture:
    """What every capture has: the stream, its counters, its end.

    Args:
        device: the interface name.
        client: the caller's unique bus name.
        on_end: called once when the capture ends.
    """

    def __init__(self, device: str, client: str, on_end: Callable[[Capture], None]) -> None:
        self.device = device
        self.client = client
        self._on_end = on_end
        #: Packets lost so far (kernel, or a reader too slow).
        self.dropped = 0
        #: Packets left out by sampling so far.
        self.sampled = 0
        #: Packets sent on the stream.
        self.sent = 0
        self._ended = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The helper is root: past net.core.wmem_max, so the stream holds
        # as much as the ring.
        try:
            self._ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, BUFFER)
        except OSError:
            self._ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        self._ours.setblocking(False)

    def start(self) -> None:
        """Begin streaming (after the caller has its end)."""
        self._loop = asyncio.get_running_loop()
        # Readable at the end of the stream (the reader closed its end), or
        # when the reader asks for another rate (CAPTURE_RATE).
        self._loop.add_reader(self._ours.fileno(), self._from_reader)
        self._begin()

    def stop(self) -> None:
        """End the capture and free everything it holds."""
        if self._ended:
            return
        self._ended = True
        if self._loop is not None:
            self._loop.remove_reader(self._ours.fileno())
        self._end()
        self._ours.close()
        self.theirs.close()
        self._on_end(self)

    def _begin(self) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

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
        elif len(data) == CAPTURE_RATE.size:
            (max_rate,) = CAPTURE_RATE.unpack(data)
            log.debug("capture of %s: at most %s packets/s", self.device, max_rate or "all")
            self.set_max_rate(max_rate)
        # Anything else the reader writes means nothing: it is let go.

    def set_max_rate(self, max_rate: int) -> None:
        """Sample above ``max_rate`` packets a second from now on (0: every packet)."""
        raise NotImplementedError

    def _header(self, kind: int) -> bytes:
        return CAPTURE_HEADER.pack(min(self.dropped, _U32), min(self.sampled, _U32), kind, 0)

    def _send(self, buffers: Sequence[bytes | memoryview], packets: int) -> bool:
        """Send one message; False when the stream is gone."""
        try:
            self._ours.sendmsg(buffers)
        except BlockingIOError:
            self.dropped += packets  # the reader is behind: drop, count, go on
        except OSError:
            return False
        else:
            self.sent += packets
        return True


class RingCapture(Capture):
    """A device's packets through a packet socket's TPACKET_V3 ring."""

    def __init__(
        self,
        device: str,
        options: CaptureOptions,
        client: str,
        on_end: Callable[[Capture], None],
    ) -> None:
        self.snaplen = options.snaplen
        self.max_rate = options.max_rate
        packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            attach_filter(packet, capture_filter(self.snaplen))
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
        try:
            super().__init__(device, client, on_end)
        except OSError as exc:
            ring.close()
            packet.close()
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        self._ring = ring
        self._block = 0
        self._packet = packet
        #: One packet in this many is kept (1: all).
        self.keep_one_in = 1
        self._period_start = time.monotonic()
        self._period_packets = 0
        #: The fastest rate a full block showed this period (packets/s).
        self._period_burst = 0.0
        # The first look comes sooner: a flood already on when the capture
        # starts would fill the ring in a full period.
        self._period = SAMPLING_PERIOD / 25

    def _begin(self) -> None:
        assert self._loop is not None
        self._loop.add_reader(self._packet.fileno(), self._pump)

    def _end(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._packet.fileno())
        self._ring.close()
        self._packet.close()

    def set_max_rate(self, max_rate: int) -> None:
        self.max_rate = max_rate
        if not max_rate and self.keep_one_in != 1:
            attach_filter(self._packet, capture_filter(self.snaplen))
            self.keep_one_in = 1
        # A first look soon, from what comes in from now on.
        self._period_start, self._period_packets = time.monotonic(), 0
        self._period_burst = 0.0
        self._period = SAMPLING_PERIOD / 25

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
            self._period_packets += packets
            if length > BLOCK_SIZE // 2 and packets > 1:
                # A block filled by a burst: the kernel's timestamps of its
                # first and last packets say how fast they came.
                first_s, first_ns, last_s, last_ns = _TS2.unpack_from(ring, offset + _TS_FIRST)
                span = (last_s - first_s) * 1_000_000_000 + last_ns - first_ns
                rate = packets * self.keep_one_in * 1e9 / max(span, 1_000_000)
                self._period_burst = max(self._period_burst, rate)
            self.sampled += packets * (self.keep_one_in - 1)
            message = self._header(CAPTURE_FORMAT_BLOCK) + ring[offset : offset + length]
            struct.pack_into("=I", ring, offset + _BLOCK_STATUS, TP_STATUS_KERNEL)
            self._block = (self._block + 1) % BLOCKS
            if not self._send([message], packets):
                self.stop()
                return
        self._resample()

    def _resample(self) -> None:
        """Choose the sampling again once a period, from what came in it."""
        if not self.max_rate:
            return
        now = time.monotonic()
        elapsed = now - self._period_start
        # A flood after a quiet spell shows in its first full block; it is
        # not waited for, nor averaged with the quiet.
        burst = sampling_for(self._period_burst, self.max_rate) > 1.1 * self.keep_one_in
        if elapsed < self._period and not burst:
            return
        offered = max(self._period_packets * self.keep_one_in / elapsed, self._period_burst)
        self._period_start, self._period_packets, self._period = now, 0, SAMPLING_PERIOD
        self._period_burst = 0.0
        keep_one_in = sampling_for(offered, self.max_rate)
        # Not for every wobble of the rate: one attach is a syscall and a
        # new program to check.
        if keep_one_in != self.keep_one_in and (
            1 in (keep_one_in, self.keep_one_in) or not 0.9 < keep_one_in / self.keep_one_in < 1.1
        ):
            attach_filter(self._packet, capture_filter(self.snaplen, keep_one_in))
            log.debug("capture of %s: keeping one packet in %d", self.device, keep_one_in)
            self.keep_one_in = keep_one_in


class HeldCapture(Capture):
    """A held device's packets, read from its queues by the helper.

    Args:
        device: the interface name.
        handle: the helper's queues of the device; the capture reads
            duplicates of them and ends soon after the handle is closed
            (the device's client left), so the device still goes away.
        prefix: bytes before each packet a read returns (packet
            information, virtio-net header).
        longest: the longest packet the device can carry, link header included.
        options: the caller's snap length and rate.
    """

    def __init__(
        self,
        device: str,
        handle: TunHandle,
        *,
        prefix: int,
        longest: int,
        options: CaptureOptions,
        client: str,
        on_end: Callable[[Capture], None],
    ) -> None:
        super().__init__(device, client, on_end)
        self.max_rate = options.max_rate
        self.prefix = prefix
        self.snaplen = min(options.snaplen, longest)
        self.stride = (prefix + self.snaplen + 7) & ~7
        room = CAPTURE_MESSAGE_MAX - CAPTURE_HEADER.size - CAPTURE_SLOTS.size - 8
        self.slots = max(1, min(MAX_SLOTS, room // (self.stride + 12)))
        self._handle = handle
        self._fds: list[int] = []
        try:
            self._fds.extend(os.dup(fd) for fd in handle.fds)
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            for fd in self._fds:
                os.close(fd)
            self._ours.close()
            self.theirs.close()
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        # What waits in the queues was sent before the capture began (the
        # device had no reader): let it go, as a packet socket would not
        # have seen it either.  Done before the caller has the stream.
        for fd in self._fds:
            with contextlib.suppress(OSError):
                for _ in range(1 << 16):
                    os.read(fd, 1 << 16)
        #: Packets to inject, each with the future of its D-Bus call.
        self._incoming: collections.deque[tuple[bytes, concurrent.futures.Future[None]]] = (
            collections.deque()
        )
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"capture {device}", daemon=True)

    def inject(self, packet: bytes) -> concurrent.futures.Future[None]:
        """Write a packet into the device from the reading thread, and stream it.

        Written there, it comes before anything the device answers to it.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._stopping:
            future.set_exception(Failed(f"The capture of {self.device} has ended."))
            return future
        self._incoming.append((packet, future))
        self._wake()
        return future

    def set_max_rate(self, max_rate: int) -> None:
        # The reading thread looks at it after each wake-up.
        self.max_rate = max_rate
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def _begin(self) -> None:
        self._thread.start()

    def _end(self) -> None:
        self._stopping = True
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        for fd in (*self._fds, self._wake_r, self._wake_w):
            os.close(fd)
        self._fds = []
        while self._incoming:
            _packet, future = self._incoming.popleft()
            future.set_exception(Failed(f"The capture of {self.device} ended; send it again."))

    def _finish(self) -> None:
        """From the reader thread: end the capture on the event loop."""
        if self._loop is not None and not self._stopping:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self.stop)

    def _run(self) -> None:
        try:
            self._read()
        except Exception:
            log.exception("capture of %s failed", self.device)
        self._finish()

    def _read(self) -> None:
        count_max, reader = self.slots, SlotReader(self.slots, self.stride)
        stamps = array("Q", bytes(8 * count_max))
        poller = select.poll()
        for fd in (*self._fds, self._wake_r):
            poller.register(fd, select.POLLIN)
        now, monotonic = time.time_ns, time.monotonic
        period_start, period_packets = monotonic(), 0
        # A message is due at ``deadline`` (0: nothing waits to go out).
        count, deadline = 0, 0.0
        while not self._stopping and self._handle.fds:
            if not self._incoming:
                wait = 200 if not deadline else max(0.0, (deadline - monotonic()) * 1000)
                for fd, _event in poller.poll(wait):
                    if fd == self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
            # One clock reading per wake-up, for every packet read in it:
            # one per packet can cost more than the read itself.
            woke = now()
            if reader.skipped_length and self._incoming and count < count_max:
                # An injected packet takes the next slot, where the last
                # packet sampled out still is: that one goes out after all.
                stamps[count] = woke
                count = self._unskip(reader, count)
            start = count
            count = self._write_incoming(reader, count)
            for fd in self._fds:
                kept = count
                count, read, error = reader.read(fd, count)
                period_packets += read
                self.sampled += read - (count - kept)
                if error:
                    log.info("capture of %s ends: %s", self.device, os.strerror(error))
                    return
            if count > start:
                stamps[start:count] = array("Q", [woke]) * (count - start)
            if (count or reader.skipped_length) and not deadline:
                deadline = monotonic() + BATCH_SECONDS
            if deadline and (count == count_max or monotonic() >= deadline):
                if reader.skipped_length and count < count_max:
                    # The last packet sampled out before the message goes
                    # out after all, so that the message carries the counts
                    # even when the traffic stops right after it.
                    stamps[count] = woke
                    count = self._unskip(reader, count)
                if count and not self._send_slots(count, reader, stamps):
                    return
                count, deadline = 0, 0.0
            if self.max_rate:
                elapsed = monotonic() - period_start
                if elapsed >= SAMPLING_PERIOD:
                    reader.sample(sampling_for(period_packets / elapsed, self.max_rate))
                    period_start, period_packets = monotonic(), 0
            else:  # the reader asked for every packet
                reader.sample(1)

    def _unskip(self, reader: SlotReader, count: int) -> int:
        """Keep the last packet sampled out, still in slot ``count``; return the slots used."""
        self.sampled -= 1
        reader.lengths[count] = reader.skipped_length
        reader.skipped_length = 0
        return count + 1

    def _write_incoming(self, reader: SlotReader, count: int) -> int:
        """Write the packets waiting to go into the device; slot them after ``count``.

        Returns:
            The slots now used.
        """
        stride = reader.stride
        while self._incoming and count < len(reader.lengths):
            packet, future = self._incoming.popleft()
            try:
                os.write(self._fds[0], packet)
            except OSError as exc:
                future.set_exception(
                    InvalidArgument(
                        f"{self.device} refused the packet: {os.strerror(exc.errno or 0)}."
                    )
                )
                continue
            future.set_result(None)
            kept = min(len(packet), stride)
            reader.buffer[count * stride : count * stride + kept] = packet[:kept]
            reader.lengths[count] = len(packet) | INCOMING
            count += 1
        return count

    def _send_slots(self, count: int, reader: SlotReader, stamps: array[int]) -> bool:
        pad = b"\0\0\0\0" if count % 2 else b""  # the timestamps are 8-aligned
        return self._send(
            [
                self._header(CAPTURE_FORMAT_SLOTS),
                CAPTURE_SLOTS.pack(count, self.stride, self.prefix, self.snaplen),
                memoryview(reader.lengths)[:count],
                pad,
                memoryview(stamps)[:count],
                memoryview(reader.buffer)[: count * self.stride],
            ],
            count,
        )


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attach (or replace) a classic BPF program."""
    buffer = bytearray(program)
    fprog = struct.pack("HL", len(program) // _INSN.size, _address_of(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _address_of(buffer: bytearray) -> int:
    """The address of a buffer, for struct sock_fprog."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
