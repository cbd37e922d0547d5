"""Checks every caller-supplied value before anything is done with it.

The functions here take plain Python values, already unwrapped from D-Bus
variants together with their D-Bus signature, and return frozen specs that
the rest of the helper trusts.  Anything wrong raises
:class:`~tungui_contract.errors.InvalidArgument` with a sentence a person
understands; nothing here has side effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tungui_contract import keys as KEYS
from tungui_contract.capture import CAPTURE_MAX_SNAPLEN, CAPTURE_MIN_SNAPLEN
from tungui_contract.checks import (
    IpInterface,
    check_addresses,
    check_bridge_port,
    check_id,
    check_mac,
    check_mac_for,
    check_mtu,
    check_name,
)
from tungui_contract.errors import InvalidArgument, shown
from tungui_contract.limits import MAX_PACKET, MAX_QUEUES, Framing

DEVICE_KEYS = KEYS.DEVICE_KEYS
BRIDGE_KEYS = KEYS.BRIDGE_KEYS
CHANGE_KEYS = KEYS.CHANGE_KEYS


@dataclass(frozen=True)
class DeviceSpec:
    """A checked request to create a TUN or TAP device."""

    mode: Literal["tun", "tap"]
    name: str
    persist: bool = False
    owner: int = -1
    group: int = -1
    pi: bool = False
    vnet_hdr: bool = False
    multi_queue: bool = False
    queues: int = 1
    mtu: int | None = None
    mac: str | None = None
    addresses: tuple[IpInterface, ...] = ()
    up: bool = False
    master: str | None = None

    @property
    def framing(self) -> Framing:
        """How packets will be framed on the device's fd."""
        return Framing(self.mode, self.pi, self.vnet_hdr)


@dataclass(frozen=True)
class BridgeSpec:
    """A checked request to create a bridge."""

    name: str = "br%d"
    mtu: int | None = None
    mac: str | None = None
    addresses: tuple[IpInterface, ...] = ()
    up: bool = False


@dataclass(frozen=True)
class Changes:
    """A checked set of changes to an existing device; None means unchanged."""

    mtu: int | None = None
    mac: str | None = None
    up: bool | None = None
    addresses: tuple[IpInterface, ...] | None = None
    owner: int | None = None
    group: int | None = None
    persist: bool | None = None
    #: "" takes the device out of its bridge.
    master: str | None = None
    given: frozenset[str] = field(default_factory=frozenset)


def check_signatures(values: Mapping[str, tuple[str, Any]], allowed: frozenset[str]) -> None:
    """Reject unknown keys, read-only keys and values of the wrong D-Bus type.

    Args:
        values: key -> (D-Bus signature, value) as received.
        allowed: the keys this call accepts.
    """
    if len(values) > len(allowed):
        raise InvalidArgument(
            f"{len(values)} keys are more than this call accepts ({len(allowed)})."
        )
    for key, (signature, _value) in values.items():
        if key in KEYS.READ_ONLY_KEYS:
            raise InvalidArgument(f"The key {key!r} is reported by the helper and cannot be set.")
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise InvalidArgument(f"Unknown key {shown(key)}; the keys accepted here are: {known}.")
        expected = KEYS.SPEC_SIGNATURES[key]
        if signature != expected:
            raise InvalidArgument(
                f"The key {key!r} must hold a value of D-Bus type {expected!r}, not {signature!r}."
            )


def device_spec(values: Mapping[str, tuple[str, Any]]) -> DeviceSpec:
    """Build a :class:`DeviceSpec` from a CreateDevice spec."""
    check_signatures(values, DEVICE_KEYS)
    raw = {key: value for key, (_sig, value) in values.items()}
    mode = raw.get("mode")
    if mode not in ("tun", "tap"):
        raise InvalidArgument("The key 'mode' is required and must be 'tun' or 'tap'.")
    name = check_name(raw.get("name", f"{mode}%d"), template=True)
    multi_queue = bool(raw.get("multi_queue", False))
    queues = int(raw.get("queues", 1))
    if not 1 <= queues <= MAX_QUEUES:
        raise InvalidArgument(f"The number of queues must be 1 to {MAX_QUEUES}, not {queues}.")
    if queues > 1 and not multi_queue:
        raise InvalidArgument("More than one queue needs 'multi_queue' set.")
    mac = raw.get("mac")
    if mac is not None:
        check_mac_for(mode)
        mac = check_mac(mac)
    master = raw.get("master")
    if master is not None:
        check_bridge_port(mode)
        master = check_name(master, what="bridge name")
    mtu = raw.get("mtu")
    return DeviceSpec(
        mode=mode,
        name=name,
        persist=bool(raw.get("persist", False)),
        owner=check_id(raw.get("owner", -1), what="owner"),
        group=check_id(raw.get("group", -1), what="group"),
        pi=bool(raw.get("pi", False)),
        vnet_hdr=bool(raw.get("vnet_hdr", False)),
        multi_queue=multi_queue,
        queues=queues,
        mtu=None if mtu is None else check_mtu(mtu),
        mac=mac,
        addresses=check_addresses(raw.get("addresses", [])),
        up=bool(raw.get("up", False)),
        master=master,
    )


