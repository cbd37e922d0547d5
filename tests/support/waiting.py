"""Waiting on an event with a timeout, never sleeping in hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import StackError

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    what: str = "condition",
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy; return that.

    Raises :class:`TimeoutError` after ``timeout`` seconds, naming ``what``
    and the last value or exception seen.  ``abort`` is asked before each
    try; when it returns a message (say, the process we wait for has died),
    waiting stops at once with a :class:`StackError` carrying it.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if abort is not None:
            reason = abort()
            if reason is not None:
                raise StackError(f"gave up waiting for {what}: {reason}")
        try:
            value = predicate()
        except Exception as exc:  # remembered and reported on timeout
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s (last: {last!r})")
        time.sleep(interval)
