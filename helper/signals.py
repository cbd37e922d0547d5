"""The helper's signals: DevicesChanged and Statistics, never piling up.

Changes are gathered for SIGNAL_INTERVAL and sent as one DevicesChanged,
so a burst of netlink events never floods the shared system bus.  While
one DevicesChanged waits for the bus to take it, changes gather on; while
a Statistics signal waits, ticks are skipped (their counters are totals,
the next one carries them): signals never pile up in the helper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dbus_fast import Message
from dbus_fast.aio import MessageBus

from tungui_contract.bus import INTERFACE, OBJECT_PATH, SIGNAL_DEVICES_CHANGED

from .bustext import listed_name
from .listing import DeviceForms
from .table import Delta

#: How long changes are gathered into one DevicesChanged (seconds).
SIGNAL_INTERVAL = 0.05

#: The record of a listed device by its index, as ListDevices describes it
#: (None: gone, or not a kind that is listed).
Describe = Callable[[int], dict[str, Any] | None]


class Signals:
    """Sends DevicesChanged and Statistics on the helper's connection.

    Args:
        bus: the connection.
        forms: each device's variants, shared with the listings.
        describe: a changed device's record, read when the signal goes out.
    """

    def __init__(self, bus: MessageBus, forms: DeviceForms, describe: Describe) -> None:
        self.bus = bus
        self._forms = forms
        self._describe = describe
        self._pending = Delta()
        self._flush: asyncio.TimerHandle | None = None
        #: The last DevicesChanged and Statistics signals, until the bus takes them.
        self._devices_changed: asyncio.Future[None] | None = None
        self._emit_when_sent = False
        self._statistics: asyncio.Future[None] | None = None

    def close(self) -> None:
        """Send nothing more."""
        if self._flush is not None:
            self._flush.cancel()

    def changed(self, delta: Delta) -> None:
        """Gather changes of the table, for the next DevicesChanged."""
        self._pending.merge(delta)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(SIGNAL_INTERVAL, self._emit)

    def _emit(self) -> None:
        self._flush = None
        waiting = self._devices_changed
        if waiting is not None and not waiting.done():
            # The last one still waits for the bus: gather on, send once it went.
            if not self._emit_when_sent:
                self._emit_when_sent = True
                waiting.add_done_callback(self._devices_changed_sent)
            return
        delta, self._pending = self._pending, Delta()
        for index in delta.removed:
            self._forms.forget(index)
        updated = []
        for index in sorted(delta.changed):
            device = self._describe(index)
            if device is not None:
                updated.append(self._forms.variants(device))
        removed = sorted({listed_name(name) for name in delta.removed.values()})
        if not updated and not removed:
            return
        self._devices_changed = self.bus.send(
            Message.new_signal(
                OBJECT_PATH, INTERFACE, SIGNAL_DEVICES_CHANGED, "aa{sv}as", [updated, removed]
            )
        )

    def _devices_changed_sent(self, _sent: asyncio.Future[None]) -> None:
        self._emit_when_sent = False
        self.changed(Delta())

    def statistics(self, timestamp_ns: int, rows: list[tuple[Any, ...]]) -> None:
        """Send one Statistics tick, unless the last still waits for the bus."""
        if self._statistics is not None and not self._statistics.done():
            return  # the last tick still waits for the bus; the next carries the totals
        counters = [[listed_name(row[0]), *row[1:]] for row in rows]
        self._statistics = self.bus.send(
            Message.new_signal(
                OBJECT_PATH, INTERFACE, "Statistics", "ta(stttttttt)", [timestamp_ns, counters]
            )
        )
