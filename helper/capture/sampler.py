"""How many packets a capture keeps: at most ``max_rate`` a second, the rest counted.

Both capture sources sample the same way, through :class:`Sampler`: they
tell it how many packets the device offered (and, where they can see one,
how fast a burst came), and it says "keep one packet in N". The ring keeps
one in N in the kernel with a BPF program; a held device's reader keeps
one in N as it reads. Either way the packets left out are counted and the
stream's header carries the count.
"""

from __future__ import annotations

import math

#: How often sampling is chosen again (seconds).
SAMPLING_PERIOD = 0.25
#: The first look, after a capture starts or its rate changes, comes
#: sooner: a flood already on would fill the ring in a full period.
FIRST_LOOK = SAMPLING_PERIOD / 25
#: Keep at least one packet in this many.
MAX_SAMPLING = 1 << 16
#: N changes only when it moves from or to 1, or by more than this share:
#: for the ring every change is a system call and a new program to check.
STEADY = 0.1


def sampling_for(offered: float, max_rate: int) -> int:
    """Keep one packet in how many, so ``offered`` packets a second come to ``max_rate``."""
    if max_rate <= 0 or offered <= max_rate:
        return 1
    return min(MAX_SAMPLING, math.ceil(offered / max_rate))


class Sampler:
    """Chooses N of "keep one packet in N" from the rate packets are offered at.

    Args:
        max_rate: packets a second the reader wants at most (0: every one).
        now: the time on a monotonic clock.
    """

    def __init__(self, max_rate: int, now: float) -> None:
        self.max_rate = max_rate
        #: One packet in this many is kept (1: all).
        self.keep_one_in = 1
        self._restart(now, FIRST_LOOK)

    def _restart(self, now: float, period: float) -> None:
        self._start = now
        self._period = period
        #: Packets offered since the period began.
        self._offered = 0
        #: The fastest rate a burst showed in the period (packets/s).
        self._burst = 0.0

    def set_max_rate(self, max_rate: int, now: float) -> None:
        """Sample above ``max_rate`` from now on (0: keep every packet at once)."""
        self.max_rate = max_rate
        if not max_rate:
            self.keep_one_in = 1
        self._restart(now, FIRST_LOOK)

    def offered(self, packets: int, burst: float = 0.0) -> None:
        """Count packets the device offered, before sampling.

        Args:
            packets: how many (behind a kernel filter: those kept times N).
            burst: the rate a burst of them came at, where the source saw it.
        """
        self._offered += packets
        if burst > self._burst:
            self._burst = burst

    def choose(self, now: float) -> bool:
        """Choose N again once a period, or at once for a burst; True if it changed."""
        if not self.max_rate:
            return False
        elapsed = now - self._start
        # A flood after a quiet spell shows in its first burst; it is not
        # waited for, nor averaged with the quiet.
        burst = sampling_for(self._burst, self.max_rate) > (1 + STEADY) * self.keep_one_in
        if elapsed < self._period and not burst:
            return False
        offered = max(self._offered / max(elapsed, 1e-6), self._burst)
        self._restart(now, SAMPLING_PERIOD)
        keep_one_in = sampling_for(offered, self.max_rate)
        if keep_one_in == self.keep_one_in:
            return False
        if 1 not in (keep_one_in, self.keep_one_in) and (
            1 - STEADY < keep_one_in / self.keep_one_in < 1 + STEADY
        ):
            return False
        self.keep_one_in = keep_one_in
        return True
