"""Devices as ListDevices reports them, for the window's tests and benchmarks.

Dicts in the wire form, and the records the client library makes of them.
"""

from __future__ import annotations

import pwd
from typing import Any

from tungui_contract.device import Device

NOBODY = pwd.getpwnam("nobody").pw_uid


def listed_tap(index: int, name: str, **values: Any) -> dict[str, Any]:
    """A TAP device with every key ListDevices gives; ``values`` replace the defaults."""
    device: dict[str, Any] = {
        "name": name,
        "index": index,
        "kind": "tap",
        "mode": "tap",
        "managed": True,
        "operstate": "down",
        "up": False,
        "mtu": 1500,
        "mac": "02:00:00:00:00:01",
        "addresses": [],
        "master": "",
        "persist": True,
        "owner": -1,
        "group": -1,
        "pi": False,
        "vnet_hdr": False,
        "multi_queue": False,
        "queues_attached": 0,
        "disabled_queues": 0,
        "held": False,
        "transient": False,
    }
    device.update(values)
    return device


def lab_tap(**values: Any) -> dict[str, Any]:
    """A TAP with something in every field: in a bridge, with addresses, owner and vnet_hdr."""
    lab = listed_tap(
        7,
        "tap-lab0",
        addresses=["192.0.2.1/24", "2001:db8::1/64"],
        master="br-lab",
        mac="fe:54:00:12:34:56",
        owner=NOBODY,
        vnet_hdr=True,
    )
    lab.update(values)
    return lab


def lab_device(**values: Any) -> Device:
    """:func:`lab_tap` as a record."""
    return Device.from_wire(lab_tap(**values))


#: The MAC of :func:`send_tap`.
MAC = "fe:54:00:12:34:56"


def send_tun(**changes: Any) -> Device:
    """A TUN device with the keys the Send packet form reads."""
    values: dict[str, Any] = {
        "name": "tun0",
        "kind": "tun",
        "mtu": 1500,
        "pi": False,
        "addresses": ["192.0.2.1/24"],
    }
    return Device.from_wire(values | changes)


def send_tap(**changes: Any) -> Device:
    """A TAP device with the keys the Send packet form reads."""
    values: dict[str, Any] = {
        "name": "tap0",
        "kind": "tap",
        "mtu": 1500,
        "pi": False,
        "mac": MAC,
        "addresses": ["192.0.2.1/24", "2001:db8::1/64"],
    }
    return Device.from_wire(values | changes)
