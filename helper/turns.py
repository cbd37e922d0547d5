"""Calls waiting to be started, taken one user after another.

The helper answers every caller on one event loop, so whatever it starts
first delays everything after it.  Started in the order they arrive, one
user's flood of calls (a few hundred a second of the free methods, each
cheap) would put all of its calls in flight ahead of another user's one
call.  :class:`Turns` keeps a line per user and takes the first call of
each line in turn, so another user's call waits for at most one call of
each user with calls waiting, however many calls those users keep in
flight.  Within a line, calls keep their order of arrival.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Turns(Generic[T]):
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
