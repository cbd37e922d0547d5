"""The helper client on an asyncio thread of its own, spoken to with Qt signals.

dbus-fast needs a real asyncio loop (QtAsyncio lacks ``add_reader`` and
``sock_connect``), and QtDBus cannot read ``a{sv}`` from Python, so the
client runs on a thread with a plain asyncio loop.  Qt signals emitted from
that thread reach receivers in the GUI thread as queued calls; nothing in
the window ever waits for the bus.

The thread also keeps the window connected: it follows the helper's bus
name, re-subscribes and re-lists when the helper comes back (started again
by D-Bus activation, or by hand), and says why when it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dbus_fast import Message, MessageType
from PySide6.QtCore import QObject, Signal

from tungui.client import HelperClient, HelperUnavailable, TunguiError
from tungui.client.errors import error_of
from tungui_contract.bus import BUS_NAME
from tungui_contract.device import Device

log = logging.getLogger(__name__)

#: Longest wait between two attempts to reach an absent helper.
MAX_RETRY = 10.0
#: How often the counters are refreshed: several times a second.
STATISTICS_INTERVAL_MS = 250

_UNAVAILABLE = "org.freedesktop.DBus.Error.ServiceUnknown"

_T = TypeVar("_T")

#: A call of the client library, for the bus thread to run: typed end to
#: end, so a reader (and mypy) follows a button's click to the bus.
ClientCall = Callable[[HelperClient], Awaitable[_T]]


@dataclass(frozen=True)
class _Request(Generic[_T]):
    """A submitted call and what the GUI thread does with its outcome."""

    call: ClientCall[_T]
    on_done: Callable[[_T], None]
    on_failed: Callable[[TunguiError], None]
    #: Whether an authentication may follow (permissions are asked again).
    refresh_permissions: bool


def explain(error: TunguiError, *, seen: bool = False) -> str:
    """A sentence for the banner when the helper cannot be reached.

    Args:
        error: why the last call failed.
        seen: whether the helper answered earlier in this session.
    """
    if error.name == _UNAVAILABLE and seen:
        return (
            "The tungui helper stopped and cannot be started again automatically; "
            "waiting for it to come back."
        )
    if error.name == _UNAVAILABLE:
        return (
            "The tungui helper is not installed or cannot be started. "
            "Install the tungui-helper package (it is not part of the Flatpak)."
        )
    if error.name == "org.freedesktop.DBus.Error.Disconnected":
        return error.message
    return f"The tungui helper is not available: {error.message}"


class BusThread(QObject):
    """The helper, as seen from the GUI thread.

    Args:
        address: a D-Bus address (tests); the system bus when None.
    """

    #: Every device (Device records), after (re)connecting.
    devicesReset = Signal(list)
    #: Devices (Device records) that appeared or changed, names that went away.
    devicesChanged = Signal(list, list)
    #: Whether the helper can be used now, and if not, why.
    availabilityChanged = Signal(bool, str)
    #: polkit's answer per action: "yes", "auth" or "no".
    permissionsChanged = Signal(dict)
    #: One Statistics tick: timestamp_ns and {name: counters}.
    statistics = Signal(object, object)
    #: A request finished: its id and result (the GUI thread then calls its on_done).
    finished = Signal(int, object)
    #: A request failed: its id, the D-Bus error name and the helper's sentence.
    failed = Signal(int, str, str)

    def __init__(self, address: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._address = address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tungui-bus", daemon=True)
        self._ids = itertools.count(1)
        # Touched on the GUI thread only.
        self._requests: dict[int, _Request[Any]] = {}
        self.finished.connect(self._deliver)
        self.failed.connect(self._deliver_failure)
        self._client: HelperClient | None = None
        self._available = False
        self._owner_changed: asyncio.Event | None = None
        self._owner = ""
        self._stopping = False
        self._seen = False
        self._retry_now: asyncio.Event | None = None
        self._bus_gone: asyncio.Future[None] = asyncio.Future(loop=self._loop)

    # ------------------------------------------------------------ GUI thread

    @property
    def available(self) -> bool:
        """Whether the helper answered last time we asked."""
        return self._available

    def start(self) -> None:
        """Start the bus thread; the first devicesReset follows."""
        self._thread.start()

    def stop(self) -> None:
        """Leave the bus (transient devices go with us) and end the thread."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout=5)
        self._thread.join(timeout=5)

    def retry(self) -> None:
        """Try to reach the helper now rather than at the next scheduled attempt."""
        self._loop.call_soon_threadsafe(self._wake)

    def submit(
        self,
        call: ClientCall[_T],
        on_done: Callable[[_T], None],
        on_failed: Callable[[TunguiError], None],
        *,
        refresh_permissions: bool = True,
    ) -> int:
        """Run ``call(client)`` on the bus thread; its outcome comes back on this one.

        Args:
            call: what to ask, e.g. ``lambda c: c.create_device(spec)``.
            on_done: called on the GUI thread with the call's result.
            on_failed: called on the GUI thread with the error (the helper
                being away is :class:`~tungui.client.HelperUnavailable`).
            refresh_permissions: ask polkit's answers again after a failure
                (an authentication may have changed them).

        Returns:
            The request id that ``finished`` or ``failed`` will carry.
        """
        request_id = next(self._ids)
        request = _Request(call, on_done, on_failed, refresh_permissions)
        self._requests[request_id] = request
        asyncio.run_coroutine_threadsafe(self._call(request_id, request), self._loop)
        return request_id

    def _deliver(self, request_id: int, result: object) -> None:
        request = self._requests.pop(request_id, None)
        if request is not None:
            request.on_done(result)

    def _deliver_failure(self, request_id: int, name: str, message: str) -> None:
        request = self._requests.pop(request_id, None)
        if request is not None:
            request.on_failed(error_of(name, message))

    # ------------------------------------------------------------ bus thread

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._owner_changed = asyncio.Event()
        self._retry_now = asyncio.Event()
        task = self._loop.create_task(self._supervise())
        try:
            self._loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def _wake(self) -> None:
        if self._retry_now is not None:
            self._retry_now.set()

    async def _shutdown(self) -> None:
        if self._client is not None:
            self._client.disconnect()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def _set_available(self, available: bool, reason: str) -> None:
        log.debug("helper available: %s %s", available, reason)
        self._available = available
        self.availabilityChanged.emit(available, reason)

    async def _call(self, request_id: int, request: _Request[Any]) -> None:
        client = self._client
        try:
            if client is None or not self._available:
                raise HelperUnavailable("The tungui helper is not available.", name=_UNAVAILABLE)
            result = await request.call(client)
        except TunguiError as exc:
            self.failed.emit(request_id, exc.name, exc.message)
            if request.refresh_permissions:
                await self._refresh_permissions()
            return
        except Exception as exc:  # a bug of ours: say so rather than hang the window
            log.exception("request %d failed", request_id)
            self.failed.emit(request_id, "", f"The request failed: {exc}")
            return
        self.finished.emit(request_id, result)

    async def _refresh_permissions(self) -> None:
        # An authentication may have changed what polkit will say.
        client = self._client
        if client is None or not self._available:
            return
        with contextlib.suppress(TunguiError):
            self.permissionsChanged.emit(await client.get_permissions())

    async def _supervise(self) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                client = await HelperClient.connect(self._address)
            except HelperUnavailable as exc:
                self._set_available(False, explain(exc))
                await self._pause(delay)
                delay = min(delay * 2, MAX_RETRY)
                continue
            self._client = client
            # One waiter for the connection's end, never cancelled: cancelling
            # a wait_for_disconnect() cancels dbus-fast's own future with it.
            self._bus_gone = asyncio.ensure_future(self._disconnected(client))
            try:
                await self._follow_owner(client)
                await client.watch_devices(self._on_devices_changed)
                while client.bus.connected and not self._stopping:
                    if await self._attach(client):
                        delay = 0.5
                        await self._owner_gone()
                        if self._stopping:
                            return
                        self._set_available(
                            False, "The tungui helper stopped; waiting for it to come back."
                        )
                    await self._pause(delay, owner=True)
                    delay = min(delay * 2, MAX_RETRY)
            finally:
                self._client = None
                client.disconnect()
            if not self._stopping:
                self._set_available(False, "Lost the connection to the system bus.")

    async def _attach(self, client: HelperClient) -> bool:
        """Subscribe and list; True when the helper answered."""
        # Changes that arrive while listing are passed on; the list, which
        # is newer, follows them.
        self._available = True
        try:
            await client.subscribe()
            devices = await client.list_devices()
            permissions = await client.get_permissions()
            await client.watch_statistics(STATISTICS_INTERVAL_MS, self._on_statistics)
        except TunguiError as exc:
            self._set_available(False, explain(exc, seen=self._seen))
            return False
        self._seen = True
        self.devicesReset.emit(devices)
        self.permissionsChanged.emit(permissions)
        self._set_available(True, "")
        return True

    async def _follow_owner(self, client: HelperClient) -> None:
        def on_message(msg: Message) -> bool:
            if (
                msg.message_type == MessageType.SIGNAL
                and msg.member == "NameOwnerChanged"
                and msg.sender == "org.freedesktop.DBus"
                and msg.body
                and msg.body[0] == BUS_NAME
            ):
                self._owner = msg.body[2]
                log.debug("owner of %s: %r", BUS_NAME, self._owner)
                assert self._owner_changed is not None
                self._owner_changed.set()
            return False

        client.bus.add_message_handler(on_message)
        await client.add_match(
            "type='signal',sender='org.freedesktop.DBus',"
            f"member='NameOwnerChanged',arg0='{BUS_NAME}'"
        )

    async def _owner_gone(self) -> None:
        assert self._owner_changed is not None
        while True:
            self._owner_changed.clear()
            changed: asyncio.Future[Any] = asyncio.ensure_future(self._owner_changed.wait())
            waits: list[asyncio.Future[Any]] = [self._bus_gone, changed]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if self._bus_gone.done() or not self._owner:
                return

    @staticmethod
    async def _disconnected(client: HelperClient) -> None:
        with contextlib.suppress(Exception):
            await client.bus.wait_for_disconnect()

    async def _pause(self, delay: float, *, owner: bool = False) -> None:
        """Wait ``delay``, or less if the helper's name gets an owner or retry() is asked."""
        assert self._retry_now is not None and self._owner_changed is not None
        self._retry_now.clear()
        waits: list[Coroutine[Any, Any, Any]] = [self._retry_now.wait()]
        if owner:
            self._owner_changed.clear()
            waits.append(self._owner_changed.wait())
        tasks = [asyncio.ensure_future(w) for w in waits]
        await asyncio.wait(tasks, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()

    def _on_statistics(self, timestamp_ns: int, counters: dict[str, tuple[int, ...]]) -> None:
        if self._available:
            self.statistics.emit(timestamp_ns, counters)

    def _on_devices_changed(self, updated: list[Device], removed: list[str]) -> None:
        if self._available:
            self.devicesChanged.emit(updated, removed)
