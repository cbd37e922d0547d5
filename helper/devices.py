"""The helper's core: create, change, remove and hold TUN/TAP devices and bridges.

Plain asyncio code with no D-Bus in it; the service adapts calls to it.
The table is kept in step with the kernel by :mod:`.mirror`; the
transactions are :mod:`.create`, :mod:`.configure` and :mod:`.inject`,
and run on the netlink worker thread, one operation at a time, under one
lock.  The kernel (netlink, ``/dev/net/tun``) is passed in (:mod:`.kernel`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tungui_contract.errors import Failed, InvalidArgument, NotAuthorized, NotFound

from . import configure, create, inject, tun
from .authorize import Authorization
from .describe import describe
from .kernel import EventSource, Netlink, Queues, Tun
from .links import Links
from .mirror import Mirror
from .netlink import MANAGED_ALIAS, EventSocket, LinkInfo
from .table import Delta, DeviceTable
from .validate import BridgeSpec, Changes, DeviceSpec

#: What :meth:`DeviceManager.state` returns: the table's version and the held links.
State = tuple[int, frozenset[int]]


@dataclass
class Holding:
    """A transient device whose queues the helper holds for one client."""

    handle: Queues
    client: str
    #: The client's user, whose caps the queues count against.
    uid: int = -1


class DeviceManager:
    """Every TUN/TAP device and bridge of the namespace, and the ones we hold.

    Args:
        on_change: called (in the event loop) with each batch of changes.
        links: netlink requests (default: a worker thread with pyroute2).
        kernel: ``/dev/net/tun`` (default: the real one, :mod:`.tun`).
        open_events: opens the netlink event socket, at :meth:`start`.
    """

    def __init__(
        self,
        on_change: Callable[[Delta], None],
        *,
        links: Netlink | None = None,
        kernel: Tun | None = None,
        open_events: Callable[[], EventSource] = EventSocket,
    ) -> None:
        self.table = DeviceTable()
        self.links: Netlink = links if links is not None else Links()
        self.kernel: Tun = kernel if kernel is not None else tun
        self._on_change = on_change
        # Changes held back while a device is being made (see _made_whole).
        self._held_back: Delta | None = None
        self.mirror = Mirror(
            self.table, self.links, self._changed, self._forget_vanished, open_events
        )
        self._held: dict[int, Holding] = {}
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------- lifetime

    async def start(self) -> None:
        """Subscribe to netlink events, then read the current state."""
        await self.mirror.start()

    def drain(self) -> None:
        """Apply every pending netlink event to the table."""
        self.mirror.drain()

    def close(self) -> None:
        """Stop listening and drop every held device."""
        self.mirror.close()
        for holding in self._held.values():
            holding.handle.close()
        self._held.clear()
        self.links.close()

    def _changed(self, delta: Delta) -> None:
        if self._held_back is not None:
            self._held_back.merge(delta)
        else:
            self._on_change(delta)

    @contextlib.contextmanager
    def _made_whole(self) -> Iterator[None]:
        """Pass on the changes made meanwhile only once the new device is set up.

        The kernel announces a new link before the helper has marked it as
        tungui's (its alias, read back).  Passed on at once, that half-made
        link could reach clients as someone else's, and if it was removed
        right after, the later change that made it tungui's was folded into
        the removal: the window never knew a device tungui made had gone.
        """
        self._held_back = Delta()
        try:
            yield
        finally:
            delta, self._held_back = self._held_back, None
            if delta:
                self._on_change(delta)

    def _forget_vanished(self) -> None:
        # A held device removed by someone else (ip link del): close its queues.
        for index in [i for i in self._held if i not in self.table.links]:
            self._held.pop(index).handle.close()

    # ------------------------------------------------------------ reading

    @property
    def holds_anything(self) -> bool:
        """Whether the helper holds a device for some client."""
        return bool(self._held)

    def is_managed(self, link: LinkInfo) -> bool:
        """Whether tungui created this device."""
        return link.alias == MANAGED_ALIAS or link.index in self._held

    def describe(self, link: LinkInfo) -> dict[str, Any]:
        """The device as ListDevices reports it (plain Python values)."""
        return describe(
            link, self.table, managed=self.is_managed(link), transient=link.index in self._held
        )

    def state(self) -> State:
        """A key that changes whenever :meth:`list_devices` would answer differently."""
        self.drain()
        return self.table.version, frozenset(self._held)

    def list_devices(self) -> list[dict[str, Any]]:
        """Every TUN, TAP and bridge device."""
        # Events the kernel queued before this call may not have been read
        # yet; read them so a caller sees what it did.
        self.drain()
        return [self.describe(link) for link in self.table.listed()]

    def find(self, name: str) -> LinkInfo:
        """The link of that name, or NotFound."""
        link = self.table.by_name(name)
        if link is None:
            raise NotFound(f"There is no device named {name}.")
        return link

    def bridge(self, name: str) -> LinkInfo:
        """The bridge of that name, or a named error."""
        link = self.table.by_name(name)
        if link is None:
            raise NotFound(f"There is no bridge named {name}.")
        if link.kind != "bridge":
            raise InvalidArgument(f"{name} is not a bridge.")
        return link

    # ------------------------------------------------- what to authorize
    # What authorize.py reads (its Devices protocol).

    def link(self, index: int) -> LinkInfo | None:
        """The link of that index, if there is one."""
        return self.table.links.get(index)

    def ports(self, bridge: LinkInfo) -> list[LinkInfo]:
        """The devices in a bridge."""
        return [link for link in self.table.links.values() if link.master == bridge.index]

    def holder_uid(self, index: int) -> int | None:
        """The user a transient device is held for, if the helper holds it."""
        holding = self._held.get(index)
        return None if holding is None else holding.uid

    def _authorized(self, authorized: Authorization) -> tuple[LinkInfo | None, LinkInfo | None]:
        """The device and bridge that were authorized, as they are now, under the lock.

        polkit may have taken minutes (a person typing a password), and the
        names may since stand for other devices: the act is done on the
        indexes that were authorized, and only if what it needs now (the
        method's rule, asked again) is still covered by what was authorized.
        """
        if authorized.recheck is None:
            raise TypeError("an act on devices needs the rule that authorized it")
        self.drain()
        link = bridge = None
        what = authorized.details.get("device", "the device")
        if authorized.index is not None:
            link = self.table.links.get(authorized.index)
            if link is None:
                raise NotFound(f"{what} went away while you were being asked.")
        if authorized.bridge is not None:
            bridge = self.table.links.get(authorized.bridge)
            if bridge is None or bridge.kind != "bridge":
                raise NotFound(f"The bridge went away while you were being asked about {what}.")
        if not authorized.covers(authorized.recheck(link, bridge)):
            raise NotAuthorized(
                f"{what} changed while you were being asked, and now needs another "
                "authorization; try again."
            )
        return link, bridge

    # ----------------------------------------------------------- changing

    async def create(
        self,
        spec: DeviceSpec,
        client: str,
        uid: int,
        authorized: Authorization,
    ) -> str:
        """Create a TUN/TAP device; hold it for ``client`` unless it persists.

        Args:
            spec: the checked request.
            client: the caller's unique bus name.
            uid: the caller's user.
            authorized: what polkit authorized (the bridge by its index).

        Returns:
            The device's kernel name.
        """
        async with self._lock:
            with self._made_whole():
                _, master = self._authorized(authorized)
                handle, index = await self.links.run(
                    lambda: create.create_device(self.kernel, self.links, spec, master)
                )
                if spec.persist:
                    handle.close()
                await self.mirror.refresh_index(index)
                link = self.table.by_name(handle.name)
                if not spec.persist:
                    if link is None:
                        handle.close()
                        raise Failed(f"{handle.name} vanished while it was being created.")
                    self._held[link.index] = Holding(handle, client, uid)
                return handle.name

    async def create_bridge(self, spec: BridgeSpec) -> str:
        """Create a bridge (bridges have no fd: they persist until deleted)."""
        async with self._lock:
            with self._made_whole():
                name = self.table.free_name(spec.name)
                index = await self.links.run(lambda: create.create_bridge(self.links, spec, name))
                await self.mirror.refresh_index(index)
                return name

    async def delete(self, authorized: Authorization) -> None:
        """Remove the device or bridge that was authorized."""
        async with self._lock:
            link, _ = self._authorized(authorized)
            assert link is not None
            name = link.name
            holding = self._held.pop(link.index, None)
            try:
                await self.links.run(
                    lambda: self.links.delete(link.index, f"Could not remove {name}")
                )
            finally:
                if holding is not None:
                    holding.handle.close()
            self.drain()

    async def configure(
        self,
        changes: Changes,
        client: str,
        uid: int,
        authorized: Authorization,
    ) -> None:
        """Apply a change set to the authorized device, all of it or none of it."""
        async with self._lock:
            link, master = self._authorized(authorized)
            assert link is not None
            configure.check_changes(link, changes)
            current = self.table.addresses(link.index)
            holding = self._held.get(link.index)
            held = None if holding is None else holding.handle
            new_holding = await self.links.run(
                lambda: configure.configure_device(
                    self.kernel, self.links, link, changes, master, current, held
                )
            )
            if changes.persist is True and holding is not None:
                # A persistent device no longer depends on its client.
                self._held.pop(link.index)
                holding.handle.close()
            if new_holding is not None:
                self._held[link.index] = Holding(new_holding, client, uid)
            await self.mirror.refresh_index(link.index)

    # ------------------------------------------------------------ holding

    def holdings(self) -> list[Holding]:
        """The transient devices the helper holds, for whichever clients."""
        return list(self._held.values())

    def held_handle(self, index: int) -> Queues | None:
        """The queues the helper holds of a device, if it holds it."""
        holding = self._held.get(index)
        return None if holding is None else holding.handle

    def release(self, client: str) -> list[str]:
        """Close every device held for a client that left the bus.

        Returns:
            The names of the devices released.
        """
        gone = [index for index, holding in self._held.items() if holding.client == client]
        names = []
        for index in gone:
            holding = self._held.pop(index)
            names.append(holding.handle.name)
            holding.handle.close()
        if names:
            self.drain()
        return names

    # ---------------------------------------------------------- injecting

    def packet_target(self, authorized: Authorization, packet: bytes) -> LinkInfo:
        """The authorized TUN/TAP device, if the packet may be injected into it."""
        link, _ = self._authorized(authorized)
        assert link is not None
        inject.check_packet(link, packet)
        return link

    async def inject(self, link: LinkInfo, packet: bytes) -> None:
        """Write a packet (checked by :meth:`packet_target`) into a device."""
        holding = self._held.get(link.index)
        if holding is not None:
            handle = holding.handle
            await self.links.run(lambda: inject.write(handle, packet))
        else:
            await self.links.run(lambda: inject.attach_and_write(self.kernel, link, packet))
