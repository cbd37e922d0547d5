"""A connection to tungui's helper on the system bus, and its calls.

Calls are built from the interface XML the helper serves
(``tungui_contract``), values go out as the D-Bus types the contract names
(:mod:`.values`), and error replies come back as exceptions (:mod:`.errors`).
Listed devices come back as :class:`~tungui_contract.device.Device` records.

No Qt here, and nothing that reaches beyond the connection: the window runs
this on a thread of its own; ``tunguictl`` runs it directly.  In particular
the garbage collector is the program's to switch, never this library's
(issue 11: it used to be paused process-wide from the bus thread during a
listing, which measured no faster once the listing came in a file).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
from collections.abc import Callable, Mapping
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
from tungui_contract.device import Device
from tungui_contract.errors import Failed, TunguiError

from .errors import HelperUnavailable, error_of
from .values import from_variants, text, to_spec

#: (updated or new devices, names of the devices that went away)
DevicesChanged = Callable[[list[Device], list[str]], None]
#: (timestamp_ns, {name: (rx packets, rx bytes, rx dropped, rx errors,
#: tx packets, tx bytes, tx dropped, tx errors)})
StatisticsCallback = Callable[[int, dict[str, tuple[int, ...]]], None]


@functools.cache
def _in_signatures() -> dict[str, str]:
    interface = next(i for i in Node.parse(interface_xml()).interfaces if i.name == INTERFACE)
    return {m.name: "".join(str(a.signature) for a in m.in_args) for m in interface.methods}


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


def _records(devices: list[dict[str, Any]]) -> list[Device]:
    """The records of listed device dicts.

    Raises:
        Failed: a dict has no name, or a value of the wrong type.
    """
    try:
        return [Device.from_wire(values) for values in devices]
    except (KeyError, TypeError) as exc:
        raise Failed(f"The helper listed a device it did not describe: {exc}.") from None


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
            sentence = (
                reply.body[0] if reply.body and isinstance(reply.body[0], str) else error_name
            )
            raise error_of(error_name, sentence)
        return reply

    async def list_devices(self) -> list[Device]:
        """Every TUN, TAP and bridge device.

        The list comes in a file (ListDevicesByFileDescriptor), which costs
        the bus and this process a fraction of what ListDevices does with
        many devices; from a helper older than that method, through
        ListDevices.
        """
        if self._listing_by_fd:
            try:
                reply = await self._reply("ListDevicesByFileDescriptor")
            except TunguiError as exc:
                if exc.name != ErrorType.UNKNOWN_METHOD.value:
                    raise
                self._listing_by_fd = False
            else:
                return _records(_read_listing(_reply_fd(reply, "device list")))
        return await self.list_devices_in_reply()

    async def list_devices_in_reply(self) -> list[Device]:
        """Every device, from ListDevices itself."""
        (devices,) = await self._call("ListDevices")
        # dbus-fast's compiled unwrapping (the same as from_variants).
        unwrapped: list[dict[str, Any]] = unpack_variants(devices)
        return _records(unwrapped)

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
        await self._call("DeleteDevice", text(name), interactive=interactive)

    async def configure_device(
        self, name: str, changes: Mapping[str, Any], *, interactive: bool = True
    ) -> None:
        """Change a device: all of ``changes`` or none of them."""
        await self._call("ConfigureDevice", text(name), to_spec(changes), interactive=interactive)

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
            with :func:`tungui.packets.stream.read_packets`); close it to stop.
        """
        options = {} if snaplen is None else {"snaplen": Variant("u", snaplen)}
        if max_rate:
            options["max_rate"] = Variant("u", max_rate)
        reply = await self._reply("StartCapture", text(name), options, interactive=interactive)
        return socket.socket(fileno=_reply_fd(reply, "capture stream"))

    async def inject_packet(self, name: str, packet: bytes, *, interactive: bool = True) -> None:
        """Put one packet into a TUN/TAP device, as its program would write it."""
        await self._call("InjectPacket", text(name), bytes(packet), interactive=interactive)

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
            updated = _records([from_variants(d) for d in msg.body[0]])
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