@dataclass(frozen=True)
class CaptureOptions:
    """StartCapture's options, checked."""

    snaplen: int = CAPTURE_MAX_SNAPLEN
    #: Packets a second the caller wants at most (the rest are sampled
    #: out); 0 for every packet.
    max_rate: int = 0


_CAPTURE_OPTIONS = {"snaplen": "u", "max_rate": "u"}


def capture_options(values: Mapping[str, tuple[str, Any]]) -> CaptureOptions:
    """Check StartCapture's options."""
    if len(values) > len(_CAPTURE_OPTIONS):
        raise InvalidArgument(
            f"{len(values)} capture options are more than there are ({len(_CAPTURE_OPTIONS)})."
        )
    for key, (signature, _value) in values.items():
        expected = _CAPTURE_OPTIONS.get(key)
        if expected is None:
            raise InvalidArgument(
                f"Unknown capture option {shown(key)}; the options are: "
                f"{', '.join(sorted(_CAPTURE_OPTIONS))}."
            )
        if signature != expected:
            raise InvalidArgument(
                f"The option {key!r} must be of D-Bus type {expected!r}, not {signature!r}."
            )
    snaplen = int(values.get("snaplen", ("u", CAPTURE_MAX_SNAPLEN))[1])
    if not CAPTURE_MIN_SNAPLEN <= snaplen <= CAPTURE_MAX_SNAPLEN:
        raise InvalidArgument(
            f"The snap length {snaplen} is out of range; it must be "
            f"{CAPTURE_MIN_SNAPLEN} to {CAPTURE_MAX_SNAPLEN}."
        )
    max_rate = int(values.get("max_rate", ("u", 0))[1])
    return CaptureOptions(snaplen, max_rate)


def packet(value: bytes) -> bytes:
    """Check InjectPacket's packet against the largest any device takes.

    The device's own bound (its MTU and headers) is checked once the device
    is known; this one comes first, before the bytes are even copied.
    """
    if len(value) > MAX_PACKET:
        raise InvalidArgument(
            f"A packet of {len(value)} bytes is longer than any device takes ({MAX_PACKET})."
        )
    return bytes(value)


def bridge_spec(values: Mapping[str, tuple[str, Any]]) -> BridgeSpec:
    """Build a :class:`BridgeSpec` from a CreateBridge spec."""
    check_signatures(values, BRIDGE_KEYS)
    raw = {key: value for key, (_sig, value) in values.items()}
    mtu = raw.get("mtu")
    mac = raw.get("mac")
    return BridgeSpec(
        name=check_name(raw.get("name", "br%d"), template=True),
        mtu=None if mtu is None else check_mtu(mtu),
        mac=None if mac is None else check_mac(mac),
        addresses=check_addresses(raw.get("addresses", [])),
        up=bool(raw.get("up", False)),
    )


def changes(values: Mapping[str, tuple[str, Any]]) -> Changes:
    """Build a :class:`Changes` from a ConfigureDevice change set."""
    check_signatures(values, CHANGE_KEYS)
    raw = {key: value for key, (_sig, value) in values.items()}
    master = raw.get("master")
    if master:
        master = check_name(master, what="bridge name")
    mtu = raw.get("mtu")
    mac = raw.get("mac")
    owner = raw.get("owner")
    group = raw.get("group")
    addresses = raw.get("addresses")
    return Changes(
        mtu=None if mtu is None else check_mtu(mtu),
        mac=None if mac is None else check_mac(mac),
        up=raw.get("up"),
        addresses=None if addresses is None else check_addresses(addresses),
        owner=None if owner is None else check_id(owner, what="owner"),
        group=None if group is None else check_id(group, what="group"),
        persist=raw.get("persist"),
        master=master,
        given=frozenset(raw),
    )
