"""rtnetlink requests (dump, set, add, delete) through pyroute2.

pyroute2's synchronous ``IPRoute`` cannot run inside a running asyncio loop
from 0.9 on, so every request runs on one worker thread that owns the
socket; the single thread also serialises changes.  What the requests
return is parsed by :mod:`.netlink`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tungui_contract.errors import Exists, Failed, InvalidArgument, NotFound, TunguiError

from .netlink import MANAGED_ALIAS, Event, LinkInfo, parse

log = logging.getLogger(__name__)

T = TypeVar("T")


def netlink_error(exc: NetlinkError, what: str) -> TunguiError:
    """Translate a kernel refusal into a named error."""
    message = f"{what}: {os.strerror(exc.code)}."
    if exc.code == errno.EEXIST:
        return Exists(message)
    if exc.code == errno.ENODEV:
        return NotFound(message)
    if exc.code in (errno.EINVAL, errno.ERANGE, errno.EADDRNOTAVAIL):
        return InvalidArgument(message)
    return Failed(message)


class Links:
    """rtnetlink requests, run on one worker thread that owns the socket."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="netlink"
        )
        self._local = threading.local()

    async def run(self, func: Callable[[], T]) -> T:
        """Run ``func`` (which may call the methods below) on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=True)

    # The methods below run on the worker thread only.

    @property
    def ipr(self) -> Any:
        """The thread's IPRoute socket."""
        ipr = getattr(self._local, "ipr", None)
        if ipr is None:
            ipr = self._local.ipr = IPRoute()
        return ipr

    def dump(self) -> list[Event]:
        """Every link and address of the namespace, as events."""
        return parse(self.ipr.get_links()) + parse(self.ipr.get_addr())

    def set(self, index: int, what: str, **attrs: Any) -> None:
        """Change link attributes (mtu, address, state, master, ifalias)."""
        try:
            self.ipr.link("set", index=index, **attrs)
        except NetlinkError as exc:
            raise netlink_error(exc, what) from None

    def add_address(self, index: int, address: str, what: str) -> None:
        """Add one address in CIDR notation (one already there is not an error)."""
        self._address("add", index, address, what, unchanged=errno.EEXIST)

    def remove_address(self, index: int, address: str, what: str) -> None:
        """Remove one address in CIDR notation (one already gone is not an error)."""
        self._address("del", index, address, what, unchanged=errno.EADDRNOTAVAIL)

    def _address(self, command: str, index: int, address: str, what: str, unchanged: int) -> None:
        iface = ipaddress.ip_interface(address)
        try:
            self.ipr.addr(
                command,
                index=index,
                address=str(iface.ip),
                prefixlen=iface.network.prefixlen,
                family=socket.AF_INET if iface.version == 4 else socket.AF_INET6,
            )
        except NetlinkError as exc:
            if exc.code != unchanged:
                raise netlink_error(exc, what) from None

    def announce(self, name: str) -> None:
        """Ask udev to look at a device again, now that it carries our alias.

        udev's 85-tungui-unmanaged.rules then marks it NM_UNMANAGED, which
        keeps NetworkManager away.  Best effort: without udev (or with /sys
        read-only) nothing listens and nothing is lost.
        """
        try:
            Path("/sys/class/net", name, "uevent").write_text("change")
        except OSError as exc:
            log.debug("could not trigger a uevent for %s: %s", name, exc)

    def delete(self, index: int, what: str) -> None:
        """Remove a link."""
        try:
            self.ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return
            raise netlink_error(exc, what) from None

    def add_bridge(self, name: str) -> int:
        """Create a bridge; return its index."""
        try:
            self.ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as exc:
            raise netlink_error(exc, f"Could not create the bridge {name}") from None
        indexes = self.ipr.link_lookup(ifname=name)
        if not indexes:
            raise Failed(f"The bridge {name} vanished right after it was created.")
        index = int(indexes[0])
        # RTM_NEWLINK ignores IFLA_IFALIAS when it creates a link.
        try:
            self.set(index, f"Could not set up {name}", ifalias=MANAGED_ALIAS)
        except TunguiError:
            self.delete(index, f"Could not remove {name}")
            raise
        self.announce(name)
        return index

    def read(self, index: int) -> LinkInfo | None:
        """Read one link by index now, bypassing the table (one request)."""
        try:
            events = parse(self.ipr.get_links(index))
        except NetlinkError:
            return None
        for kind, info in events:
            if kind == "link" and isinstance(info, LinkInfo):
                return info
        return None

    def lookup(self, name: str) -> LinkInfo | None:
        """Read one link now, bypassing the table."""
        try:
            indexes = self.ipr.link_lookup(ifname=name)
        except NetlinkError:
            return None
        return self.read(indexes[0]) if indexes else None
