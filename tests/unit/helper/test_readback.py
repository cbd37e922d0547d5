"""Reading a link back after a change, against the netlink events around it.

The helper reads a link back after changing it, and applies pending events
first.  An event the kernel sent after the read was asked for (a removal
too) may be newer than the read: the read is not applied over it, and the
link is read once more shortly after.  The kernel
and its event socket are fakes here; the integration tests run the real one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TypeVar

from tungui_helper.mirror import Mirror
from tungui_helper.netlink import Event, LinkInfo
from tungui_helper.table import Delta, DeviceTable

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
    """A kernel whose link is ``state`` (None: gone).

    ``read`` can see an event come right after it: a change, or the link's removal.
    """

    def __init__(self, events: _Events, state: LinkInfo | None) -> None:
        self.events = events
        self.state = state
        self.after_read: LinkInfo | None = None
        self.removed_after_read = False

    async def run(self, func: Callable[[], T]) -> T:
        return func()

    def read(self, index: int) -> LinkInfo | None:
        answer = self.state
        if self.after_read is not None:
            self.state, self.after_read = self.after_read, None
            self.events.pending.append(("link", self.state))
        elif self.removed_after_read and self.state is not None:
            self.events.pending.append(("dellink", self.state.index))
            self.state, self.removed_after_read = None, False
        return answer

    def lookup(self, name: str) -> LinkInfo | None:
        if self.state is None or self.state.name != name:
            return None
        return self.read(self.state.index)


def _manager(
    state: LinkInfo, on_change: Callable[[Delta], None] = lambda delta: None
) -> tuple[Mirror, _Links, _Events]:
    events = _Events()
    links = _Links(events, state)
    manager = Mirror(DeviceTable(), links, on_change, lambda: None)  # type: ignore[arg-type]
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
        # The read, maybe older, is not applied over the event; the link is
        # read again shortly.
        assert manager.table.by_name("tap0") == UP
        assert "tap0" in manager._recheck
        await _until(lambda: "tap0" not in manager._recheck and not manager._background)
        assert manager.table.by_name("tap0") == UP

    asyncio.run(run())


def test_a_link_removed_while_it_is_read_back_stays_removed() -> None:
    # ip tuntap add, then ip link del while the delayed re-check reads the
    # link: the read (the link still there) must not bring it back.
    async def run() -> None:
        changes: list[Delta] = []
        manager, links, events = _manager(DOWN, changes.append)
        events.pending.append(("link", DOWN))
        manager.drain()
        assert manager.table.by_name("tap0") == DOWN
        links.removed_after_read = True
        await manager.refresh("tap0")
        assert manager.table.by_name("tap0") is None
        await _until(lambda: "tap0" not in manager._recheck and not manager._background)
        assert manager.table.by_name("tap0") is None
        # What the window was told ends with the link gone.
        last: dict[int, str] = {}
        for delta in changes:
            last.update(dict.fromkeys(delta.changed, "changed"))
            last.update(dict.fromkeys(delta.removed, "removed"))
        assert last == {5: "removed"}

    asyncio.run(run())


def test_events_from_before_the_read_need_no_second_read() -> None:
    async def run() -> None:
        manager, _links, events = _manager(UP)
        events.pending.append(("link", DOWN))  # sent before the change
        await manager.refresh_index(5)
        assert manager.table.by_name("tap0") == UP
        assert "tap0" not in manager._recheck

    asyncio.run(run())
