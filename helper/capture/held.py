"""Capturing a device the helper holds (a transient one), by reading its queues.

The helper is the program at the other end of that device, so it reads
the device's queues, as that program would, on a thread of its own,
straight into fixed slots cut to the snap length (the kernel copies only
what fits; :mod:`tungui_helper.drain`), and sends a batch of slots as one
message.  Packets injected into the device (InjectPacket) meanwhile are
written by that thread too, and added to the stream, marked, in their
place.  Bounded whatever the traffic: the slots and the stream's buffer
are fixed.  No packet is parsed here beyond its length.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import select
import threading
import time
from array import array
from collections.abc import Callable

from tungui_contract.capture import (
    CAPTURE_FORMAT_SLOTS,
    CAPTURE_HEADER,
    CAPTURE_MESSAGE_MAX,
    CAPTURE_SLOTS,
    INCOMING,
)
from tungui_contract.errors import Failed, InvalidArgument

from ..drain import SlotReader
from ..kernel import Queues
from ..validate import CaptureOptions
from .sampler import Sampler
from .stream import Capture

log = logging.getLogger(__name__)

#: Packets in one message of a held device's capture, at most.
MAX_SLOTS = 4096
#: A held device's packets go out when a message is full, or this long
#: after its first packet.
BATCH_SECONDS = 0.02


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
        handle: Queues,
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
        # This thread alone uses the sampler; set_max_rate leaves the rate
        # asked for in self.max_rate and wakes it.
        sampler = Sampler(self.max_rate, monotonic())
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
                sampler.offered(read)
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
            if self.max_rate != sampler.max_rate:
                sampler.set_max_rate(self.max_rate, monotonic())
                reader.sample(sampler.keep_one_in)
            elif sampler.choose(monotonic()):
                reader.sample(sampler.keep_one_in)

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
