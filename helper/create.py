"""Making a TUN/TAP device or a bridge, all of it or none of it.

Each function runs on the netlink thread and takes the kernel as
arguments (:mod:`.kernel`).  A step that fails undoes the device: a
half-made device is removed, never left behind.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tungui_contract.errors import Failed, TunguiError

from . import tun
from .kernel import LinkRequests, Queues, Tun
from .netlink import MANAGED_ALIAS, LinkInfo
from .validate import BridgeSpec, DeviceSpec

log = logging.getLogger(__name__)


def random_bridge_port_mac() -> str:
    """A random unicast MAC whose first byte is 0xFE, as libvirt gives TAPs on a bridge.

    A bridge takes the lowest MAC of its ports as its own unless it was
    given one; 0xFE keeps a TAP's address from ever being the lowest.
    """
    return ":".join(f"{b:02x}" for b in b"\xfe" + os.urandom(5))


def create_device(
    kernel: Tun, links: LinkRequests, spec: DeviceSpec, master: LinkInfo | None
) -> tuple[Queues, int]:
    """Create and set up a TUN/TAP device; undo it all if a step fails.

    Args:
        master: the bridge it joins, as authorized.

    Returns:
        Its queues (closing them removes it unless it persists) and its index.
    """
    handle = kernel.create(spec.name, tun.iff_flags(spec), spec.queues)
    try:
        if spec.owner != -1:
            handle.set_owner(spec.owner)
        if spec.group != -1:
            handle.set_group(spec.group)
        if spec.persist:
            handle.set_persist(True)
        index = kernel.index_of(handle.name)
        if index is None:
            raise Failed(f"{handle.name} vanished while it was being created.")
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
        links.set(index, what, **attrs)
        links.announce(handle.name)
        if master is not None:
            links.set(index, f"Could not put {handle.name} into {master.name}", master=master.index)
        for address in spec.addresses:
            links.add_address(index, str(address), f"Could not add {address} to {handle.name}")
        if spec.up:
            links.set(index, f"Could not bring {handle.name} up", state="up")
    except BaseException:
        discard(links, handle, spec.persist)
        raise
    return handle, index


def discard(links: LinkRequests, handle: Queues, persist: bool) -> None:
    """Undo a half-made device: clear persist, close its queues, make sure it is gone."""
    if persist:
        try:
            handle.set_persist(False)
        except TunguiError:
            log.exception("could not clear persist on %s", handle.name)
    handle.close()
    link = links.lookup(handle.name)
    if link is not None and link.alias in ("", MANAGED_ALIAS) and link.queues == 0:
        links.delete(link.index, f"Could not remove {handle.name}")


def create_bridge(links: LinkRequests, spec: BridgeSpec, name: str) -> int:
    """Create and set up a bridge named ``name``; remove it if a step fails.

    Returns:
        Its index.
    """
    index = links.add_bridge(name)
    try:
        what = f"Could not set up {name}"
        attrs: dict[str, Any] = {}
        if spec.mac is not None:
            attrs["address"] = spec.mac
        if spec.mtu is not None:
            attrs["mtu"] = spec.mtu
        if attrs:
            links.set(index, what, **attrs)
        for address in spec.addresses:
            links.add_address(index, str(address), f"Could not add {address} to {name}")
        if spec.up:
            links.set(index, f"Could not bring {name} up", state="up")
    except BaseException:
        links.delete(index, f"Could not remove {name}")
        raise
    return index
