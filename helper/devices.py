"""The helper's core: create, change, remove and hold TUN/TAP devices and bridges.

Plain asyncio code with no D-Bus in it; the service adapts calls to it.
Every blocking kernel request runs on the netlink worker thread, one
operation at a time, and an operation that fails part-way undoes what it
did, so no call leaves a half-made device behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tungui_contract.checks import check_bridge_port, check_mac_for
from tungui_contract.errors import Failed, InvalidArgument, NotAuthorized, NotFound, TunguiError
from tungui_contract.limits import Framing

from . import tun
from .authorize import Authorization
from .netlink import MANAGED_ALIAS, Event, EventSocket, LinkInfo, Links
from .table import Delta, DeviceTable
from .validate import BridgeSpec, Changes, DeviceSpec

log = logging.getLogger(__name__)

#: What :meth:`DeviceManager.state` returns: the table's version and the held links.
State = tuple[int, frozenset[int]]

#: How long after a TUN/TAP device's last netlink event it is read back.
RECHECK_DELAY = 0.2

#: Takes a device (and the bridge it joins) as they are now and says what
#: the call needs on them now (see :mod:`tungui_helper.authorize`).
Needed = Callable[[LinkInfo | None, LinkInfo | None], Authorization]


@dataclass
class Holding:
    """A transient device whose queues the helper holds for one client."""

    handle: tun.TunHandle
    client: str
    #: The client's user, whose caps the queues count against.
    uid: int = -1


def random_bridge_port_mac() -> str:
    """A random unicast MAC whose first byte is 0xFE, as libvirt gives TAPs on a bridge.

    A bridge takes the lowest MAC of its ports as its own unless it was
    given one; 0xFE keeps a TAP's address from ever being the lowest.
    """
    return ":".join(f"{b:02x}" for b in b"\xfe" + os.urandom(5))


def framing_of(link: LinkInfo) -> Framing:
    """How packets are framed on a TUN/TAP device's fd."""
    return Framing("tap" if link.kind == "tap" else "tun", link.pi, link.vnet_hdr)


