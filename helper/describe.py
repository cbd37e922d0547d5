"""A device as ListDevices and DevicesChanged describe it (plain Python values).

The keys are the contract's (:mod:`tungui_contract.keys`); :mod:`.listing`
turns these dicts into variants and JSON.
"""

from __future__ import annotations

from typing import Any

from .netlink import LinkInfo
from .table import DeviceTable


def describe(
    link: LinkInfo, table: DeviceTable, *, managed: bool, transient: bool
) -> dict[str, Any]:
    """The device's record.

    Args:
        table: where its addresses and its bridge's name are read.
        managed: whether tungui created it.
        transient: whether the helper holds it for a client.
    """
    info: dict[str, Any] = {
        "name": link.name,
        "index": link.index,
        "kind": link.kind,
        "managed": managed,
        "operstate": link.operstate,
        "up": link.up,
        "mtu": link.mtu,
        "addresses": table.addresses(link.index),
        "master": table.name_of(link.master) if link.master else "",
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
            transient=transient,
        )
    return info
