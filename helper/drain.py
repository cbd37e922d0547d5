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
from typing import NamedTuple, Protocol

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


class _ReadSlots(Protocol):
    def __call__(
        self,
        fd: int,
        buffer: bytearray,
        stride: int,
        rest: bytearray,
        lengths: array[int],
        count: int,
        keep_one_in: int,
        skip: int,
        skipped_length: int,
        /,
    ) -> tuple[int, int, int, int, int]: ...


_read_slots_c: _ReadSlots | None
try:
    from ._drain import read_slots as _read_slots_c
except ImportError:  # not built: the Python loop below does the same
    _read_slots_c = None

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
        self._read_slots: _ReadSlots = (
            _read_slots_c if native and _read_slots_c is not None else self._read_slots_py
        )
        self._views: list[list[memoryview]] | None = None

    @property
    def native(self) -> bool:
        """Whether the C loop reads."""
        return self._read_slots is _read_slots_c

    def sample(self, keep_one_in: int) -> None:
        """Keep one packet in ``keep_one_in`` from now on."""
        if keep_one_in != self.keep_one_in:
            self.keep_one_in, self._skip = keep_one_in, 0

    def read(self, fd: int, count: int) -> Drained:
        """Read ``fd`` (non-blocking) into the slots after the first ``count``.

        Reads until the queue is empty or every slot is used.
        """
        count, read, self._skip, self.skipped_length, error = self._read_slots(
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

    def _read_slots_py(
        self,
        fd: int,
        buffer: bytearray,
        stride: int,
        rest: bytearray,
        lengths: array[int],
        count: int,
        keep_one_in: int,
        skip: int,
        skipped_length: int,
        /,
    ) -> tuple[int, int, int, int, int]:
        """The C loop's twin (see ``_drain.c``)."""
        if self._views is None:
            whole, tail = memoryview(buffer), memoryview(rest)
            self._views = [
                [whole[i * stride : (i + 1) * stride], tail] for i in range(len(lengths))
            ]
        slots, readv, read = self._views, os.readv, 0
        while count < len(slots):
            try:
                n = readv(fd, slots[count])
            except BlockingIOError:
                break
            except OSError as exc:
                return count, read, skip, skipped_length, exc.errno or 0
            read += 1
            if keep_one_in > 1:
                skip = (skip + 1) % keep_one_in
                if skip:
                    # Left in its slot, to be overwritten by the next.
                    skipped_length = n
                    continue
            skipped_length = 0
            lengths[count] = n
            count += 1
        return count, read, skip, skipped_length, 0
