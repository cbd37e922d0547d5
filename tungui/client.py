"""The client library of tungui's helper, for the window and ``tunguictl``.

An asyncio client on dbus-fast.  Calls are built from the interface XML the
helper serves (``tungui_contract``), values go out as the D-Bus types
the contract names, and helper errors come back as the exceptions below,
each carrying the helper's sentence for a person.

No Qt here: the window bridges this to Qt; ``tunguictl`` runs it directly.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dbus_fast import BusType, ErrorType, Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.introspection import Node
from dbus_fast.unpack import unpack_variants

from tungui_contract.bus import (
    BUS_NAME,
    INTERFACE,
    OBJECT_PATH,
    SIGNAL_DEVICES_CHANGED,
    interface_xml,
)
from tungui_contract.errors import (
    Exists,
    Failed,
    InvalidArgument,
    LimitsExceeded,
    NotAuthorized,
    NotFound,
    TunguiError,
    from_reply,
)
from tungui_contract.ifname import counts_characters
from tungui_contract.keys import SPEC_SIGNATURES

__all__ = [
    "Exists",
    "Failed",
    "HelperClient",
    "HelperUnavailable",
    "InvalidArgument",
    "LimitsExceeded",
    "NotAuthorized",
    "NotFound",
    "TunguiError",
]

#: True with dbus-fast 1.84, which can send ASCII text only.
ASCII_ONLY = counts_characters(
    lambda text: bytes(
        Message(
            path="/", interface="a.b", member="M", signature="s", body=[text], serial=1
        )._marshall(False)
    )
)

DevicesChanged = Callable[[list[dict[str, Any]], list[str]], None]
#: (timestamp_ns, {name: (rx packets, rx bytes, rx dropped, rx errors,
#: tx packets, tx bytes, tx dropped, tx errors)})
StatisticsCallback = Callable[[int, dict[str, tuple[int, ...]]], None]


class HelperUnavailable(TunguiError):
    """The helper is not installed, not running, or left the bus."""

    error_name = "org.freedesktop.DBus.Error.ServiceUnknown"


#: Replies of the bus, rather than of the helper, that mean it is away.
_UNAVAILABLE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.Spawn.ChildExited",
        "org.freedesktop.DBus.Error.Spawn.ExecFailed",
    }
)


def error_of(name: str, message: str) -> TunguiError:
    """The exception an error reply stands for."""
    if name in _UNAVAILABLE:
        return HelperUnavailable(message, name=name)
    return from_reply(name, message)


@functools.cache
def _in_signatures() -> dict[str, str]:
    interface = next(i for i in Node.parse(interface_xml()).interfaces if i.name == INTERFACE)
    return {m.name: "".join(str(a.signature) for a in m.in_args) for m in interface.methods}


def _text(value: str) -> str:
    # dbus-fast 1.84 would send a malformed message and lose the connection.
    if ASCII_ONLY and not value.isascii():
        raise InvalidArgument(
            f"{value!a} is not ASCII, which this version of dbus-fast cannot send."
        )
    return value


def to_spec(values: Mapping[str, Any]) -> dict[str, Variant]:
    """Wrap a spec or change set in the D-Bus types the contract gives each key.

    Raises:
        InvalidArgument: for a key the contract does not know.
    """
    spec = {}
    for key, value in values.items():
        signature = SPEC_SIGNATURES.get(key)
        if signature is None:
            raise InvalidArgument(f"Unknown key {key!r}.")
        if signature == "as":
            value = [_text(str(v)) for v in value]
        elif signature == "s":
            value = _text(value)
        spec[key] = Variant(signature, value)
    return spec


def from_variants(values: Mapping[str, Variant]) -> dict[str, Any]:
    """Unwrap a device dict."""
    return {key: variant.value for key, variant in values.items()}


_pauses = 0
_collect_after = False


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a bulk reply comes in.

    ListDevices with 1,000 devices unmarshals into some 23,000 dicts and
    variants, none of them in a reference cycle.  Every 700 new objects
    start a collection that walks the young ones, every tenth of those a
    larger one, and now and then one of the whole heap: a fifth of the
    client's time for the call, with nothing to free
    (bench/helper_devices.py).  The reply is unmarshalled on the event loop
    before the call returns, so the collector stays off from the call to its
    answer, then goes back to what it was when the last such call ends (a
    program that had turned it off keeps it off).
    """
    global _pauses, _collect_after
    if _pauses == 0:
        _collect_after = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _collect_after:
            gc.enable()


