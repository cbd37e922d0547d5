"""The helper's D-Bus methods and signals, adapting calls to the DeviceManager."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from . import __version__, validate
from .capture import Capture, HeldCapture, RingCapture
from .contract import INTERFACE, OBJECT_PATH, SIGNAL_DEVICES_CHANGED, Action
from .counters import StatisticsTicker
from .devices import DeviceManager, State
from .dispatch import PUBLIC, Dispatcher, FdReply, method
from .errors import Failed
from .listing import DeviceForms, SharedListing
from .marshalled import MarshalledBody
from .polkit import CHANGED_RULE, GRANT_LIFETIME, Authority
from .table import Delta
from .tun import VNET_HDR_SIZE
from .wire import wire

log = logging.getLogger(__name__)

#: Changes are gathered for this long and sent as one DevicesChanged, so a
#: burst of netlink events never floods the shared system bus (a full socket
#: buffer makes dbus-fast drop the connection).
SIGNAL_INTERVAL = 0.05
#: Captures one client may run at once (each holds two fixed-size buffers).
MAX_CAPTURES_PER_CLIENT = 8

_NAME_OWNER_GONE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg2=''"
)


def _name(value: Any) -> str:
    return validate.check_target(value)


def _packet(value: Any) -> bytes:
    return validate.packet(value)


class HelperService:
    """Implements io.github.tungui.Helper1 on a bus connection."""

    def __init__(self, bus: MessageBus, *, grant_lifetime: float = GRANT_LIFETIME) -> None:
        self.bus = bus
        self.devices = DeviceManager(self._changed)
        self.authority = Authority(bus, lifetime=grant_lifetime)
        self.dispatcher = Dispatcher(
            bus, self, self.authority, {"Version": lambda: Variant("s", __version__)}
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
        self._flush: asyncio.TimerHandle | None = None

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
    async def list_devices(self, sender: str) -> MarshalledBody:
        state = self.devices.state()
        if self._listed is None or self._listed[0] != state:
            devices = [self._forms.variants(d) for d in self.devices.list_devices()]
            self._listed = (state, MarshalledBody.of("aa{sv}", devices))
        return self._listed[1]

    @method("ListDevicesByFileDescriptor", action=PUBLIC)
    async def list_devices_by_fd(self, sender: str) -> FdReply:
        fd = self._listing_file.open(
            self.devices.state(), lambda: self._forms.listing(self.devices.list_devices())
        )
        return FdReply([0], [fd])

    @method(
        "CreateDevice",
        parse=(validate.device_spec,),
        action=lambda self, spec: self.devices.action_for_create(spec),
    )
    async def create_device(self, sender: str, spec: validate.DeviceSpec) -> list[Any]:
        name = await self.devices.create(spec, sender)
        if not spec.persist and not await self._still_connected(sender):
            # The caller left while the device was being made.
            self.devices.release(sender)
        return [name]

    @method("CreateBridge", parse=(validate.bridge_spec,), action=Action.MANAGE)
    async def create_bridge(self, sender: str, spec: validate.BridgeSpec) -> list[Any]:
        return [await self.devices.create_bridge(spec)]

    @method("DeleteDevice", parse=(_name,), action=lambda self, name: self.devices.action_for(name))
    async def delete_device(self, sender: str, name: str) -> list[Any]:
        await self.devices.delete(name)
        return []

    @method(
        "ConfigureDevice",
        parse=(_name, validate.changes),
        action=lambda self, name, changes: self.devices.action_for(name, changes),
    )
    async def configure_device(
        self, sender: str, name: str, changes: validate.Changes
    ) -> list[Any]:
        await self.devices.configure(name, changes, sender)
        if changes.persist is False and not await self._still_connected(sender):
            self.devices.release(sender)
        return []

    @method("Subscribe", action=PUBLIC)
    async def subscribe(self, sender: str) -> list[Any]:
        self.subscribers.add(sender)
        if not await self._still_connected(sender):
            self.subscribers.discard(sender)
        return []

    @method("WatchStatistics", parse=(int,), action=PUBLIC)
    async def watch_statistics(self, sender: str, interval_ms: int) -> list[Any]:
        self.ticker.watch(sender, interval_ms)
        if not await self._still_connected(sender):
            self.ticker.unwatch(sender)
        return []

    @method("UnwatchStatistics", action=PUBLIC)
    async def unwatch_statistics(self, sender: str) -> list[Any]:
        self.ticker.unwatch(sender)
        return []

    @method(
        "InjectPacket",
        parse=(_name, _packet),
        action=lambda self, name, packet: self.devices.action_for(name),
    )
    async def inject_packet(self, sender: str, name: str, packet: bytes) -> list[Any]:
        link = self.devices.check_packet(name, packet)
        capture = self._held_capture(link.name)
        if capture is not None and self.devices.held_handle(link.index) is not None:
            # The capture's thread reads this device: it writes the packet
            # too, so the stream shows it before any answer to it.
            await asyncio.wrap_future(capture.inject(packet))
        else:
            await self.devices.inject(link, packet)
        return []

    @method("StartCapture", parse=(_name, validate.capture_options), action=Action.CAPTURE)
    async def start_capture(
        self, sender: str, name: str, options: validate.CaptureOptions
    ) -> FdReply:
        link = self.devices.find(name)
        if sum(1 for c in self.captures if c.client == sender) >= MAX_CAPTURES_PER_CLIENT:
            raise Failed(
                f"You already capture on {MAX_CAPTURES_PER_CLIENT} devices; close one first."
            )
        handle = self.devices.held_handle(link.index)
        capture: Capture
        if handle is not None and not self._held_capture(link.name):
            # The helper is this device's program: it reads the device.
            capture = HeldCapture(
                link.name,
                handle,
                prefix=(4 if link.pi else 0) + (VNET_HDR_SIZE if link.vnet_hdr else 0),
                longest=link.mtu + (18 if link.kind == "tap" else 0),
                options=options,
                client=sender,
                on_end=self.captures.discard,
            )
        else:
            capture = RingCapture(link.name, options, sender, self.captures.discard)
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
    async def get_permissions(self, sender: str) -> list[Any]:
        decisions = await asyncio.gather(
            *(self.authority.check(sender, action, interactive=False) for action in Action)
        )
        return [{action.value: d.value for action, d in zip(Action, decisions, strict=True)}]

    # --------------------------------------------------------------- signals

    def _changed(self, delta: Delta) -> None:
        self._pending.merge(delta)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(SIGNAL_INTERVAL, self._emit)

    def _emit(self) -> None:
        self._flush = None
        delta, self._pending = self._pending, Delta()
        for index in delta.removed:
            self._forms.forget(index)
        updated = []
        for index in sorted(delta.changed):
            link = self.devices.table.links.get(index)
            if link is not None and link.kind in ("tun", "tap", "bridge"):
                updated.append(self._forms.variants(self.devices.describe(link)))
        removed = sorted({wire(name) for name in delta.removed.values()})
        if not updated and not removed:
            return
        self.bus.send(
            Message.new_signal(
                OBJECT_PATH, INTERFACE, SIGNAL_DEVICES_CHANGED, "aa{sv}as", [updated, removed]
            )
        )

    def _counted_names(self) -> list[str]:
        return [link.name for link in self.devices.table.listed()]

    def _send_statistics(self, timestamp_ns: int, rows: list[tuple[Any, ...]]) -> None:
        counters = [[wire(row[0]), *row[1:]] for row in rows]
        self.bus.send(
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
