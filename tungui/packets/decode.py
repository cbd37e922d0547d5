"""One-line summaries of captured packets, for the capture list.

Every dissector runs unprivileged in the front end, as in Wireshark (the
helper only captures).  The link layer is read here: the 14-byte Ethernet
header and its 802.1Q/802.1ad tags, the 4-byte TUN packet-info header, the
version nibble of a bare IP packet.  Everything above it (ARP, IPv4, IPv6,
ICMP, ICMPv6, UDP, TCP) is read with dpkt.

The link types:

``"ethernet"``
    A TAP device: Ethernet frames.
``"ip"``
    A TUN device without packet info (``IFF_NO_PI``): bare IP packets, the
    first nibble says IPv4 or IPv6.
``"tun_pi"``
    A TUN device with packet info: 2 bytes of flags and 2 bytes of protocol
    (an ethertype, network byte order) before each packet.

Nothing here raises on what a packet holds: truncated or random bytes give
a summary such as ``malformed Ethernet frame (9 bytes)``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import dpkt

from .protocols import (
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETHERTYPE_NAMES,
    ICMP6_TYPES,
    ICMP6_UNREACHABLE,
    ICMP_TYPES,
    ICMP_UNREACHABLE,
    IP_PROTO_NAMES,
    TCP_FLAGS,
)

#: The link types :func:`decode` understands (see the module docstring).
LINKS = ("ethernet", "ip", "tun_pi")

_VLAN_TYPES = (0x8100, 0x88A8)  # 802.1Q and 802.1ad (QinQ) tags
_ND_OPT_TARGET_LL = 2  # the target link-layer address option of an advertisement


class Decoded(NamedTuple):
    """What the capture list shows of one packet."""

    #: Short name of the highest protocol understood: "ARP", "ICMP", "ICMPv6",
    #: "UDP", "TCP", "IPv4", "IPv6", "Ethernet" (or an ethertype's or IP
    #: protocol's name such as "LLDP" or "GRE"; "IP" and "TUN" for a TUN
    #: packet whose network layer is unknown).
    protocol: str
    #: One line, such as ``ARP who-has 192.0.2.1 tell 192.0.2.2``.
    summary: str


def decode(data: bytes, *, link: str) -> Decoded:
    """Dissect one packet into its protocol name and one-line summary.

    Args:
        data: the packet as captured, from its link-layer header on.
        link: ``"ethernet"``, ``"ip"`` or ``"tun_pi"`` (see the module docstring).

    Returns:
        The protocol column and the summary; never raises on ``data``.

    Raises:
        ValueError: ``link`` is not one of :data:`LINKS` (a programming error,
            not a property of the packet).
    """
    data = bytes(data)
    if link == "ethernet":
        return _ethernet(data)
    if link == "ip":
        return _bare_ip(data)
    if link == "tun_pi":
        return _tun_pi(data)
    raise ValueError(f"unknown link type {link!r}; expected one of {', '.join(LINKS)}")


def summary(data: bytes, *, link: str) -> str:
    """One line that says what a packet is, such as ``UDP 192.0.2.1:53 → 192.0.2.2:40000 len=20``.

    Args:
        data: the packet as captured, from its link-layer header on.
        link: ``"ethernet"``, ``"ip"`` or ``"tun_pi"``.

    Returns:
        The summary; never raises on ``data`` (see :func:`decode`).
    """
    return decode(data, link=link).summary


def protocol(data: bytes, *, link: str) -> str:
    """Short name of a packet's highest understood protocol, for a column.

    Args:
        data: the packet as captured, from its link-layer header on.
        link: ``"ethernet"``, ``"ip"`` or ``"tun_pi"``.

    Returns:
        "ARP", "ICMP", "ICMPv6", "UDP", "TCP", "IPv4", "IPv6", "Ethernet", …
        (see :attr:`Decoded.protocol`).
    """
    return decode(data, link=link).protocol


# -- link layer ---------------------------------------------------------------


def _ethernet(data: bytes) -> Decoded:
    """An Ethernet II frame, with up to two VLAN tags, or an 802.3 frame."""
    if len(data) < 14:
        return _malformed("Ethernet", "Ethernet frame", data)
    dst, src = _mac(data[0:6]), _mac(data[6:12])
    (ethertype,) = struct.unpack_from("!H", data, 12)
    offset = 14
    vlans: list[int] = []
    while ethertype in _VLAN_TYPES and len(vlans) < 2:
        if len(data) < offset + 4:
            return _malformed("Ethernet", "Ethernet frame", data)
        tci, ethertype = struct.unpack_from("!HH", data, offset)
        vlans.append(tci & 0x0FFF)
        offset += 4
    if ethertype <= 1500:
        # An IEEE 802.3 frame: the field is the payload's length (LLC follows).
        decoded = Decoded("Ethernet", f"Ethernet 802.3 {src} → {dst} length={ethertype}")
    else:
        decoded = _by_ethertype(ethertype, data[offset:]) or Decoded(
            ETHERTYPE_NAMES.get(ethertype, "Ethernet"),
            f"Ethernet {src} → {dst} {_ethertype_text(ethertype)}",
        )
    if vlans:
        tags = ", ".join(str(vid) for vid in vlans)
        decoded = decoded._replace(summary=f"{decoded.summary} (VLAN {tags})")
    return decoded


def _bare_ip(data: bytes) -> Decoded:
    """An IP packet from a TUN device without packet info."""
    ethertype = {4: ETH_P_IP, 6: ETH_P_IPV6}.get(data[0] >> 4) if data else None
    decoded = _by_ethertype(ethertype, data) if ethertype is not None else None
    return decoded or _malformed("IP", "IP packet", data)


def _tun_pi(data: bytes) -> Decoded:
    """A packet from a TUN device with its packet-info header."""
    if len(data) < 4:
        return _malformed("TUN", "TUN packet-info header", data)
    (ethertype,) = struct.unpack_from("!H", data, 2)
    return _by_ethertype(ethertype, data[4:]) or Decoded(
        ETHERTYPE_NAMES.get(ethertype, "TUN"),
        f"TUN packet {_ethertype_text(ethertype)} ({len(data) - 4} bytes)",
    )


def _by_ethertype(ethertype: int, payload: bytes) -> Decoded | None:
    """Dissect a network-layer packet; None for an ethertype not dissected here."""
    if ethertype == ETH_P_ARP:
        arp = _parse(dpkt.arp.ARP, payload)
        return _arp(arp) if arp is not None else _malformed("ARP", "ARP packet", payload)
    if ethertype == ETH_P_IP:
        ip4 = _parse(dpkt.ip.IP, payload)
        if ip4 is None or ip4.v != 4:
            return _malformed("IPv4", "IPv4 packet", payload)
        return _ipv4(ip4)
    if ethertype == ETH_P_IPV6:
        ip6 = _parse(dpkt.ip6.IP6, payload)
        if ip6 is None or ip6.v != 6:
            return _malformed("IPv6", "IPv6 packet", payload)
        return _ipv6(ip6)
    return None


def _parse(kind: Callable[[bytes], Any], payload: bytes) -> Any | None:
    """``kind(payload)``, or None where dpkt cannot read it.

    dpkt raises NeedData and UnpackError on short or inconsistent input, but
    not only those: 1.9.8 raises AttributeError on an IPv6 fragment header
    followed by a routing header, and RecursionError on deeply nested
    tunnels (it decodes every layer at once, recursively).  Like Wireshark,
    which turns any exception of a dissector into "[Malformed Packet]", the
    list must never fail on what a packet holds, so any exception here means
    "malformed".
    """
    try:
        return kind(payload)
    except Exception:
        return None


# -- network layer ------------------------------------------------------------


def _arp(arp: Any) -> Decoded:
    """An ARP request or reply (or the header of any other ARP)."""
    if (arp.hrd, arp.pro, arp.hln, arp.pln) != (dpkt.arp.ARP_HRD_ETH, ETH_P_IP, 6, 4):
        return Decoded(
            "ARP", f"ARP hardware={arp.hrd} protocol={_ethertype_text(arp.pro)} op={arp.op}"
        )
    sender, target = _ip4(arp.spa), _ip4(arp.tpa)
    if arp.op == dpkt.arp.ARP_OP_REQUEST:
        note = ""
        if arp.spa == arp.tpa:
            note = " (gratuitous)"
        elif arp.spa == bytes(4):  # RFC 5227: a probe's sender address is 0.0.0.0
            note = " (probe)"
        return Decoded("ARP", f"ARP who-has {target} tell {sender}{note}")
    if arp.op == dpkt.arp.ARP_OP_REPLY:
        return Decoded("ARP", f"ARP {sender} is-at {_mac(arp.sha)}")
    return Decoded("ARP", f"ARP op={arp.op} {sender} → {target}")


def _ipv4(ip: Any) -> Decoded:
    """An IPv4 packet and what it carries."""
    src, dst = _ip4(ip.src), _ip4(ip.dst)
    if ip.offset:
        # Not the first fragment: no transport header to read (dpkt keeps bytes).
        return Decoded(
            "IPv4",
            f"IPv4 {src} → {dst} fragment offset={ip.offset * 8} {_proto_text(ip.p)}",
        )
    return _transport(4, ip.p, ip.data, src, dst)


def _ipv6(ip6: Any) -> Decoded:
    """An IPv6 packet (after its extension headers) and what it carries."""
    src, dst = _ip6(ip6.src), _ip6(ip6.dst)
    # dpkt leaves ip6.p at the last extension header's "next header" value.
    proto = getattr(ip6, "p", ip6.nxt)
    fragment = ip6.extension_hdrs.get(44)
    if fragment is not None and fragment.frag_off:
        return Decoded(
            "IPv6",
            f"IPv6 {src} → {dst} fragment offset={fragment.frag_off * 8} {_proto_text(proto)}",
        )
    return _transport(6, proto, ip6.data, src, dst)


# -- transport layer ----------------------------------------------------------


def _transport(version: int, proto: int, payload: Any, src: str, dst: str) -> Decoded:
    """What an IP packet carries; ``payload`` is what dpkt made of it."""
    carrier = f"IPv{version}"
    # Tunnels (IPv4 or IPv6 in IP): the list says what the innermost packet is,
    # as Wireshark's does.
    if proto == 4 and isinstance(payload, dpkt.ip.IP) and payload.v == 4:
        return _ipv4(payload)
    if proto == 41 and isinstance(payload, dpkt.ip6.IP6) and payload.v == 6:
        return _ipv6(payload)
    if proto == 17:
        if not isinstance(payload, dpkt.udp.UDP) or payload.ulen < 8:
            return _malformed("UDP", f"UDP {src} → {dst}", payload)
        ends = _endpoints(version, src, payload.sport, dst, payload.dport)
        return Decoded("UDP", f"UDP {ends} len={payload.ulen - 8}")
    if proto == 6:
        if not isinstance(payload, dpkt.tcp.TCP):
            return _malformed("TCP", f"TCP {src} → {dst}", payload)
        flags = ", ".join(name for bit, name in TCP_FLAGS if payload.flags & bit) or "<none>"
        ends = _endpoints(version, src, payload.sport, dst, payload.dport)
        length = f" len={len(payload.data)}" if payload.data else ""
        return Decoded("TCP", f"TCP {ends} [{flags}]{length}")
    if proto == 1 and version == 4:
        if not isinstance(payload, dpkt.icmp.ICMP):
            return _malformed("ICMP", f"ICMP {src} → {dst}", payload)
        return _icmp(payload, src, dst)
    if proto == 58 and version == 6:
        if not isinstance(payload, dpkt.icmp6.ICMP6):
            return _malformed("ICMPv6", f"ICMPv6 {src} → {dst}", payload)
        return _icmp6(payload, src, dst)
    return Decoded(
        IP_PROTO_NAMES.get(proto, carrier), f"{carrier} {src} → {dst} {_proto_text(proto)}"
    )


def _icmp(icmp: Any, src: str, dst: str) -> Decoded:
    """An ICMP message (echo with its id and sequence number)."""
    name = ICMP_TYPES.get(icmp.type)
    if icmp.type in (0, 8):
        echo = icmp.data
        if not isinstance(echo, dpkt.icmp.ICMP.Echo):
            return _malformed("ICMP", f"ICMP {name} {src} → {dst}", echo)
        return Decoded("ICMP", f"ICMP {name} {src} → {dst} id={echo.id} seq={echo.seq}")
    if icmp.type == 3:
        reason = ICMP_UNREACHABLE.get(icmp.code, f"code={icmp.code}")
        return Decoded("ICMP", f"ICMP destination unreachable ({reason}) {src} → {dst}")
    if name is None:
        return Decoded("ICMP", f"ICMP type={icmp.type} code={icmp.code} {src} → {dst}")
    code = f" code={icmp.code}" if icmp.code else ""
    return Decoded("ICMP", f"ICMP {name}{code} {src} → {dst}")


def _icmp6(icmp6: Any, src: str, dst: str) -> Decoded:
    """An ICMPv6 message: echo, neighbor discovery, errors."""
    kind = icmp6.type
    name = ICMP6_TYPES.get(kind)
    body = icmp6.data
    if kind in (128, 129):
        if not isinstance(body, dpkt.icmp6.ICMP6.Echo):
            return _malformed("ICMPv6", f"ICMPv6 {name} {src} → {dst}", body)
        return Decoded("ICMPv6", f"ICMPv6 {name} {src} → {dst} id={body.id} seq={body.seq}")
    if kind in (133, 134):
        return Decoded("ICMPv6", f"ICMPv6 {name} from {src}")
    if kind in (135, 136):
        # dpkt leaves neighbor discovery undecoded: reserved/flags (4), target (16), options.
        raw = bytes(body)
        if len(raw) < 20:
            return _malformed("ICMPv6", f"ICMPv6 {name} {src} → {dst}", raw)
        target = _ip6(raw[4:20])
        if kind == 135:
            return Decoded("ICMPv6", f"ICMPv6 neighbor solicitation for {target} from {src}")
        flags = [
            text for bit, text in ((0x80, "rtr"), (0x40, "sol"), (0x20, "ovr")) if raw[0] & bit
        ]
        mac = _nd_option(raw[20:], _ND_OPT_TARGET_LL)
        where = f" is-at {_mac(mac[:6])}" if mac is not None and len(mac) >= 6 else ""
        note = f" ({', '.join(flags)})" if flags else ""
        return Decoded("ICMPv6", f"ICMPv6 neighbor advertisement {target}{where}{note}")
    if kind == 1:
        reason = ICMP6_UNREACHABLE.get(icmp6.code, f"code={icmp6.code}")
        return Decoded("ICMPv6", f"ICMPv6 destination unreachable ({reason}) {src} → {dst}")
    if kind == 2 and len(bytes(body)) >= 4:
        # Read the MTU from the bytes: dpkt drops TooBig when no packet follows it.
        (mtu,) = struct.unpack_from("!I", bytes(body))
        return Decoded("ICMPv6", f"ICMPv6 packet too big mtu={mtu} {src} → {dst}")
    if name is None:
        return Decoded("ICMPv6", f"ICMPv6 type={kind} code={icmp6.code} {src} → {dst}")
    code = f" code={icmp6.code}" if icmp6.code else ""
    return Decoded("ICMPv6", f"ICMPv6 {name}{code} {src} → {dst}")


def _nd_option(options: bytes, wanted: int) -> bytes | None:
    """The value of the first neighbor-discovery option of type ``wanted``."""
    offset = 0
    while offset + 2 <= len(options):
        kind, units = options[offset], options[offset + 1]
        if units == 0:  # RFC 4861: a zero length is invalid; stop reading
            return None
        if kind == wanted:
            return options[offset + 2 : offset + 8 * units]
        offset += 8 * units
    return None


# -- text ---------------------------------------------------------------------


def _malformed(proto: str, what: str, payload: Any) -> Decoded:
    """The summary of a packet that cannot be read: what it is and its size."""
    return Decoded(proto, f"malformed {what} ({len(bytes(payload))} bytes)")


def _mac(raw: bytes) -> str:
    """Six bytes as ``02:00:5e:10:00:01``."""
    return bytes(raw).hex(":")


def _ip4(raw: bytes) -> str:
    """Four bytes as a dotted quad."""
    return str(ipaddress.IPv4Address(bytes(raw)))


def _ip6(raw: bytes) -> str:
    """Sixteen bytes as a compressed IPv6 address."""
    return str(ipaddress.IPv6Address(bytes(raw)))


def _endpoints(version: int, src: str, sport: int, dst: str, dport: int) -> str:
    """``192.0.2.1:53 → 192.0.2.2:40000``; IPv6 addresses in brackets."""
    if version == 6:
        return f"[{src}]:{sport} → [{dst}]:{dport}"
    return f"{src}:{sport} → {dst}:{dport}"


def _ethertype_text(ethertype: int) -> str:
    """``type=0x88cc (LLDP)``, the name only where one is known."""
    name = ETHERTYPE_NAMES.get(ethertype)
    return f"type=0x{ethertype:04x}" + (f" ({name})" if name else "")


def _proto_text(proto: int) -> str:
    """``proto=47 (GRE)``, the name only where one is known."""
    name = IP_PROTO_NAMES.get(proto)
    return f"proto={proto}" + (f" ({name})" if name else "")
