"""Calls waiting to be started, taken one user after another.

The helper answers every caller on one event loop, so whatever it starts
first delays everything after it.  Started in the order they arrive, one
user's flood of calls (a few hundred a second of the free methods, each
cheap) would put all of its calls in flight ahead of another user's one
call.  :class:`Turns` keeps a line per user and starts the first call of
each line in turn, so another user's call waits for at most one call of
each user with calls waiting, however many calls those users keep in
flight.  Within a line, calls keep their order of arrival.

Two more rules keep a late call from queueing behind work started earlier:

- one call is started per round of the event loop, so the bus socket is
  read between two calls and a call that has just come is in its line
  before the next is chosen;
- no call is started while replies wait for the bus socket (see
  :meth:`~.connection.HelperBus.when_written`).  What the bus daemon has
  not read yet is ahead of every reply written after it, whoever it is
  for; calls wait in their lines instead, where each keeps its turn.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

#: Asks for a call back once no message waits for the bus socket; False,
#: without calling back, if none waits now.
WhenWritten = Callable[[Callable[[], None]], bool]


class Lines(Generic[T]):
    """Items in one line per key, taken round-robin over the keys."""

    def __init__(self) -> None:
        # A dict keeps its keys in order of insertion: the first key is the
        # next to be served, and a served key that still waits goes to the end.
        self._lines: dict[Hashable, deque[T]] = {}
        self._waiting = 0

    def __len__(self) -> int:
        """How many items wait, over all keys."""
        return self._waiting

    def add(self, key: Hashable, item: T) -> None:
        """Put ``item`` at the end of ``key``'s line; a new key is served after the others."""
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = deque()
        line.append(item)
        self._waiting += 1

    def take(self) -> T | None:
        """The first item of the key whose turn it is; None if nothing waits."""
        if not self._lines:
            return None
        key = next(iter(self._lines))
        line = self._lines.pop(key)
        item = line.popleft()
        if line:
            self._lines[key] = line
        self._waiting -= 1
        return item


class Turns(Generic[T]):
    """Starts what waits in :class:`Lines`, one item per round of the event loop.

    Args:
        start: starts one item; returns once it is on its way.
        when_written: the bus connection's
            :meth:`~.connection.HelperBus.when_written`; None for a bus
            that cannot say (nothing then waits for it).
    """

    def __init__(self, start: Callable[[T], None], when_written: WhenWritten | None) -> None:
        self._lines: Lines[T] = Lines()
        self._start = start
        self._when_written = when_written
        #: A round is asked for (or the bus socket is waited for).
        self._scheduled = False

    def __len__(self) -> int:
        """How many items wait to be started."""
        return len(self._lines)

    def add(self, key: Hashable, item: T) -> None:
        """Line ``item`` up behind ``key``'s; it is started in its turn."""
        self._lines.add(key, item)
        self._schedule()

    def _schedule(self) -> None:
        if self._lines and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        if self._when_written is not None and self._when_written(self._resume):
            self._scheduled = True
            return
        item = self._lines.take()
        assert item is not None
        self._start(item)
        self._schedule()

    def _resume(self) -> None:
        self._scheduled = False
        self._schedule()
