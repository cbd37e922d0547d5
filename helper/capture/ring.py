"""Capturing any device through a packet socket's ring (a device the helper does not hold).

Each block the kernel fills is passed on whole (:mod:`.tpacket`); a
classic BPF program cuts the snap length in the kernel and, when the
caller asked for at most ``max_rate`` packets a second and more come,
keeps one packet in N at random (:mod:`.bpf`, N from :mod:`.sampler`).
The caller never holds the packet socket itself: a packet socket can be
re-bound to any interface and can send to any, which would hand out
capture and injection everywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tungui_contract.capture import CAPTURE_FORMAT_BLOCK
from tungui_contract.errors import Failed

from ..validate import CaptureOptions
from .bpf import attach_filter, capture_filter
from .sampler import Sampler
from .stream import Capture
from .tpacket import BLOCKS, Ring

log = logging.getLogger(__name__)


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
        ring = Ring(device, capture_filter(self.snaplen))
        try:
            super().__init__(device, client, on_end)
        except OSError as exc:
            ring.close()
            raise Failed(f"Could not capture on {device}: {exc.strerror}.") from None
        self._ring = ring
        self.sampler = Sampler(options.max_rate, time.monotonic())

    @property
    def max_rate(self) -> int:
        """Packets a second the reader wants at most (0: all)."""
        return self.sampler.max_rate

    def _begin(self) -> None:
        assert self._loop is not None
        self._loop.add_reader(self._ring.sock.fileno(), self._pump)

    def _end(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._ring.sock.fileno())
        self._ring.close()

    def set_max_rate(self, max_rate: int) -> None:
        before = self.sampler.keep_one_in
        self.sampler.set_max_rate(max_rate, time.monotonic())
        if self.sampler.keep_one_in != before:
            attach_filter(self._ring.sock, capture_filter(self.snaplen))

    def _pump(self) -> None:
        """Pass on every block the kernel has handed over, then give them back."""
        ring, sampler = self._ring, self.sampler
        self.dropped += ring.kernel_drops()
        for _ in range(BLOCKS):
            block = ring.next_block()
            if block is None:
                break
            # The filter let one in N through: the device offered N times more.
            keep_one_in = sampler.keep_one_in
            sampler.offered(block.packets * keep_one_in, ring.burst_rate(block) * keep_one_in)
            self.sampled += block.packets * (keep_one_in - 1)
            message = (
                self._header(CAPTURE_FORMAT_BLOCK)
                + ring.memory[block.offset : block.offset + block.length]
            )
            ring.give_back(block)
            if not self._send([message], block.packets):
                self.stop()
                return
        if sampler.choose(time.monotonic()):
            attach_filter(ring.sock, capture_filter(self.snaplen, sampler.keep_one_in))
            log.debug("capture of %s: keeping one packet in %d", self.device, sampler.keep_one_in)