def _reply_fd(reply: Message, what: str) -> int:
    """The fd a reply's ``h`` names; the reply's other fds are closed."""
    fds = reply.unix_fds
    index = reply.body[0] if reply.body else None
    if not isinstance(index, int) or not 0 <= index < len(fds):
        for fd in fds:
            os.close(fd)
        raise Failed(f"The helper sent no {what}.")
    for other in fds:
        if other != fds[index]:
            os.close(other)
    return int(fds[index])


def _read_listing(fd: int) -> list[dict[str, Any]]:
    """The devices in a ListDevicesByFileDescriptor file; the fd is closed."""
    try:
        data = bytearray()
        while chunk := os.pread(fd, 1 << 20, len(data)):
            data += chunk
    finally:
        os.close(fd)
    try:
        devices = json.loads(data)
    except ValueError as exc:
        raise Failed(f"The helper's device list is not JSON: {exc}.") from None
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise Failed("The helper's device list is not a list of devices.")
    return devices


class HelperClient:
    """A connection to the helper.

    Args:
        bus: a connected system bus.
    """

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._watchers: list[DevicesChanged] = []
        self._subscribed = False
        self._statistics: list[StatisticsCallback] = []
        self._statistics_matched = False
        self._handler_added = False
        self._listing_by_fd = True

    @classmethod
    async def connect(cls, address: str | None = None) -> HelperClient:
        """Connect to the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` where set)."""
        try:
            if address is None:
                bus = MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
            else:
                bus = MessageBus(bus_address=address, negotiate_unix_fd=True)
            return cls(await bus.connect())
        except (OSError, ValueError) as exc:
            raise HelperUnavailable(
                f"Cannot reach the system bus: {exc}.",
                name="org.freedesktop.DBus.Error.Disconnected",
            ) from None

    def disconnect(self) -> None:
        """Close the connection (transient devices made through it go away)."""
        self.bus.disconnect()

    async def close(self) -> None:
        """Close the connection and wait until it is closed."""
        self.bus.disconnect()
        # Collect the end-of-stream, or asyncio reports it as never retrieved.
        with contextlib.suppress(Exception):
            await self.bus.wait_for_disconnect()

    async def _call(self, member: str, *args: Any, interactive: bool = False) -> list[Any]:
        return list((await self._reply(member, *args, interactive=interactive)).body)

    async def _reply(self, member: str, *args: Any, interactive: bool = False) -> Message:
        flags = MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION if interactive else MessageFlag.NONE
        reply = await self.bus.call(
            Message(
                destination=BUS_NAME,
                path=OBJECT_PATH,
                interface=INTERFACE,
                member=member,
                signature=_in_signatures()[member],
                body=list(args),
                flags=flags,
            )
        )
        if reply is None:
            raise HelperUnavailable(
                "The helper did not answer.", name="org.freedesktop.DBus.Error.NoReply"
            )
        if reply.message_type == MessageType.ERROR:
            error_name = reply.error_name or ""
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else error_name
            raise error_of(error_name, text)
        return reply

    async def list_devices(self) -> list[dict[str, Any]]:
        """Every TUN, TAP and bridge device, as plain dicts.

        The list comes in a file (ListDevicesByFileDescriptor), which costs
        the bus and this process a fraction of what ListDevices does with
        many devices; from a helper older than that method, through
        ListDevices.
        """
        if self._listing_by_fd:
            with _collection_paused():
                try:
                    reply = await self._reply("ListDevicesByFileDescriptor")
                except TunguiError as exc:
                    if exc.name != ErrorType.UNKNOWN_METHOD.value:
                        raise
                    self._listing_by_fd = False
                else:
                    return _read_listing(_reply_fd(reply, "device list"))
        return await self.list_devices_in_reply()

    async def list_devices_in_reply(self) -> list[dict[str, Any]]:
        """Every device, as plain dicts, from ListDevices itself."""
        with _collection_paused():
            (devices,) = await self._call("ListDevices")
            # dbus-fast's compiled unwrapping (the same as from_variants).
            unwrapped: list[dict[str, Any]] = unpack_variants(devices)
            return unwrapped

    async def create_device(self, spec: Mapping[str, Any], *, interactive: bool = True) -> str:
        """Create a TUN/TAP device (keys as in docs/dbus.md); return its name.

        A device with ``persist`` false lives as long as this connection.
        """
        (name,) = await self._call("CreateDevice", to_spec(spec), interactive=interactive)
        return str(name)

    async def create_bridge(self, spec: Mapping[str, Any], *, interactive: bool = True) -> str:
        """Create a bridge; return its name."""
        (name,) = await self._call("CreateBridge", to_spec(spec), interactive=interactive)
        return str(name)

    async def delete_device(self, name: str, *, interactive: bool = True) -> None:
        """Remove a device or bridge."""
        await self._call("DeleteDevice", _text(name), interactive=interactive)

    async def configure_device(
        self, name: str, changes: Mapping[str, Any], *, interactive: bool = True
    ) -> None:
        """Change a device: all of ``changes`` or none of them."""
        await self._call("ConfigureDevice", _text(name), to_spec(changes), interactive=interactive)

    async def start_capture(
        self,
        name: str,
        *,
        snaplen: int | None = None,
        max_rate: int = 0,
        interactive: bool = True,
    ) -> socket.socket:
        """Capture a device's packets; the stream is for this caller alone.

        Args:
            name: the device.
            snaplen: bytes kept of each packet (all of it by default).
            max_rate: packets a second wanted at most; beyond that the
                helper samples (0: every packet).
            interactive: let polkit ask for a password.

        Returns:
            A SOCK_SEQPACKET socket carrying batches of packets (read them
            with :func:`tungui.capture.read_packets`); close it to stop.
        """
        options = {} if snaplen is None else {"snaplen": Variant("u", snaplen)}
        if max_rate:
            options["max_rate"] = Variant("u", max_rate)
        reply = await self._reply("StartCapture", _text(name), options, interactive=interactive)
        return socket.socket(fileno=_reply_fd(reply, "capture stream"))

    async def inject_packet(self, name: str, packet: bytes, *, interactive: bool = True) -> None:
        """Put one packet into a TUN/TAP device, as its program would write it."""
        await self._call("InjectPacket", _text(name), bytes(packet), interactive=interactive)

    async def get_permissions(self) -> dict[str, str]:
        """polkit's answer per action for this caller: yes, auth or no."""
        (permissions,) = await self._call("GetPermissions")
        return dict(permissions)

    async def subscribe(self) -> None:
        """Keep the helper running while this connection lasts (for watchers)."""
        await self._call("Subscribe")

    async def watch_devices(self, callback: DevicesChanged) -> None:
        """Call ``callback(updated, removed)`` on every DevicesChanged signal."""
        self._watchers.append(callback)
        if self._subscribed:
            return
        self._subscribed = True
        self._ensure_handler()
        rule = (
            f"type='signal',sender='{BUS_NAME}',interface='{INTERFACE}',"
            f"member='{SIGNAL_DEVICES_CHANGED}',"
            f"path='{OBJECT_PATH}'"
        )
        await self.add_match(rule)

    async def watch_statistics(self, interval_ms: int, callback: StatisticsCallback) -> None:
        """Call ``callback(timestamp_ns, counters)`` on every Statistics tick.

        The helper sends them every ``interval_ms`` (100 to 10,000) while
        this connection lasts.
        """
        if callback not in self._statistics:
            self._statistics.append(callback)
        if not self._statistics_matched:
            self._statistics_matched = True
            self._ensure_handler()
            await self.add_match(
                f"type='signal',sender='{BUS_NAME}',interface='{INTERFACE}',"
                f"member='Statistics',path='{OBJECT_PATH}'"
            )
        await self._call("WatchStatistics", interval_ms)

    def _ensure_handler(self) -> None:
        if not self._handler_added:
            self._handler_added = True
            self.bus.add_message_handler(self._on_message)

    async def add_match(self, rule: str) -> None:
        """Ask the bus to route signals matching ``rule`` to this connection."""
        await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

    def _on_message(self, msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.interface == INTERFACE
            and msg.member == SIGNAL_DEVICES_CHANGED
            and msg.path == OBJECT_PATH
        ):
            updated = [from_variants(d) for d in msg.body[0]]
            removed = list(msg.body[1])
            for callback in self._watchers:
                callback(updated, removed)
        elif (
            msg.message_type == MessageType.SIGNAL
            and msg.interface == INTERFACE
            and msg.member == "Statistics"
            and msg.path == OBJECT_PATH
            and self._statistics
        ):
            timestamp, rows = msg.body
            counters = {str(row[0]): tuple(int(v) for v in row[1:]) for row in rows}
            for statistics in self._statistics:
                statistics(int(timestamp), counters)
        return False
