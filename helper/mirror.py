"""Keeping the device table in step with the kernel's links and addresses.

The table is read whole at start (and again if the kernel dropped events),
then kept current from the multicast event socket.  Two gaps are closed by
reading links back: the helper's own changes to a link that is down
(announced with no event), and a TUN/TAP device a program attached to or
let go of while it was down (read again a moment after its last event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from .kernel import EventSource, Netlink
from .netlink import Event, EventSocket, LinkInfo
from .table import Delta, DeviceTable

log = logging.getLogger(__name__)

#: How long after a TUN/TAP device's last netlink event it is read back.
RECHECK_DELAY = 0.2


class Mirror:
    """Applies the kernel's events and reads back to a :class:`~.table.DeviceTable`.

    Args:
        table: the table kept in step.
        links: the netlink requests (dump, read, lookup) and their thread.
        on_change: called (in the event loop) with each batch of changes.
        after_apply: called after events or a dump changed the table (the
            device manager lets go of held devices someone else removed).
        open_events: opens the event socket, at :meth:`start`.
    """

    def __init__(
        self,
        table: DeviceTable,
        links: Netlink,
        on_change: Callable[[Delta], None],
        after_apply: Callable[[], None],
        open_events: Callable[[], EventSource] = EventSocket,
    ) -> None:
        self.table = table
        self.links = links
        self._on_change = on_change
        self._after_apply = after_apply
        self._open_events = open_events
        self._events: EventSource | None = None
        self._recheck: set[str] = set()
        self._recheck_timer: asyncio.TimerHandle | None = None
        # Link events are numbered as they are read.  While reads back are
        # on their way, the number of each link's last event (a removal
        # too) is kept by index, so a read back knows whether an event came
        # after it was asked for.
        self._event_serial = 0
        self._reads_back = 0
        self._last_event: dict[int, int] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe to netlink events, then read the current state."""
        self._events = self._open_events()
        asyncio.get_running_loop().add_reader(self._events.fileno(), self.drain)
        await self.resync()

    def close(self) -> None:
        """Stop listening."""
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
        if self._events is not None:
            asyncio.get_running_loop().remove_reader(self._events.fileno())
            self._events.close()
            self._events = None

    async def resync(self) -> None:
        """Read every link and address again (at start, or after lost events)."""
        delta = self.table.reset(await self.links.run(self.links.dump))
        self._after_apply()
        if delta:
            self._on_change(delta)

    async def refresh(self, *names: str) -> None:
        """Read links again, by name (for the delayed re-check)."""
        await self._read_back(lambda: [self.links.lookup(name) for name in names])

    async def refresh_index(self, index: int) -> None:
        """Read a link again after changing it.

        The kernel announces changes to a link that is down (alias, owner,
        persist, a program attaching) with no netlink event, so after its
        own changes the helper reads the link back.
        """
        await self._read_back(lambda: [self.links.read(index)])

    async def _read_back(self, read: Callable[[], list[LinkInfo | None]]) -> None:
        # What the kernel sent before the read is older than it: apply that
        # first, and note where the events stood.
        self.drain()
        asked_at = self._event_serial
        self._reads_back += 1
        try:
            infos = await self.links.run(read)
            self.drain()
        finally:
            self._reads_back -= 1
        found = [info for info in infos if info is not None]
        # A link read back needs no delayed re-check, unless an event came
        # after the read was asked for.  That event may be newer than the
        # read, so the read is not applied over it (a link removed while it
        # was read would otherwise come back, and stay: the kernel sends no
        # more events for it); the link is read again shortly instead.
        stale = [info for info in found if self._last_event.get(info.index, 0) > asked_at]
        fresh = [info for info in found if self._last_event.get(info.index, 0) <= asked_at]
        self._recheck.difference_update(info.name for info in fresh)
        self._recheck_later(info.name for info in stale)
        if not self._reads_back:
            self._last_event.clear()
        delta = self.table.apply([("link", info) for info in fresh])
        if delta:
            self._on_change(delta)

    def drain(self) -> None:
        """Apply every pending netlink event to the table."""
        if self._events is None:
            return
        events = self._events.read()
        if events is None:
            log.warning("netlink events were lost; reading the whole state again")
            task = asyncio.get_running_loop().create_task(self.resync())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        for kind, info in events:
            index = info.index if kind == "link" and isinstance(info, LinkInfo) else None
            if kind == "dellink" and isinstance(info, int):
                index = info
            if index is not None:
                self._event_serial += 1
                if self._reads_back:
                    self._last_event[index] = self._event_serial
        delta = self.table.apply(events)
        self._after_apply()
        self._schedule_recheck(events)
        if delta:
            self._on_change(delta)

    def _schedule_recheck(self, events: list[Event]) -> None:
        """Read TUN/TAP devices again shortly after the kernel reported them.

        A TUN/TAP device that is down changes without a netlink event when a
        program attaches or detaches (``ip tuntap add`` attaches, sets
        persist and leaves) or sets owner, group or persist; reading it back
        a moment after its last event catches those.
        """
        self._recheck_later(
            info.name
            for kind, info in events
            if kind == "link" and isinstance(info, LinkInfo) and info.kind in ("tun", "tap")
        )

    def _recheck_later(self, names: Iterable[str]) -> None:
        """Read these links again in RECHECK_DELAY."""
        self._recheck.update(names)
        if self._recheck and self._recheck_timer is None:
            self._recheck_timer = asyncio.get_running_loop().call_later(
                RECHECK_DELAY, self._run_recheck
            )

    def _run_recheck(self) -> None:
        self._recheck_timer = None
        names, self._recheck = sorted(self._recheck), set()
        task = asyncio.get_running_loop().create_task(self.refresh(*names))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
