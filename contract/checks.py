"""Checks of single values, the same for the helper, the window and ``tunguictl``.

Each takes a plain Python value and returns it checked (or normalised), or
raises :class:`~tungui_contract.errors.InvalidArgument` with a sentence a
person understands.  Lengths are capped before anything else is done, so
the cost never grows with the input.  Nothing here has side effects.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import InvalidArgument, shown
from .limits import (
    ADDRESS_MAX_CHARS,
    IFNAMSIZ,
    MAC_CHARS,
    MAX_ADDRESSES,
    MAX_ID,
    MAX_MTU,
    MIN_MTU,
    TARGET_MAX_CHARS,
)

IpInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


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

    Returns:
        The addresses, parsed, in the order given.
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


# ------------------------------------------------------- what a kind can do
# A TUN device carries IP packets: it has no Ethernet layer, so no MAC
# address and no place in a bridge.  TAP devices and bridges have both.


def check_mac_for(kind: str) -> None:
    """Refuse a MAC address for a device of this kind (``tun``, ``tap``, ``bridge``...)."""
    if kind == "tun":
        raise InvalidArgument("A TUN device has no MAC address; only a TAP device can have one.")


def check_bridge_port(kind: str) -> None:
    """Refuse to put a device of this kind into a bridge."""
    if kind == "tun":
        raise InvalidArgument("A TUN device cannot join a bridge; use a TAP device.")
