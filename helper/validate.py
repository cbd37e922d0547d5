"""Checks every caller-supplied value before anything is done with it.

The functions here take plain Python values, already unwrapped from D-Bus
variants together with their D-Bus signature, and return frozen specs that
the rest of the helper trusts.  Anything wrong raises
:class:`~tungui_helper.errors.InvalidArgument` with a sentence a person
understands; nothing here has side effects.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .contract import (
    ADDRESS_MAX_CHARS,
    CAPTURE_MAX_SNAPLEN,
    CAPTURE_MIN_SNAPLEN,
    IFNAMSIZ,
    MAC_CHARS,
    MAX_ADDRESSES,
    MAX_MTU,
    MAX_PACKET,
    MIN_MTU,
    TARGET_MAX_CHARS,
)
from .contract import SPEC_SIGNATURES as KEY_SIGNATURES
from .errors import InvalidArgument, shown

#: The kernel's MAX_TAP_QUEUES.
MAX_QUEUES = 256
#: Largest uid/gid we accept; (uid_t)-1 means "none" and is spelled -1.
MAX_ID = 2**31 - 1

IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

DEVICE_KEYS = frozenset(KEY_SIGNATURES)
BRIDGE_KEYS = frozenset({"name", "mtu", "mac", "addresses", "up"})
CHANGE_KEYS = frozenset({"mtu", "mac", "up", "addresses", "owner", "group", "persist", "master"})
#: Keys that ListDevices reports but a caller cannot set.
READ_ONLY_KEYS = frozenset(
    {
        "index",
        "kind",
        "managed",
        "operstate",
        "held",
        "queues_attached",
        "disabled_queues",
        "transient",
    }
)

_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


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


def check_name(name: str, *, what: str = "name", template: bool = False) -> str:
    """Check an interface name as the kernel's dev_valid_name does.

    Args:
        name: the proposed name.
        what: how to call the value in an error message.
        template: allow one ``%d``, which the kernel replaces by a number.

    Returns:
        The name, unchanged.
    """
    # A character is at least one byte: a long string is refused before
    # it is encoded, so the cost never grows with the input.
    encoded = name[:IFNAMSIZ].encode("utf-8", "surrogateescape")
    if not encoded:
        raise InvalidArgument(f"The {what} is empty.")
    if len(name) >= IFNAMSIZ or len(encoded) >= IFNAMSIZ:
        size = (
            f"{len(name.encode('utf-8', 'surrogateescape'))} bytes long"
            if len(name) <= TARGET_MAX_CHARS
            else "too long"
        )
        raise InvalidArgument(
            f"The {what} {shown(name)} is {size}; interface names have at most "
            f"{IFNAMSIZ - 1} bytes."
        )
    if name in (".", ".."):
        raise InvalidArgument(f"The {what} cannot be {name!r}.")
    for char in name:
        # Stricter than the kernel, as systemd is: other tools break on
        # names that are not printable ASCII.  No backslash either: the
        # helper lists names it cannot show as they are with backslash
        # escapes, and a name must never look like another's escape.
        if char in "/:\\":
            raise InvalidArgument(
                f"The {what} {name!a} contains {char!a}; interface names cannot contain "
                "'/', ':' or a backslash."
            )
        if not (char.isascii() and char.isprintable()) or char.isspace():
            raise InvalidArgument(
                f"The {what} {name!a} contains {char!a}; interface names are "
                "printable ASCII without whitespace."
            )
    if "%" in name:
        if not template:
            raise InvalidArgument(f"The {what} {name!r} cannot be a template with '%'.")
        first = name.index("%")
        if name[first : first + 2] != "%d" or "%" in name[first + 2 :]:
            raise InvalidArgument(
                f"The {what} {name!r} is not a valid template: it may contain one "
                "'%d' and no other '%'."
            )
    return name


def check_target(name: str) -> str:
    """Check the name of an existing device a caller wants to act on.

    Looser than :func:`check_name`: devices made by others may have names
    tungui would not give, which the helper lists in an escaped form.
    """
    if not name or len(name) > TARGET_MAX_CHARS or "/" in name:
        raise InvalidArgument(f"{shown(name)} is not the name of a network device.")
    return name


def check_mtu(mtu: int) -> int:
    """Check an MTU against the kernel's bounds for tun, tap and bridges."""
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise InvalidArgument(f"The MTU {mtu} is out of range; it must be {MIN_MTU} to {MAX_MTU}.")
    return mtu


def check_mac(mac: str) -> str:
    """Check a unicast Ethernet address; return it in lowercase."""
    if len(mac) != MAC_CHARS or not _MAC_RE.fullmatch(mac):
        raise InvalidArgument(f"The MAC address {shown(mac)} is not of the form 02:00:5e:10:00:01.")
    octets = bytes.fromhex(mac.replace(":", ""))
    if octets[0] & 1:
        raise InvalidArgument(f"The MAC address {mac} is a multicast address.")
    if not any(octets):
        raise InvalidArgument("The MAC address 00:00:00:00:00:00 cannot be used.")
    return mac.lower()


def check_id(value: int, *, what: str) -> int:
    """Check a uid or gid: -1 for none, else a non-negative number."""
    if value != -1 and not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"The {what} {value} is not a valid id; use -1 for none.")
    return value


def check_addresses(values: list[str]) -> tuple[IpInterface, ...]:
    """Check a list of addresses in CIDR notation (a bare address is a host).

    Linear in the length of the list, which is capped first.
    """
    if len(values) > MAX_ADDRESSES:
        raise InvalidArgument(
            f"{len(values)} addresses are too many; a device takes at most {MAX_ADDRESSES} "
            "in one call."
        )
    seen: dict[IpInterface, None] = {}
    for text in values:
        if len(text) > ADDRESS_MAX_CHARS:
            raise InvalidArgument(f"{shown(text)} is too long to be an address.")
        if "%" in text:
            # ipaddress takes a scope (fe80::1%eth0) and would drop it.
            raise InvalidArgument(f"{shown(text)} has a scope; give the address alone.")
        try:
            iface = ipaddress.ip_interface(text.strip())
        except ValueError:
            raise InvalidArgument(
                f"{shown(text)} is not an IPv4 or IPv6 address in CIDR notation "
                "(such as 192.0.2.1/24 or 2001:db8::1/64)."
            ) from None
        if iface.ip.is_multicast or iface.ip.is_unspecified:
            raise InvalidArgument(f"{shown(text)} is not a unicast address.")
        if iface in seen:
            raise InvalidArgument(f"The address {iface} is listed twice.")
        seen[iface] = None
    return tuple(seen)


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
        if key in READ_ONLY_KEYS:
            raise InvalidArgument(f"The key {key!r} is reported by the helper and cannot be set.")
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise InvalidArgument(f"Unknown key {shown(key)}; the keys accepted here are: {known}.")
        expected = KEY_SIGNATURES[key]
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
        if mode != "tap":
            raise InvalidArgument("A TUN device has no MAC address; 'mac' is for TAP only.")
        mac = check_mac(mac)
    master = raw.get("master")
    if master is not None:
        if mode != "tap":
            raise InvalidArgument("Only a TAP device can join a bridge.")
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
