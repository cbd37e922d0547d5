"""Reading a link back after a change, against the netlink events around it.

The helper reads a link back after changing it, and applies pending events
first.  An event the kernel sent after the read was asked for may be newer
than the read; the link is then read once more shortly after.  The kernel
and its event socket are fakes here; the integration tests run the real one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TypeVar

from tungui_helper.mirror import Mirror
from tungui_helper.netlink import Event, LinkInfo
from tungui_helper.table import DeviceTable

T = TypeVar("T")

DOWN = LinkInfo(
    index=5, name="tap0", kind="tap", mtu=1500, mac="02:00:00:00:00:05", up=False,
    operstate="down", master=0, alias="tungui",
)  # fmt: skip
UP = dataclasses.replace(DOWN, up=True, operstate="unknown")


class _Events:
    def __init__(self) -> None:
        self.pending: list[Event] = []

    def read(self) -> list[Event]:
        events, self.pending = self.pending, []
        return events


class _Links:
    """A kernel whose link is ``state``; ``read`` can see an event come right after it."""

    def __init__(self, events: _Events, state: LinkInfo) -> None:
        self.events = events
        self.state = state
        self.after_read: LinkInfo | None = None

    async def run(self, func: Callable[[], T]) -> T:
        return func()

    def read(self, index: int) -> LinkInfo | None:
        answer = self.state
        if self.after_read is not None:
            self.state, self.after_read = self.after_read, None
            self.events.pending.append(("link", self.state))
        return answer

    def lookup(self, name: str) -> LinkInfo | None:
        return self.state


def _manager(state: LinkInfo) -> tuple[Mirror, _Links, _Events]:
    events = _Events()
    links = _Links(events, state)
    manager = Mirror(DeviceTable(), links, lambda delta: None, lambda: None)  # type: ignore[arg-type]
    manager._events = events  # type: ignore[assignment]
    return manager, links, events


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_an_event_after_the_read_gets_the_link_read_again() -> None:
    async def run() -> None:
        manager, links, _events = _manager(DOWN)
        links.after_read = UP  # the link comes up just after the read
        await manager.refresh_index(5)
        # The older read was applied over the event, but not for long.
        assert manager.table.by_name("tap0") == DOWN
        await _until(lambda: manager.table.by_name("tap0") == UP)

    asyncio.run(run())


def test_events_from_before_the_read_need_no_second_read() -> None:
    async def run() -> None:
        manager, _links, events = _manager(UP)
        events.pending.append(("link", DOWN))  # sent before the change
        await manager.refresh_index(5)
        assert manager.table.by_name("tap0") == UP
        assert "tap0" not in manager._recheck

    asyncio.run(run())
