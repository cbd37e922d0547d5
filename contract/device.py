"""A device as ListDevices and DevicesChanged report it, as a typed record.

The wire form is a dict of the keys in :data:`~tungui_contract.keys.DEVICE_SIGNATURES`;
:class:`Device` has one field per key (``tests/unit/contract/test_contract.py`` holds
the two together).  Keys only TUN/TAP devices report default to what a
bridge or another device would say.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .limits import DEFAULT_MTU, Framing

Mode = Literal["tun", "tap"]


@dataclass(frozen=True)
class Device:
    """One network device the helper lists (docs/dbus.md, "Device dicts")."""

    #: As listed (escaped where the kernel's name is not printable UTF-8);
    #: the name to address it by.
    name: str
    index: int = 0
    #: "tun", "tap", "bridge", or the kernel's kind of another device.
    kind: str = ""
    #: Created by tungui.
    managed: bool = False
    operstate: str = "unknown"
    up: bool = False
    mtu: int = DEFAULT_MTU
    #: "" for a device without one (a TUN).
    mac: str = ""
    addresses: tuple[str, ...] = ()
    #: The bridge this device is in, or "".
    master: str = ""
    # TUN/TAP only.
    mode: str = ""
    persist: bool = False
    owner: int = -1
    group: int = -1
    pi: bool = False
    vnet_hdr: bool = False
    multi_queue: bool = False
    queues_attached: int = 0
    disabled_queues: int = 0
    held: bool = False
    #: Held by the helper for the client that made it; ends with that client.
    transient: bool = False

    @classmethod
    def from_wire(cls, values: Mapping[str, Any]) -> Device:
        """The record of a device dict as received (unknown keys are left out).

        Raises:
            KeyError: the dict has no name.
        """
        # Filled in directly rather than through the frozen dataclass's
        # __init__, which would cost a client listing 1,000 devices twice
        # as long (bench/helper_devices.py); the fields are the same.
        if "name" not in values:
            raise KeyError("name")
        state = {**_DEFAULTS, **values}
        if len(state) != len(_FIELDS):  # keys of a newer helper
            state = {key: value for key, value in state.items() if key in _FIELDS}
        state["addresses"] = tuple(state["addresses"])
        record = object.__new__(cls)
        record.__dict__.update(state)
        return record

    def to_wire(self) -> dict[str, Any]:
        """The device dict the helper would send for this record."""
        values = dataclasses.asdict(self)
        values["addresses"] = list(self.addresses)
        if not self.mac:
            del values["mac"]
        if not self.is_tuntap:
            for key in _TUNTAP_ONLY:
                del values[key]
        return values

    @property
    def is_tuntap(self) -> bool:
        """A TUN or TAP device (rather than a bridge or another kind)."""
        return self.kind in ("tun", "tap")

    @property
    def framing(self) -> Framing:
        """How packets are framed on this device's fd (a TUN/TAP device's)."""
        tap = (self.mode or self.kind) == "tap"
        return Framing("tap" if tap else "tun", self.pi, self.vnet_hdr)


_FIELDS = frozenset(field.name for field in dataclasses.fields(Device))
_DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(Device)
    if field.default is not dataclasses.MISSING
}
_TUNTAP_ONLY = (
    "mode",
    "persist",
    "owner",
    "group",
    "pi",
    "vnet_hdr",
    "multi_queue",
    "queues_attached",
    "disabled_queues",
    "held",
    "transient",
)
