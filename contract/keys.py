"""The keys of the contract's dicts and the D-Bus type of each.

CreateDevice takes a spec, CreateBridge a smaller one, ConfigureDevice a
change set; ListDevices and DevicesChanged report device dicts
(docs/dbus.md says what each key means).
"""

from __future__ import annotations

#: D-Bus signature of each key a CreateDevice spec or a ConfigureDevice
#: change set may carry.
SPEC_SIGNATURES: dict[str, str] = {
    "name": "s",
    "mode": "s",
    "persist": "b",
    "owner": "i",
    "group": "i",
    "pi": "b",
    "vnet_hdr": "b",
    "multi_queue": "b",
    "queues": "u",
    "mtu": "u",
    "mac": "s",
    "addresses": "as",
    "up": "b",
    "master": "s",
}

#: D-Bus signature of every key of a device dict that ListDevices and
#: DevicesChanged report.
DEVICE_SIGNATURES: dict[str, str] = {
    "name": "s",
    "index": "u",
    "kind": "s",
    "managed": "b",
    "operstate": "s",
    "up": "b",
    "mtu": "u",
    "mac": "s",
    "addresses": "as",
    "master": "s",
    "mode": "s",
    "persist": "b",
    "owner": "i",
    "group": "i",
    "pi": "b",
    "vnet_hdr": "b",
    "multi_queue": "b",
    "queues_attached": "u",
    "disabled_queues": "u",
    "held": "b",
    "transient": "b",
}

#: The keys CreateDevice takes.
DEVICE_KEYS = frozenset(SPEC_SIGNATURES)
#: The keys CreateBridge takes.
BRIDGE_KEYS = frozenset({"name", "mtu", "mac", "addresses", "up"})
#: The keys ConfigureDevice takes: what can change over a device's life.
CHANGE_KEYS = frozenset({"mtu", "mac", "up", "addresses", "owner", "group", "persist", "master"})
#: What a device gets when it is made and keeps for its life (in the
#: order a form shows them).
FIXED_KEYS = ("name", "mode", "pi", "vnet_hdr", "multi_queue")
#: Keys that ListDevices reports but no caller can set.
READ_ONLY_KEYS = frozenset(DEVICE_SIGNATURES) - frozenset(SPEC_SIGNATURES)
