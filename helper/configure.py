"""Changing a device, all of it or none of it.

:func:`check_changes` refuses what cannot be done before anything is
touched; :func:`configure_device` then applies the changes in order on the
netlink thread, each with its undo, and if one fails undoes those applied,
newest first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tungui_contract.checks import check_bridge_port, check_mac_for
from tungui_contract.errors import InvalidArgument, TunguiError

from . import tun
from .kernel import LinkRequests, Queues, Tun
from .netlink import LinkInfo
from .validate import Changes

log = logging.getLogger(__name__)

#: Changes made through a queue of the device (TUNSETOWNER, TUNSETGROUP, TUNSETPERSIST).
TUN_KEYS = frozenset({"owner", "group", "persist"})


def check_changes(link: LinkInfo, changes: Changes) -> None:
    """A named error for a change this device cannot take."""
    tuntap = link.kind in ("tun", "tap")
    for key in ("owner", "group", "persist"):
        if key in changes.given and not tuntap:
            raise InvalidArgument(f"'{key}' applies to TUN/TAP devices; {link.name} is not one.")
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


def configure_device(
    kernel: Tun,
    links: LinkRequests,
    link: LinkInfo,
    changes: Changes,
    master: LinkInfo | None,
    current: list[str],
    held: Queues | None,
) -> Queues | None:
    """Apply changes in order, undoing the applied ones if a later one fails.

    Args:
        link: the device as it was authorized.
        master: the bridge it joins, as authorized (None: none, or no change).
        current: its addresses now.
        held: the queues the helper holds of it, if it does.

    Returns:
        Queues the helper must now hold for the caller (persist turned off).
    """
    undo: list[Callable[[], None]] = []
    what = f"Could not change {link.name}"
    index = link.index
    attached: Queues | None = None
    keep = False
    try:
        if TUN_KEYS & changes.given:
            if held is None:
                attached = kernel.attach(link.name, tun.iff_flags(link))
            queues = held or attached
            assert queues is not None
            keep = _configure_tun(link, changes, queues, undo)
        if changes.mtu is not None and changes.mtu != link.mtu:
            links.set(index, what, mtu=changes.mtu)
            undo.append(lambda: links.set(index, what, mtu=link.mtu))
        if changes.mac is not None and changes.mac != link.mac:
            links.set(index, what, address=changes.mac)
            undo.append(lambda: links.set(index, what, address=link.mac))
        if "master" in changes.given:
            target = 0 if master is None else master.index
            if target != link.master:
                links.set(index, what, master=target)
                undo.append(lambda: links.set(index, what, master=link.master))
        if changes.addresses is not None:
            wanted = [str(a) for a in changes.addresses]
            for address in [a for a in current if a not in wanted]:
                links.remove_address(index, address, what)
                undo.append(lambda a=address: links.add_address(index, a, what))  # type: ignore[misc]
            for address in [a for a in wanted if a not in current]:
                links.add_address(index, address, f"Could not add {address} to {link.name}")
                undo.append(lambda a=address: links.remove_address(index, a, what))  # type: ignore[misc]
        if changes.up is not None and changes.up != link.up:
            links.set(index, what, state="up" if changes.up else "down")
            undo.append(lambda: links.set(index, what, state="up" if link.up else "down"))
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


def _configure_tun(
    link: LinkInfo, changes: Changes, queues: Queues, undo: list[Callable[[], None]]
) -> bool:
    """Change owner, group and persist through a queue of the device.

    Returns:
        Whether the helper must keep the queue: turning persist off makes
        the device transient, held for the caller.
    """
    if changes.owner is not None and changes.owner != link.owner:
        queues.set_owner(changes.owner)
        if link.owner != -1:
            undo.append(lambda: queues.set_owner(link.owner))
    if changes.group is not None and changes.group != link.group:
        queues.set_group(changes.group)
        if link.group != -1:
            undo.append(lambda: queues.set_group(link.group))
    if changes.persist is not None and changes.persist != link.persist:
        queues.set_persist(changes.persist)
        undo.append(lambda: queues.set_persist(link.persist))
        return not changes.persist
    return False