class DeviceManager:
    """Every TUN/TAP device and bridge of the namespace, and the ones we hold.

    Args:
        on_change: called (in the event loop) with each batch of changes.
    """

    def __init__(self, on_change: Callable[[Delta], None]) -> None:
        self.table = DeviceTable()
        self.links = Links()
        self._on_change = on_change
        self._events: EventSocket | None = None
        self._held: dict[int, Holding] = {}
        self._lock = asyncio.Lock()
        self._recheck: set[str] = set()
        self._recheck_timer: asyncio.TimerHandle | None = None
        # Link events are numbered as they are read.  While reads back are
        # on their way, the number of each link's last event is kept, so a
        # read back knows whether an event came after it was asked for.
        self._event_serial = 0
        self._reads_back = 0
        self._last_event: dict[str, int] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------- lifetime

    async def start(self) -> None:
        """Subscribe to netlink events, then read the current state."""
        self._events = EventSocket()
        asyncio.get_running_loop().add_reader(self._events.sock.fileno(), self.drain)
        await self.resync()

    async def resync(self) -> None:
        """Read every link and address again (at start, or after lost events)."""
        delta = self.table.reset(await self.links.run(self.links.dump))
        self._forget_vanished()
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
        # after the read was asked for: that one may be newer than the read,
        # which is applied over it, so the link is read again shortly.
        newer = {info.name for info in found if self._last_event.get(info.name, 0) > asked_at}
        self._recheck.difference_update(info.name for info in found if info.name not in newer)
        self._recheck_later(newer)
        if not self._reads_back:
            self._last_event.clear()
        delta = self.table.apply([("link", info) for info in found])
        if delta:
            self._on_change(delta)

    def drain(self) -> None:
        """Apply every pending netlink event to the table."""
        if self._events is None:
            return
        events = self._events.read()
        if events is None:
            log.warning("netlink events were lost; reading the whole state again")
            asyncio.get_running_loop().create_task(self.resync())
            return
        for kind, info in events:
            if kind == "link" and isinstance(info, LinkInfo):
                self._event_serial += 1
                if self._reads_back:
                    self._last_event[info.name] = self._event_serial
        delta = self.table.apply(events)
        self._forget_vanished()
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

    def close(self) -> None:
        """Stop listening and drop every held device."""
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
        if self._events is not None:
            asyncio.get_running_loop().remove_reader(self._events.sock.fileno())
            self._events.close()
            self._events = None
        for holding in self._held.values():
            holding.handle.close()
        self._held.clear()
        self.links.close()

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
        info: dict[str, Any] = {
            "name": link.name,
            "index": link.index,
            "kind": link.kind,
            "managed": self.is_managed(link),
            "operstate": link.operstate,
            "up": link.up,
            "mtu": link.mtu,
            "addresses": self.table.addresses(link.index),
            "master": self.table.name_of(link.master) if link.master else "",
        }
        if link.mac:
            info["mac"] = link.mac
        if link.kind in ("tun", "tap"):
            info.update(
                mode=link.kind,
                persist=link.persist,
                owner=link.owner,
                group=link.group,
                pi=link.pi,
                vnet_hdr=link.vnet_hdr,
                multi_queue=link.multi_queue,
                queues_attached=link.queues,
                disabled_queues=link.disabled_queues,
                held=link.queues > 0,
                transient=link.index in self._held,
            )
        return info

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

    def _bridge(self, name: str) -> LinkInfo:
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

    def bridge(self, name: str) -> LinkInfo:
        """The bridge of that name, or a named error."""
        return self._bridge(name)

    def _authorized(
        self, authorized: Authorization, needed: Needed
    ) -> tuple[LinkInfo | None, LinkInfo | None]:
        """The device and bridge that were authorized, as they are now, under the lock.

        polkit may have taken minutes (a person typing a password), and the
        names may since stand for other devices: the act is done on the
        indexes that were authorized, and only if what it needs now is still
        covered by what was authorized.
        """
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
        if not authorized.covers(needed(link, bridge)):
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
        needed: Needed,
    ) -> str:
        """Create a TUN/TAP device; hold it for ``client`` unless it persists.

        Args:
            spec: the checked request.
            client: the caller's unique bus name.
            uid: the caller's user.
            authorized: what polkit authorized (the bridge by its index).
            needed: what the call needs, from the bridge as it is now.

        Returns:
            The device's kernel name.
        """
        async with self._lock:
            _, master = self._authorized(authorized, needed)
            handle, index = await self.links.run(lambda: self._create_sync(spec, master))
            if spec.persist:
                handle.close()
            await self.refresh_index(index)
            link = self.table.by_name(handle.name)
            if not spec.persist:
                if link is None:
                    handle.close()
                    raise Failed(f"{handle.name} vanished while it was being created.")
                self._held[link.index] = Holding(handle, client, uid)
            return handle.name

    def _create_sync(self, spec: DeviceSpec, master: LinkInfo | None) -> tuple[tun.TunHandle, int]:
        flags = tun.iff_flags(
            mode=spec.mode, pi=spec.pi, vnet_hdr=spec.vnet_hdr, multi_queue=spec.multi_queue
        )
        handle = tun.create(spec.name, flags, spec.queues)
        try:
            if spec.owner != -1:
                handle.set_owner(spec.owner)
            if spec.group != -1:
                handle.set_group(spec.group)
            if spec.persist:
                handle.set_persist(True)
            try:
                index = socket.if_nametoindex(handle.name)
            except OSError:
                raise Failed(f"{handle.name} vanished while it was being created.") from None
            what = f"Could not set up {handle.name}"
            attrs: dict[str, Any] = {"ifalias": MANAGED_ALIAS}
            # libvirt's order for a TAP on a bridge: a MAC the bridge will
            # not take as its own, the bridge's MTU, enslave, then up.
            mac = spec.mac
            mtu = spec.mtu
            if master is not None:
                mac = mac or random_bridge_port_mac()
                mtu = mtu or master.mtu
            if mac is not None:
                attrs["address"] = mac
            if mtu is not None:
                attrs["mtu"] = mtu
            self.links.set(index, what, **attrs)
            self.links.announce(handle.name)
            if master is not None:
                self.links.set(
                    index,
                    f"Could not put {handle.name} into {master.name}",
                    master=master.index,
                )
            for address in spec.addresses:
                self.links.add_address(
                    index, str(address), f"Could not add {address} to {handle.name}"
                )
            if spec.up:
                self.links.set(index, f"Could not bring {handle.name} up", state="up")
        except BaseException:
            self._discard_sync(handle, spec.persist)
            raise
        return handle, index

    def _discard_sync(self, handle: tun.TunHandle, persist: bool) -> None:
        """Undo a half-made device: clear persist, close its queues, make sure it is gone."""
        if persist:
            try:
                handle.set_persist(False)
            except TunguiError:
                log.exception("could not clear persist on %s", handle.name)
        handle.close()
        link = self.links.lookup(handle.name)
        if link is not None and link.alias in ("", MANAGED_ALIAS) and link.queues == 0:
            self.links.delete(link.index, f"Could not remove {handle.name}")

    async def create_bridge(self, spec: BridgeSpec) -> str:
        """Create a bridge (bridges have no fd: they persist until deleted)."""
        async with self._lock:
            name = self.table.free_name(spec.name)
            index = await self.links.run(lambda: self._create_bridge_sync(spec, name))
            await self.refresh_index(index)
            return name

    def _create_bridge_sync(self, spec: BridgeSpec, name: str) -> int:
        index = self.links.add_bridge(name)
        try:
            what = f"Could not set up {name}"
            attrs: dict[str, Any] = {}
            if spec.mac is not None:
                attrs["address"] = spec.mac
            if spec.mtu is not None:
                attrs["mtu"] = spec.mtu
            if attrs:
                self.links.set(index, what, **attrs)
            for address in spec.addresses:
                self.links.add_address(index, str(address), f"Could not add {address} to {name}")
            if spec.up:
                self.links.set(index, f"Could not bring {name} up", state="up")
        except BaseException:
            self.links.delete(index, f"Could not remove {name}")
            raise
        return index

    async def delete(self, authorized: Authorization, needed: Needed) -> None:
        """Remove the device or bridge that was authorized."""
        async with self._lock:
            link, _ = self._authorized(authorized, needed)
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

    def holdings(self) -> list[Holding]:
        """The transient devices the helper holds, for whichever clients."""
        return list(self._held.values())

    def held_handle(self, index: int) -> tun.TunHandle | None:
        """The queues the helper holds of a device, if it holds it."""
        holding = self._held.get(index)
        return None if holding is None else holding.handle

    def packet_target(self, authorized: Authorization, needed: Needed, packet: bytes) -> LinkInfo:
        """The authorized TUN/TAP device, if the packet may be injected into it."""
        link, _ = self._authorized(authorized, needed)
        assert link is not None
        self.check_packet(link, packet)
        return link

    @staticmethod
    def check_packet(link: LinkInfo, packet: bytes) -> None:
        """A named error unless a packet fits the device."""
        name = link.name
        if link.kind not in ("tun", "tap"):
            raise InvalidArgument(f"{name} is not a TUN or TAP device; packets go into those only.")
        framing = framing_of(link)
        shortest, longest = framing.shortest, framing.longest(link.mtu)
        if not shortest <= len(packet) <= longest:
            raise InvalidArgument(
                f"A packet for {name} must be {shortest} to {longest} bytes "
                f"(MTU {link.mtu}); this one is {len(packet)}."
            )

    async def inject(self, link: LinkInfo, packet: bytes) -> None:
        """Write a packet (checked by :meth:`check_packet`) into a device, as its program would."""
        holding = self._held.get(link.index)
        if holding is not None:
            await self.links.run(lambda: self._write(holding.handle, packet))
            return
        flags = tun.iff_flags(
            mode=link.kind, pi=link.pi, vnet_hdr=link.vnet_hdr, multi_queue=link.multi_queue
        )

        def attach_and_write() -> None:
            handle = tun.attach(link.name, flags)
            try:
                # TUNSETIFF goes by name: make sure it reached the device
                # that was checked (it would even make one by that name if
                # the device had just gone; closing this removes it again).
                try:
                    index = socket.if_nametoindex(handle.name)
                except OSError:
                    index = 0
                if index != link.index:
                    raise NotFound(f"{handle.name} was replaced; the packet was not sent.")
                self._write(handle, packet)
            finally:
                handle.close()

        await self.links.run(attach_and_write)

    @staticmethod
    def _write(handle: tun.TunHandle, packet: bytes) -> None:
        try:
            os.write(handle.fds[0], packet)
        except OSError as exc:
            raise InvalidArgument(
                f"{handle.name} refused the packet: {os.strerror(exc.errno or 0)}."
            ) from None

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

    async def configure(
        self,
        changes: Changes,
        client: str,
        uid: int,
        authorized: Authorization,
        needed: Needed,
    ) -> None:
        """Apply a change set to the authorized device, all of it or none of it."""
        async with self._lock:
            link, master = self._authorized(authorized, needed)
            assert link is not None
            self._check_changes(link, changes)
            current = self.table.addresses(link.index)
            holding = self._held.get(link.index)
            new_holding = await self.links.run(
                lambda: self._configure_sync(link, changes, master, current, holding)
            )
            if changes.persist is True and holding is not None:
                # A persistent device no longer depends on its client.
                self._held.pop(link.index)
                holding.handle.close()
            if new_holding is not None:
                self._held[link.index] = Holding(new_holding, client, uid)
            await self.refresh_index(link.index)

    def _check_changes(self, link: LinkInfo, changes: Changes) -> None:
        tuntap = link.kind in ("tun", "tap")
        for key in ("owner", "group", "persist"):
            if key in changes.given and not tuntap:
                raise InvalidArgument(
                    f"'{key}' applies to TUN/TAP devices; {link.name} is not one."
                )
        if changes.mac is not None:
            check_mac_for(link.kind)
        if changes.master:
            check_bridge_port(link.kind)
        if changes.master == link.name:
            raise InvalidArgument(f"{link.name} cannot be its own bridge.")
        if changes.owner == -1 and link.owner != -1:
            raise InvalidArgument("The kernel cannot clear a device's owner once it is set.")
        if changes.group == -1 and link.group != -1:
            raise InvalidArgument("The kernel cannot clear a device's group once it is set.")

    def _configure_sync(
        self,
        link: LinkInfo,
        changes: Changes,
        master: LinkInfo | None,
        current: list[str],
        holding: Holding | None,
    ) -> tun.TunHandle | None:
        """Apply changes in order, undoing the applied ones if a later one fails.

        Returns:
            A handle the helper now holds for the caller (persist turned off).
        """
        undo: list[Callable[[], None]] = []
        what = f"Could not change {link.name}"
        index = link.index
        attached: tun.TunHandle | None = None
        keep = False
        try:
            if {"owner", "group", "persist"} & changes.given:
                if holding is None:
                    flags = tun.iff_flags(
                        mode=link.kind,
                        pi=link.pi,
                        vnet_hdr=link.vnet_hdr,
                        multi_queue=link.multi_queue,
                    )
                    attached = tun.attach(link.name, flags)
                keep = self._configure_tun_sync(
                    link, changes, holding.handle if holding else attached, undo
                )
            if changes.mtu is not None and changes.mtu != link.mtu:
                self.links.set(index, what, mtu=changes.mtu)
                undo.append(lambda: self.links.set(index, what, mtu=link.mtu))
            if changes.mac is not None and changes.mac != link.mac:
                self.links.set(index, what, address=changes.mac)
                undo.append(lambda: self.links.set(index, what, address=link.mac))
            if "master" in changes.given:
                target = 0 if master is None else master.index
                if target != link.master:
                    self.links.set(index, what, master=target)
                    undo.append(lambda: self.links.set(index, what, master=link.master))
            if changes.addresses is not None:
                wanted = [str(a) for a in changes.addresses]
                for address in [a for a in current if a not in wanted]:
                    self.links.remove_address(index, address, what)
                    undo.append(lambda a=address: self.links.add_address(index, a, what))  # type: ignore[misc]
                for address in [a for a in wanted if a not in current]:
                    self.links.add_address(
                        index, address, f"Could not add {address} to {link.name}"
                    )
                    undo.append(lambda a=address: self.links.remove_address(index, a, what))  # type: ignore[misc]
            if changes.up is not None and changes.up != link.up:
                self.links.set(index, what, state="up" if changes.up else "down")
                undo.append(lambda: self.links.set(index, what, state="up" if link.up else "down"))
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except TunguiError:
                    log.exception("could not undo a change to %s", link.name)
            keep = False
            raise
        finally:
            if attached is not None and not keep:
                attached.close()
        return attached if keep else None

    def _configure_tun_sync(
        self,
        link: LinkInfo,
        changes: Changes,
        handle: tun.TunHandle | None,
        undo: list[Callable[[], None]],
    ) -> bool:
        """Change owner, group and persist through a queue of the device.

        Returns:
            Whether the helper must keep the queue: turning persist off makes
            the device transient, held for the caller.
        """
        assert handle is not None
        if changes.owner is not None and changes.owner != link.owner:
            handle.set_owner(changes.owner)
            if link.owner != -1:
                undo.append(lambda: handle.set_owner(link.owner))
        if changes.group is not None and changes.group != link.group:
            handle.set_group(changes.group)
            if link.group != -1:
                undo.append(lambda: handle.set_group(link.group))
        if changes.persist is not None and changes.persist != link.persist:
            handle.set_persist(changes.persist)
            undo.append(lambda: handle.set_persist(link.persist))
            return not changes.persist
        return False
