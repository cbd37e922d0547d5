"""Reading a held device's queue into fixed slots, in C where it was built.

A TUN/TAP queue gives one packet a read, so a held device's capture costs
one system call a packet however it is done; what the reader adds around
that call decides how fast it drains the queue.  The loop in C
(``_drain.c``, built with the package) adds next to nothing and releases
the GIL while it reads; the same loop in Python, used where the C one was
not built, drains at about 60% of its rate (bench/drain.py).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from typing import NamedTuple

#: Room after a slot for the rest of a long packet, which is let go.
REST = 1 << 16


class Drained(NamedTuple):
    """What one :meth:`SlotReader.read` did."""

    #: Slots in use now.
    used: int
    #: Packets read, kept or sampled out.
    read: int
    #: The error that ended the reading (0: queue empty or slots full).
    error: int


def _native_loop() -> Callable[..., tuple[int, int, int, int, int]] | None:
    try:
        from ._drain import read_slots
    except ImportError:  # not built: SlotReader reads in Python
        return None
    return read_slots


_read_slots_c = _native_loop()
#: Whether the C loop was built.
BUILT = _read_slots_c is not None


class SlotReader:
    """Reads packets into ``slots`` slots of ``stride`` bytes, keeping one in N.

    Args:
        slots: slots in :attr:`buffer`.
        stride: bytes a slot; the kernel copies only that much of a packet.
        native: use the C loop (where it was built).
    """

    def __init__(self, slots: int, stride: int, *, native: bool = True) -> None:
        self.stride = stride
        self.buffer = bytearray(slots * stride)
        #: The whole length of the packet in each slot.
        self.lengths = array("I", bytes(4 * slots))
        self._rest = bytearray(REST)
        #: Keep one packet in this many (1: every packet).
        self.keep_one_in = 1
        self._skip = 0
        #: Length of the last packet sampled out, which is still in the
        #: first free slot (0: none is).
        self.skipped_length = 0
        #: Whether the C loop reads.
        self.native = native and _read_slots_c is not None
        self._views: list[list[memoryview]] | None = None

    def sample(self, keep_one_in: int) -> None:
        """Keep one packet in ``keep_one_in`` from now on."""
        if keep_one_in != self.keep_one_in:
            self.keep_one_in, self._skip = keep_one_in, 0

    def read(self, fd: int, count: int) -> Drained:
        """Read ``fd`` (non-blocking) into the slots after the first ``count``.

        Reads until the queue is empty or every slot is used.
        """
        if not self.native or _read_slots_c is None:
            return self._read_py(fd, count)
        count, read, self._skip, self.skipped_length, error = _read_slots_c(
            fd,
            self.buffer,
            self.stride,
            self._rest,
            self.lengths,
            count,
            self.keep_one_in,
            self._skip,
            self.skipped_length,
        )
        return Drained(count, read, error)

    def _read_py(self, fd: int, count: int) -> Drained:
        """The C loop's twin (see ``_drain.c``)."""
        if self._views is None:
            whole, rest, stride = memoryview(self.buffer), memoryview(self._rest), self.stride
            self._views = [
                [whole[i * stride : (i + 1) * stride], rest] for i in range(len(self.lengths))
            ]
        slots, lengths, readv, read = self._views, self.lengths, os.readv, 0
        keep_one_in, skip, skipped = self.keep_one_in, self._skip, self.skipped_length
        try:
            while count < len(slots):
                try:
                    n = readv(fd, slots[count])
                except BlockingIOError:
                    break
                except OSError as exc:
                    return Drained(count, read, exc.errno or 0)
                read += 1
                if keep_one_in > 1:
                    skip = (skip + 1) % keep_one_in
                    if skip:
                        # Left in its slot, to be overwritten by the next.
                        skipped = n
                        continue
                skipped = 0
                lengths[count] = n
                count += 1
        finally:
            self._skip, self.skipped_length = skip, skipped
        return Drained(count, read, 0)
