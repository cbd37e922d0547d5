"""The helper's D-Bus methods and signals, adapting calls to the DeviceManager."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterator
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tungui_contract.bus import INTERFACE, OBJECT_PATH, SIGNAL_DEVICES_CHANGED
from tungui_contract.checks import check_target
from tungui_contract.errors import Failed, NotFound

from . import __version__, authorize, validate
from .authorize import Authorization
from .callers import Caller, Callers
from .capture.held import HeldCapture
from .capture.ring import RingCapture
from .capture.stream import Capture
from .counters import StatisticsTicker
from .devices import DeviceManager, State
from .dispatch import PUBLIC, Dispatcher, FdReply, method
from .limits import (
    CAPTURES_PER_USER,
    CHECK_TIMEOUT,
    INTERACTIVE_TIMEOUT,
    Tally,
    TransientCaps,
)
from .listing import DeviceForms, SharedListing
from .marshalled import MarshalledBody
from .netlink import LinkInfo
from .policy import ManagePolicy
from .polkit import CHANGED_RULE, GRANT_LIFETIME, Authority
from .table import Delta
from .wire import wire_name

log = logging.getLogger(__name__)

#: Changes are gathered for this long and sent as one DevicesChanged, so a
#: burst of netlink events never floods the shared system bus.  While one
#: DevicesChanged waits for the bus to take it, changes gather on; while
#: a Statistics signal waits, ticks are skipped (their counters are totals,
#: the next one carries them): signals never pile up in the helper.
SIGNAL_INTERVAL = 0.05

_NAME_OWNER_GONE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg2=''"
)


def _name(value: Any) -> str:
    return check_target(value)


def _packet(value: Any) -> bytes:
    return validate.packet(value)


class HelperService:
    """Implements io.github.tungui.Helper1 on a bus connection."""

    def __init__(
        self,
        bus: MessageBus,
        *,
        grant_lifetime: float = GRANT_LIFETIME,
        check_timeout: float = CHECK_TIMEOUT,
        interactive_timeout: float = INTERACTIVE_TIMEOUT,
        policy: ManagePolicy | None = None,
    ) -> None:
        self.bus = bus
        self.policy = policy or ManagePolicy()
        self.devices = DeviceManager(self._changed)
        self.callers = Callers(bus)
        self.authority = Authority(
            bus,
            lifetime=grant_lifetime,
            check_timeout=check_timeout,
            interactive_timeout=interactive_timeout,
        )
        self.dispatcher = Dispatcher(
            bus,
            self,
            self.authority,
            self.callers,
            {"Version": lambda: Variant("s", __version__)},
        )
        self._pending = Delta()
        # Each device's variants and JSON: most devices do not change
        # between two listings, and building them is the larger part of
        # answering one.
        self._forms = DeviceForms()
        # The last ListDevices body, marshalled, and the state it shows.
        self._listed: tuple[State, MarshalledBody] | None = None
        # The last listing as a file (ListDevicesByFileDescriptor).
        self._listing_file = SharedListing("tungui-devices")
        #: Clients watching DevicesChanged; the helper stays while there are any.
        self.subscribers: set[str] = set()
        self.ticker = StatisticsTicker(self._counted_names, self._send_statistics)
        #: Running captures; each ends when its reader closes or leaves the bus.
        self.captures: set[Capture] = set()
        self._captures_per_user = Tally(
            CAPTURES_PER_USER, "Your user already runs {cap} captures; close one first."
        )
        self._transient = TransientCaps(self._holdings, self._uid_of)
        self._flush: asyncio.TimerHandle | None = None
        #: The last DevicesChanged and Statistics signals, until the bus takes them.
        self._devices_changed: asyncio.Future[None] | None = None
        self._emit_when_sent = False
        self._statistics: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Read the devices, follow clients leaving the bus, take calls."""
        await self.devices.start()
        self.bus.add_message_handler(self._client_gone)
        await self._bus_call("AddMatch", "s", [_NAME_OWNER_GONE])
        self.authority.follow_changes()
        await self._bus_call("AddMatch", "s", [CHANGED_RULE])
        self.bus.add_message_handler(self.dispatcher.handle)

    def close(self) -> None:
        """Release everything the helper holds."""
        self.ticker.close()
        for capture in list(self.captures):
            capture.stop()
        if self._flush is not None:
            self._flush.cancel()
        self._listing_file.close()
        self.devices.close()

    # --------------------------------------------------------------- methods

    @method("ListDevices", action=PUBLIC)
    async def list_devices(self, caller: Caller) -> MarshalledBody:
        state = self.devices.state()
        if self._listed is None or self._listed[0] != state:
            devices = [self._forms.variants(d) for d in self.devices.list_devices()]
            self._listed = (state, MarshalledBody.of("aa{sv}", devices))
        return self._listed[1]

    @method("ListDevicesByFileDescriptor", action=PUBLIC)
    async def list_devices_by_fd(self, caller: Caller) -> FdReply:
        fd = self._listing_file.open(
            self.devices.state(), lambda: self._forms.listing(self.devices.list_devices())
        )
        return FdReply([0], [fd])

    # What a change needs is decided from the table before polkit is asked,
    # and again under the device lock once it has answered (authorize.py).

    def _for_create(
        self, caller: Caller, spec: validate.DeviceSpec, bridge: LinkInfo | None
    ) -> Authorization:
        return authorize.for_create(self.devices, self.policy, caller, spec, bridge)

    def _for_change(
        self,
        caller: Caller,
        link: LinkInfo | None,
        changes: validate.Changes,
        bridge: LinkInfo | None,
    ) -> Authorization:
        assert link is not None
        return authorize.for_change(self.devices, self.policy, caller, link, changes, bridge)

    def _for_device(self, caller: Caller, link: LinkInfo | None, request: str) -> Authorization:
        assert link is not None
        return authorize.for_device(self.devices, caller, link, request)

    @method(
        "CreateDevice",
        parse=(validate.device_spec,),
        action=lambda self, caller, spec: self._for_create(
            caller, spec, None if spec.master is None else self.devices.bridge(spec.master)
        ),
    )
    async def create_device(
        self, caller: Caller, spec: validate.DeviceSpec, *, authorized: Authorization
    ) -> list[Any]:
        def make() -> Awaitable[str]:
            return self.devices.create(
                spec,
                caller.name,
                caller.uid,
                authorized,
                lambda _link, bridge: self._for_create(caller, spec, bridge),
            )

        if spec.persist:
            return [await make()]
        with self._transient.making(caller.uid, spec.queues):
            name = await make()
        if not await self._still_connected(caller.name):
            # The caller left while the device was being made.
            self.devices.release(caller.name)
        return [name]

    @method(
        "CreateBridge",
        parse=(validate.bridge_spec,),
        action=lambda self, caller, spec: authorize.for_bridge(self.policy, spec),
    )
    async def create_bridge(self, caller: Caller, spec: validate.BridgeSpec) -> list[Any]:
        return [await self.devices.create_bridge(spec)]

    @method(
        "DeleteDevice",
        parse=(_name,),
        action=lambda self, caller, name: self._for_device(
            caller, self.devices.find(name), "remove {}"
        ),
    )
    async def delete_device(
        self, caller: Caller, name: str, *, authorized: Authorization
    ) -> list[Any]:
        await self.devices.delete(
            authorized, lambda link, _bridge: self._for_device(caller, link, "remove {}")
        )
        return []

    @method(
        "ConfigureDevice",
        parse=(_name, validate.changes),
        action=lambda self, caller, name, changes: self._for_change(
            caller,
            self.devices.find(name),
            changes,
            self.devices.bridge(changes.master) if changes.master else None,
        ),
    )
    async def configure_device(
        self,
        caller: Caller,
        name: str,
        changes: validate.Changes,
        *,
        authorized: Authorization,
    ) -> list[Any]:
        def configure() -> Awaitable[None]:
            return self.devices.configure(
                changes,
                caller.name,
                caller.uid,
                authorized,
                lambda link, bridge: self._for_change(caller, link, changes, bridge),
            )

        assert authorized.index is not None
        if changes.persist is False and self.devices.held_handle(authorized.index) is None:
            # The helper will hold one queue of the device for the caller.
            with self._transient.making(caller.uid, 1):
                await configure()
        else:
            await configure()
        if changes.persist is False and not await self._still_connected(caller.name):
            self.devices.release(caller.name)
        return []

    @method("Subscribe", action=PUBLIC)
    async def subscribe(self, caller: Caller) -> list[Any]:
        self.subscribers.add(caller.name)
        if not await self._still_connected(caller.name):
            self.subscribers.discard(caller.name)
        return []

    @method("WatchStatistics", parse=(int,), action=PUBLIC)
    async def watch_statistics(self, caller: Caller, interval_ms: int) -> list[Any]:
        self.ticker.watch(caller.name, interval_ms)
        if not await self._still_connected(caller.name):
            self.ticker.unwatch(caller.name)
        return []

    @method("UnwatchStatistics", action=PUBLIC)
    async def unwatch_statistics(self, caller: Caller) -> list[Any]:
        self.ticker.unwatch(caller.name)
        return []

    @method(
        "InjectPacket",
        parse=(_name, _packet),
        action=lambda self, caller, name, packet: self._for_device(
            caller, self.devices.find(name), "inject a packet into {}"
        ),
    )
    async def inject_packet(
        self, caller: Caller, name: str, packet: bytes, *, authorized: Authorization
    ) -> list[Any]:
        link = self.devices.packet_target(
            authorized,
            lambda link, _bridge: self._for_device(caller, link, "inject a packet into {}"),
            packet,
        )
        capture = self._held_capture(link.name)
        if capture is not None and self.devices.held_handle(link.index) is not None:
            # The capture's thread reads this device: it writes the packet
            # too, so the stream shows it before any answer to it.
            await asyncio.wrap_future(capture.inject(packet))
        else:
            await self.devices.inject(link, packet)
        return []

    @method(
        "StartCapture",
        parse=(_name, validate.capture_options),
        action=lambda self, caller, name, options: authorize.for_capture(self.devices.find(name)),
    )
    async def start_capture(
        self,
        caller: Caller,
        name: str,
        options: validate.CaptureOptions,
        *,
        authorized: Authorization,
    ) -> FdReply:
        # The device polkit was asked about, by index: the name may stand
        # for another device by now.
        found = None if authorized.index is None else self.devices.link(authorized.index)
        if found is None:
            raise NotFound(f"{authorized.details.get('device')} went away while you were asked.")
        link = found
        sender = caller.name
        self._captures_per_user.take(caller.uid)

        def ended(capture: Capture) -> None:
            self.captures.discard(capture)
            self._captures_per_user.give_back(caller.uid)

        handle = self.devices.held_handle(link.index)
        capture: Capture
        try:
            if handle is not None and not self._held_capture(link.name):
                # The helper is this device's program: it reads the device.
                capture = HeldCapture(
                    link.name,
                    handle,
                    prefix=link.framing.headers,
                    longest=link.framing.longest_frame(link.mtu),
                    options=options,
                    client=sender,
                    on_end=ended,
                )
            else:
                capture = RingCapture(link.name, options, sender, ended)
        except BaseException:
            self._captures_per_user.give_back(caller.uid)
            raise
        self.captures.add(capture)
        if not await self._still_connected(sender):
            capture.stop()
            raise Failed("The caller left the bus.")
        # The reply carries a duplicate of the reader's end; the helper's
        # copy of it is closed once the reply is written.
        theirs = capture.theirs.detach()
        log.info(
            "%s captures on %s (%s, snap length %d, at most %s packets/s)",
            sender,
            link.name,
            type(capture).__name__,
            options.snaplen,
            options.max_rate or "all",
        )
        return FdReply([0], [theirs], capture.start)

    def _held_capture(self, name: str) -> HeldCapture | None:
        for capture in self.captures:
            if isinstance(capture, HeldCapture) and capture.device == name:
                return capture
        return None

    @method("GetPermissions", action=PUBLIC)
    async def get_permissions(self, caller: Caller) -> list[Any]:
        # Free, so answered from a short per-caller cache (see
        # Authority.permissions); the call counts against the caps in flight.
        decisions = await self.authority.permissions(caller)
        return [{action.value: decision.value for action, decision in decisions.items()}]

    # ---------------------------------------------------------------- caps

    def _holdings(self) -> Iterator[tuple[str, int]]:
        """The transient devices the helper holds: client's bus name, queues held."""
        for holding in self.devices.holdings():
            yield holding.client, len(holding.handle.fds)

    def _uid_of(self, name: str) -> int | None:
        caller = self.callers.get(name)
        return None if caller is None else caller.uid

    # --------------------------------------------------------------- signals

    def _changed(self, delta: Delta) -> None:
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
            link = self.devices.table.links.get(index)
            if link is not None and link.kind in ("tun", "tap", "bridge"):
                updated.append(self._forms.variants(self.devices.describe(link)))
        removed = sorted({wire_name(name) for name in delta.removed.values()})
        if not updated and not removed:
            return
        self._devices_changed = self.bus.send(
            Message.new_signal(
                OBJECT_PATH, INTERFACE, SIGNAL_DEVICES_CHANGED, "aa{sv}as", [updated, removed]
            )
        )

    def _devices_changed_sent(self, _sent: asyncio.Future[None]) -> None:
        self._emit_when_sent = False
        self._changed(Delta())

    def _counted_names(self) -> list[str]:
        return [link.name for link in self.devices.table.listed()]

    def _send_statistics(self, timestamp_ns: int, rows: list[tuple[Any, ...]]) -> None:
        if self._statistics is not None and not self._statistics.done():
            return  # the last tick still waits for the bus; the next carries the totals
        counters = [[wire_name(row[0]), *row[1:]] for row in rows]
        self._statistics = self.bus.send(
            Message.new_signal(
                OBJECT_PATH, INTERFACE, "Statistics", "ta(stttttttt)", [timestamp_ns, counters]
            )
        )

    # --------------------------------------------------------------- clients

    def _client_gone(self, msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.sender == "org.freedesktop.DBus"
            and not msg.body[2]
        ):
            self.authority.forget(msg.body[0])
            if not msg.body[0].startswith(":"):
                return False  # a well-known name such as polkit's
            self.subscribers.discard(msg.body[0])
            self.ticker.unwatch(msg.body[0])
            for capture in [c for c in self.captures if c.client == msg.body[0]]:
                capture.stop()
            released = self.devices.release(msg.body[0])
            if released:
                log.info("%s left the bus; released %s", msg.body[0], ", ".join(released))
            self.callers.forget(msg.body[0])
        return False

    async def _still_connected(self, name: str) -> bool:
        reply = await self._bus_call("NameHasOwner", "s", [name])
        return bool(reply is not None and reply.body and reply.body[0])

    async def _bus_call(self, member: str, signature: str, body: list[Any]) -> Message | None:
        return await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member=member,
                signature=signature,
                body=body,
            )
        )
