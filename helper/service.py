"""The helper's D-Bus methods and signals, adapting calls to the DeviceManager."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from dbus_fast import Message, Variant
from dbus_fast.aio import MessageBus

from tungui_contract.bus import Action
from tungui_contract.checks import check_target
from tungui_contract.errors import Failed, NotFound

from . import __version__, authorize, busdaemon, validate
from .authorize import Authorization
from .callers import Caller, Callers
from .capture.running import Captures
from .counters import StatisticsTicker
from .declare import PUBLIC, FdReply, method, one_of
from .devices import DeviceManager, State
from .dispatch import Dispatcher
from .limits import (
    CHECK_TIMEOUT,
    INTERACTIVE_TIMEOUT,
    TransientCaps,
)
from .listing import DeviceForms, SharedListing
from .marshalled import MarshalledBody
from .netlink import LinkInfo
from .policy import ManagePolicy
from .polkit import CHANGED_RULE, GRANT_LIFETIME, Authority
from .signals import Signals

log = logging.getLogger(__name__)

#: The two actions a call on devices may need: ``manage`` for tungui's own
#: within the administrator's bounds, ``manage-foreign`` past them
#: (:mod:`.authorize` says which, per call).
MANAGE, MANAGE_FOREIGN = Action.MANAGE, Action.MANAGE_FOREIGN


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
        # Each device's variants and JSON: most devices do not change
        # between two listings, and building them is the larger part of
        # answering one.
        self._forms = DeviceForms()
        self.signals = Signals(bus, self._forms, self._describe_listed)
        self.devices = DeviceManager(self.signals.changed)
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
        # The last ListDevices body, marshalled, and the state it shows.
        self._listed: tuple[State, MarshalledBody] | None = None
        # The last listing as a file (ListDevicesByFileDescriptor).
        self._listing_file = SharedListing("tungui-devices")
        #: Clients watching DevicesChanged; the helper stays while there are any.
        self.subscribers: set[str] = set()
        self.ticker = StatisticsTicker(self._counted_names, self.signals.statistics)
        self.captures = Captures()
        self._transient = TransientCaps(self._holdings, self._uid_of)

    async def start(self) -> None:
        """Read the devices, follow clients leaving the bus, take calls."""
        await self.devices.start()
        self.bus.add_message_handler(self._client_gone)
        await busdaemon.call(self.bus, "AddMatch", "s", [busdaemon.NAME_OWNER_GONE])
        self.authority.follow_changes()
        await busdaemon.call(self.bus, "AddMatch", "s", [CHANGED_RULE])
        self.bus.add_message_handler(self.dispatcher.handle)

    def close(self) -> None:
        """Release everything the helper holds."""
        self.ticker.close()
        self.captures.stop_all()
        self.signals.close()
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
    # and again under the device lock once it has answered (authorize.py),
    # by the rule its declaration names.

    def _named(self, name: str, *_: Any) -> tuple[LinkInfo, None]:
        return self.devices.find(name), None

    def _bridge_named(self, name: str | None) -> LinkInfo | None:
        return self.devices.bridge(name) if name else None

    def _for_device(self, caller: Caller, link: LinkInfo | None, request: str) -> Authorization:
        assert link is not None
        return authorize.for_device(self.devices, caller, link, request)

    @method(
        "CreateDevice",
        parse=(validate.device_spec,),
        action=one_of(
            MANAGE,
            MANAGE_FOREIGN,
            find=lambda self, spec: (None, self._bridge_named(spec.master)),
            decide=lambda self, caller, _device, bridge, spec: authorize.for_create(
                self.devices, self.policy, caller, spec, bridge
            ),
        ),
    )
    async def create_device(
        self, caller: Caller, spec: validate.DeviceSpec, *, authorized: Authorization
    ) -> list[Any]:
        if spec.persist:
            return [await self.devices.create(spec, caller.name, caller.uid, authorized)]
        with self._transient.making(caller.uid, spec.queues):
            name = await self.devices.create(spec, caller.name, caller.uid, authorized)
        if not await self._still_connected(caller.name):
            # The caller left while the device was being made.
            self.devices.release(caller.name)
        return [name]

    @method(
        "CreateBridge",
        parse=(validate.bridge_spec,),
        action=one_of(
            MANAGE,
            MANAGE_FOREIGN,
            find=lambda self, spec: (None, None),
            decide=lambda self, caller, _device, _bridge, spec: authorize.for_bridge(
                self.policy, spec
            ),
        ),
    )
    async def create_bridge(self, caller: Caller, spec: validate.BridgeSpec) -> list[Any]:
        return [await self.devices.create_bridge(spec)]

    @method(
        "DeleteDevice",
        parse=(_name,),
        action=one_of(
            MANAGE,
            MANAGE_FOREIGN,
            find=_named,
            decide=lambda self, caller, device, _bridge, name: self._for_device(
                caller, device, "remove {}"
            ),
        ),
    )
    async def delete_device(
        self, caller: Caller, name: str, *, authorized: Authorization
    ) -> list[Any]:
        await self.devices.delete(authorized)
        return []

    @method(
        "ConfigureDevice",
        parse=(_name, validate.changes),
        action=one_of(
            MANAGE,
            MANAGE_FOREIGN,
            find=lambda self, name, changes: (
                self.devices.find(name),
                self._bridge_named(changes.master),
            ),
            decide=lambda self, caller, device, bridge, name, changes: authorize.for_change(
                self.devices, self.policy, caller, device, changes, bridge
            ),
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
        assert authorized.index is not None
        if changes.persist is False and self.devices.held_handle(authorized.index) is None:
            # The helper will hold one queue of the device for the caller.
            with self._transient.making(caller.uid, 1):
                await self.devices.configure(changes, caller.name, caller.uid, authorized)
        else:
            await self.devices.configure(changes, caller.name, caller.uid, authorized)
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
        action=one_of(
            MANAGE,
            MANAGE_FOREIGN,
            find=_named,
            decide=lambda self, caller, device, _bridge, name, packet: self._for_device(
                caller, device, "inject a packet into {}"
            ),
        ),
    )
    async def inject_packet(
        self, caller: Caller, name: str, packet: bytes, *, authorized: Authorization
    ) -> list[Any]:
        link = self.devices.packet_target(authorized, packet)
        capture = self.captures.held(link.name)
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
        action=one_of(
            Action.CAPTURE,
            find=_named,
            decide=lambda self, caller, device, _bridge, name, options: authorize.for_capture(
                device
            ),
        ),
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
        capture = self.captures.start(
            link.name,
            link.framing,
            link.mtu,
            self.devices.held_handle(link.index),
            options,
            sender,
            caller.uid,
        )
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

    def _describe_listed(self, index: int) -> dict[str, Any] | None:
        link = self.devices.table.links.get(index)
        if link is None or link.kind not in ("tun", "tap", "bridge"):
            return None
        return self.devices.describe(link)

    def _counted_names(self) -> list[str]:
        return [link.name for link in self.devices.table.listed()]

    # --------------------------------------------------------------- clients

    def _client_gone(self, msg: Message) -> bool:
        name = busdaemon.name_gone(msg)
        if name is None:
            return False
        self.authority.forget(name)
        if not name.startswith(":"):
            return False  # a well-known name such as polkit's
        self.subscribers.discard(name)
        self.ticker.unwatch(name)
        self.captures.stop_for(name)
        released = self.devices.release(name)
        if released:
            log.info("%s left the bus; released %s", name, ", ".join(released))
        self.callers.forget(name)
        return False

    async def _still_connected(self, name: str) -> bool:
        return await busdaemon.still_connected(self.bus, name)
