"""Writing a packet into a TUN/TAP device, as the program at its other end would.

The packet is checked against the device's framing (the contract's
:class:`~tungui_contract.limits.Framing`), then written through a queue:
the helper's own if it holds the device, else one opened for the write
and closed right after.
"""

from __future__ import annotations

import os

from tungui_contract.errors import InvalidArgument, NotFound

from . import tun
from .kernel import Queues, Tun
from .netlink import LinkInfo


def check_packet(link: LinkInfo, packet: bytes) -> None:
    """A named error unless a packet fits the device."""
    name = link.name
    if link.kind not in ("tun", "tap"):
        raise InvalidArgument(f"{name} is not a TUN or TAP device; packets go into those only.")
    framing = link.framing
    shortest, longest = framing.shortest, framing.longest(link.mtu)
    if not shortest <= len(packet) <= longest:
        raise InvalidArgument(
            f"A packet for {name} must be {shortest} to {longest} bytes "
            f"(MTU {link.mtu}); this one is {len(packet)}."
        )


def attach_and_write(kernel: Tun, link: LinkInfo, packet: bytes) -> None:
    """Open a queue of a device no program of ours holds, write, close it (netlink thread)."""
    handle = kernel.attach(link.name, tun.iff_flags(link))
    try:
        # TUNSETIFF goes by name: make sure it reached the device that was
        # checked (it would even make one by that name if the device had
        # just gone; closing this removes it again).
        if kernel.index_of(handle.name) != link.index:
            raise NotFound(f"{handle.name} was replaced; the packet was not sent.")
        write(handle, packet)
    finally:
        handle.close()


def write(handle: Queues, packet: bytes) -> None:
    """Write one packet to a device's first queue."""
    try:
        os.write(handle.fds[0], packet)
    except OSError as exc:
        raise InvalidArgument(
            f"{handle.name} refused the packet: {os.strerror(exc.errno or 0)}."
        ) from None
