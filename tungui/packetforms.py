"""The Send packet… dialog's state, its checking and the packets it builds, without Qt.

:class:`SendForm` holds what a person typed, as text.  :func:`check` turns it
into the bytes to hand to the helper's InjectPacket, or into sentences that
say what is wrong.  The bytes are what the device's program would write, so
the host receives them:

* a TAP device takes an Ethernet frame;
* a TUN device takes a bare IPv4 or IPv6 packet, or, with packet
  information (``pi``), that packet after 4 bytes of flags and ethertype.

Packets are built with dpkt, which fills in lengths and the IPv4, ICMP,
ICMPv6 and UDP checksums when they are left 0: nothing here sums by hand.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import dpkt

Template = Literal["hex", "arp", "icmp", "udp"]

#: The templates, in the order a picker lists them.
TEMPLATES: tuple[Template, ...] = ("hex", "arp", "icmp", "udp")

#: The link types of :mod:`tungui.decode`.
Link = Literal["ethernet", "ip", "tun_pi"]

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ETHERNET_HEADER = 14
VLAN_TAG = 4
PI_HEADER = 4
#: The helper's own bounds: an IPv4 header is at least 20 bytes.
SHORTEST_IP = 20
#: The identifier of a new echo request: "tu" in ASCII.
DEFAULT_IDENT = 0x7475

_HEX_SEPARATORS = re.compile(r"[\s:]+")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# -- building packets -----------------------------------------------------------


def parse_hex(text: str) -> bytes:
    """Read bytes written as hex, such as ``45 00 00 1c``, ``450000 1c`` or ``45:00``.

    Whitespace (newlines too) and colons may stand anywhere between digits;
    case does not matter.

    Args:
        text: the hex as typed or pasted.

    Returns:
        The bytes; empty for text with no digits.

    Raises:
        ValueError: with a sentence, for a word that is not hex or an odd
            number of digits.
    """
    digits = ""
    for word in _HEX_SEPARATORS.split(text):
        # str.isdigit and int() accept non-ASCII digits; bytes.fromhex does not.
        if word and not all(c in "0123456789abcdefABCDEF" for c in word):
            shown = word if len(word) <= 20 else word[:20] + "…"
            raise ValueError(f"{shown!r} is not hexadecimal.")
        digits += word
    if len(digits) % 2:
        raise ValueError(f"The hex has an odd number of hex digits ({len(digits)}).")
    return bytes.fromhex(digits)


def arp_request(sender_mac: str, sender_ip: str, target_ip: str) -> bytes:
    """An Ethernet broadcast frame asking who has ``target_ip`` (for a TAP device).

    Args:
        sender_mac: the asking station's MAC, also the frame's source.
        sender_ip: the asking station's IPv4 address.
        target_ip: the IPv4 address asked for.

    Returns:
        The frame, 42 bytes (the kernel does not need it padded to 60).

    Raises:
        ValueError: an address is not a MAC or IPv4 address.
    """
    arp = dpkt.arp.ARP(
        op=dpkt.arp.ARP_OP_REQUEST,
        sha=_mac_bytes(sender_mac),
        spa=ipaddress.IPv4Address(sender_ip).packed,
        tha=bytes(6),
        tpa=ipaddress.IPv4Address(target_ip).packed,
    )
    return _ethernet(sender_mac, BROADCAST_MAC, ETH_P_ARP, bytes(arp))


def icmp_echo_request(
    src: str,
    dst: str,
    ident: int,
    seq: int,
    payload: bytes,
    *,
    ethernet: tuple[str, str] | None,
) -> bytes:
    """An ICMP echo request (ping), or an ICMPv6 one between IPv6 addresses.

    Args:
        src: source IPv4 or IPv6 address.
        dst: destination address, of the same family.
        ident: the echo identifier, 0 to 65535.
        seq: the sequence number, 0 to 65535.
        payload: the echo data.
        ethernet: ``(source MAC, destination MAC)`` to wrap the packet in an
            Ethernet frame (for a TAP device); None for the bare IP packet.

    Returns:
        The packet, with every length and checksum filled in.

    Raises:
        ValueError: an address is invalid or the families differ.
    """
    source, destination = _address_pair(src, dst)
    if source.version == 4:
        echo = dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload)
        message: Any = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, code=0, data=echo)
        proto = dpkt.ip.IP_PROTO_ICMP
    else:
        echo6 = dpkt.icmp6.ICMP6.Echo(id=ident, seq=seq, data=payload)
        message = dpkt.icmp6.ICMP6(type=dpkt.icmp6.ICMP6_ECHO_REQUEST, code=0, data=echo6)
        proto = dpkt.ip.IP_PROTO_ICMP6
    return _ip_packet(source, destination, proto, message, ethernet)


def udp_datagram(
    src: str,
    src_port: int,
    dst: str,
    dst_port: int,
    payload: bytes,
    *,
    ethernet: tuple[str, str] | None,
) -> bytes:
    """A UDP datagram over IPv4 or IPv6.

    Args:
        src: source IPv4 or IPv6 address.
        src_port: source port, 0 to 65535.
        dst: destination address, of the same family.
        dst_port: destination port, 0 to 65535.
        payload: the datagram's data.
        ethernet: ``(source MAC, destination MAC)`` for a TAP device; None
            for the bare IP packet.

    Returns:
        The packet, with every length and checksum filled in.

    Raises:
        ValueError: an address is invalid or the families differ.
    """
    source, destination = _address_pair(src, dst)
    udp = dpkt.udp.UDP(sport=src_port, dport=dst_port, data=payload)
    udp.ulen = len(udp)
    return _ip_packet(source, destination, dpkt.ip.IP_PROTO_UDP, udp, ethernet)


def with_packet_info(ip_packet: bytes) -> bytes:
    """Put a TUN packet-information header before an IP packet.

    The header is 2 bytes of flags (0) and the packet's ethertype, both big
    endian; the ethertype follows the packet's version nibble.

    Raises:
        ValueError: the packet is neither IPv4 nor IPv6.
    """
    version = ip_packet[0] >> 4 if ip_packet else None
    ethertype = {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version) if version is not None else None
    if ethertype is None:
        raise ValueError("Only an IPv4 or IPv6 packet can go after a packet-information header.")
    return struct.pack("!HH", 0, ethertype) + ip_packet


# -- the device's limits -----------------------------------------------------------


def device_mode(device: Mapping[str, Any]) -> str:
    """``"tun"`` or ``"tap"`` (or whatever else the device dict says it is)."""
    return str(device.get("mode", device.get("kind", "")))


def link_type(device: Mapping[str, Any]) -> Link:
    """How :mod:`tungui.decode` reads this device's packets."""
    if device_mode(device) == "tap":
        return "ethernet"
    return "tun_pi" if device.get("pi") else "ip"


def max_length(device: Mapping[str, Any]) -> int:
    """The longest packet the device takes, as the helper checks it.

    The MTU, plus for a TAP device the Ethernet header and one VLAN tag, and
    for a device with packet information its 4-byte header.
    """
    overhead = (PI_HEADER if device.get("pi") else 0) + (
        ETHERNET_HEADER + VLAN_TAG if device_mode(device) == "tap" else 0
    )
    return int(device.get("mtu", 1500)) + overhead


def min_length(device: Mapping[str, Any]) -> int:
    """The shortest packet the device takes, as the helper checks it.

    An Ethernet header for a TAP device, an IPv4 header for a TUN device,
    plus 4 bytes with packet information.
    """
    base = ETHERNET_HEADER if device_mode(device) == "tap" else SHORTEST_IP
    return base + (PI_HEADER if device.get("pi") else 0)


# -- the form -------------------------------------------------------------------


@dataclass
class SendForm:
    """What a person edits in the Send packet… dialog, as text.

    Only the fields of :attr:`template` count: ``hex`` for "hex"; the MACs
    and IP addresses for "arp" (source = sender, destination = target);
    those, ports or identifier and sequence, and the payload for "icmp" and
    "udp".  The MACs count on a TAP device only.
    """

    template: Template = "icmp"
    #: The whole packet as the device's program would write it, link header included.
    hex: str = ""
    src_ip: str = ""
    dst_ip: str = ""
    src_mac: str = ""
    dst_mac: str = ""
    src_port: str = "40000"
    dst_port: str = "9"
    ident: str = f"0x{DEFAULT_IDENT:04x}"
    seq: str = "1"
    payload: str = ""
    #: Whether :attr:`payload` is hex rather than text (sent as UTF-8).
    payload_is_hex: bool = False

    @classmethod
    def defaults(cls, device: Mapping[str, Any], template: Template = "icmp") -> SendForm:
        """A form that makes the host answer: from a neighbour to the device's address.

        The source is another address of the device's first subnet (IPv4
        preferred), the destination the device's own address; on a TAP
        device the frame comes from a neighbour's MAC (see
        :func:`neighbour_mac`) to the device's (for ARP: to broadcast).

        Args:
            device: a device dict as ListDevices reports it.
            template: which template the form is for.
        """
        own, neighbour = _default_addresses(device)
        mac = str(device.get("mac", ""))
        return cls(
            template=template,
            src_ip=neighbour,
            dst_ip=own,
            src_mac=neighbour_mac(mac) if mac else "",
            dst_mac=BROADCAST_MAC if template == "arp" else mac,
        )


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a form.

    Attributes:
        packet: the bytes to inject; None when there are problems.
        problems: sentences for a person, the most important first.
        by_field: the first problem of each :class:`SendForm` field that has
            one, so a view can mark that field.
    """

    packet: bytes | None
    problems: list[str] = field(default_factory=list)
    by_field: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the packet can be sent as it is."""
        return self.packet is not None


def neighbour_mac(mac: str) -> str:
    """A MAC for the station at the far end of a TAP device, derived from the device's own.

    The device's own MAC is the host's side; a frame from that address would
    be dropped by a bridge ("received packet with own address as source
    address").  This is the same address made locally administered unicast
    (first octet ``02``), or with its last octet changed if that is the same.
    """
    octets = bytearray(_mac_bytes(mac))
    octets[0] = 0x02
    if bytes(octets) == _mac_bytes(mac):
        octets[5] ^= 0x01
    return ":".join(f"{octet:02x}" for octet in octets)


def check(form: SendForm, device: Mapping[str, Any]) -> Checked:
    """Check a form against a device and build its packet.

    Args:
        form: the dialog's contents.
        device: the device dict (name, kind or mode, mtu, pi, mac).

    Returns:
        The packet ready for InjectPacket, or the problems.
    """
    out = _Collector()
    tap = device_mode(device) == "tap"
    name = str(device.get("name", "the device"))
    packet: bytes | None = None
    if form.template == "hex":
        packet = _check_hex(out, form, device)
    elif form.template == "arp":
        if not tap:
            out.add("template", f"{name} is a TUN device: it carries IP packets, not ARP.")
            return out.result(None)
        sender_mac = _field(out, "src_mac", "sender MAC", form.src_mac, _unicast_mac)
        sender = _field(out, "src_ip", "sender address", form.src_ip, _ipv4)
        target = _field(out, "dst_ip", "target address", form.dst_ip, _ipv4)
        dst_mac = _field(out, "dst_mac", "destination MAC", form.dst_mac, _any_mac)
        if not out.problems:
            assert sender_mac and sender and target and dst_mac  # for mypy
            frame = arp_request(sender_mac, sender, target)
            packet = _mac_bytes(dst_mac) + frame[6:]
    elif form.template in ("icmp", "udp"):
        packet = _check_ip_template(out, form, tap)
    else:
        out.add("template", f"{form.template!r} is not a packet template.")
    if packet is not None and not out.problems:
        if device.get("pi") and not tap and form.template != "hex":
            packet = with_packet_info(packet)
        _check_length(out, packet, device)
    return out.result(packet)


class _Collector:
    """Gathers problems field by field, in the order the fields are checked."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.by_field: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        self.problems.append(message)
        self.by_field.setdefault(key, message)

    def result(self, packet: bytes | None) -> Checked:
        if self.problems or packet is None:
            return Checked(None, self.problems, self.by_field)
        return Checked(packet)


def _field(out: _Collector, key: str, what: str, text: str, parse: Any) -> Any:
    """Parse one field; on ValueError record the sentence and return None."""
    text = text.strip()
    if not text:
        out.add(key, f"Enter the {what}.")
        return None
    try:
        return parse(text, what)
    except ValueError as exc:
        out.add(key, str(exc))
        return None


def _check_hex(out: _Collector, form: SendForm, device: Mapping[str, Any]) -> bytes | None:
    try:
        packet = parse_hex(form.hex)
    except ValueError as exc:
        out.add("hex", str(exc))
        return None
    if not packet:
        out.add("hex", "Enter the packet's bytes in hex.")
        return None
    if link_type(device) == "ip" and packet[0] >> 4 not in (4, 6):
        # The kernel refuses (EINVAL) a bare packet that is neither.
        out.add(
            "hex",
            f"{device.get('name', 'The device')} takes IP packets: "
            "the first hex digit must be 4 (IPv4) or 6 (IPv6).",
        )
        return None
    return packet


def _check_ip_template(out: _Collector, form: SendForm, tap: bool) -> bytes | None:
    src = _field(out, "src_ip", "source address", form.src_ip, _ip)
    icmp = form.template == "icmp"
    if icmp:
        ident = _field(out, "ident", "identifier", form.ident, _u16)
        seq = _field(out, "seq", "sequence number", form.seq, _u16)
    else:
        src_port = _field(out, "src_port", "source port", form.src_port, _u16)
    dst = _field(out, "dst_ip", "destination address", form.dst_ip, _ip)
    if not icmp:
        dst_port = _field(out, "dst_port", "destination port", form.dst_port, _u16)
    if src is not None and dst is not None and src.version != dst.version:
        out.add(
            "dst_ip",
            f"The source {src} is IPv{src.version} and the destination {dst} IPv{dst.version}; "
            "use one family for both.",
        )
    if src is not None and src.is_multicast:
        out.add("src_ip", f"The source address {src} is a multicast address.")
    ethernet: tuple[str, str] | None = None
    if tap:
        src_mac = _field(out, "src_mac", "source MAC", form.src_mac, _unicast_mac)
        dst_mac = _field(out, "dst_mac", "destination MAC", form.dst_mac, _any_mac)
        ethernet = (src_mac, dst_mac)
    payload = b""
    try:
        payload = parse_hex(form.payload) if form.payload_is_hex else form.payload.encode()
    except ValueError as exc:
        out.add("payload", f"The payload: {exc}")
    except UnicodeEncodeError:
        out.add("payload", "The payload holds text that cannot be written as UTF-8.")
    if out.problems:
        return None
    if icmp:
        return icmp_echo_request(str(src), str(dst), ident, seq, payload, ethernet=ethernet)
    return udp_datagram(str(src), src_port, str(dst), dst_port, payload, ethernet=ethernet)


def _check_length(out: _Collector, packet: bytes, device: Mapping[str, Any]) -> None:
    name = device.get("name", "the device")
    longest, shortest = max_length(device), min_length(device)
    if len(packet) > longest:
        out.add(
            "length",
            f"The packet is {len(packet)} bytes; {name} takes at most {longest} "
            f"(MTU {device.get('mtu', 1500)}).",
        )
    elif len(packet) < shortest:
        out.add("length", f"The packet is {len(packet)} bytes; {name} takes at least {shortest}.")


# -- field parsers: (text, what) -> value, ValueError with a sentence ---------------


def _ip(text: str, what: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f"The {what} {text!r} is not an IPv4 or IPv6 address "
            "(such as 192.0.2.1 or 2001:db8::1)."
        ) from None


def _ipv4(text: str, what: str) -> str:
    address = _ip(text, what)
    if address.version != 4:
        raise ValueError(
            f"The {what} {address} is IPv6; ARP is for IPv4 (IPv6 uses neighbour discovery)."
        )
    return str(address)


def _u16(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 10)  # "010": int(…, 0) refuses a leading zero
        except ValueError:
            value = -1
    if not 0 <= value <= 0xFFFF or not text.isascii():
        raise ValueError(f"The {what} {text!r} is not a number from 0 to 65535.")
    return value


def _any_mac(text: str, what: str) -> str:
    if not _MAC_RE.fullmatch(text):
        raise ValueError(f"The {what} {text!r} is not of the form 02:00:5e:10:00:01.")
    return text.lower()


def _unicast_mac(text: str, what: str) -> str:
    mac = _any_mac(text, what)
    octets = _mac_bytes(mac)
    if octets[0] & 1:
        raise ValueError(f"The {what} {mac} is a multicast address; a sender has a unicast one.")
    if not any(octets):
        raise ValueError(f"The {what} 00:00:00:00:00:00 cannot be used.")
    return mac


# -- helpers ------------------------------------------------------------------------


def _mac_bytes(mac: str) -> bytes:
    if not _MAC_RE.fullmatch(mac):
        raise ValueError(f"{mac!r} is not a MAC address such as 02:00:5e:10:00:01.")
    return bytes.fromhex(mac.replace(":", ""))


def _address_pair(src: str, dst: str) -> tuple[IpAddress, IpAddress]:
    source, destination = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if source.version != destination.version:
        raise ValueError(f"{src} and {dst} are not of one address family.")
    return source, destination


def _ip_packet(
    src: IpAddress,
    dst: IpAddress,
    proto: int,
    message: Any,
    ethernet: tuple[str, str] | None,
) -> bytes:
    """Wrap a transport message in IPv4 or IPv6 (and Ethernet); dpkt does the sums."""
    if src.version == 4:
        ip: Any = dpkt.ip.IP(src=src.packed, dst=dst.packed, p=proto, ttl=64, data=message)
        ethertype = ETH_P_IP
    else:
        ip = dpkt.ip6.IP6(src=src.packed, dst=dst.packed, nxt=proto, hlim=64, data=message)
        ip.plen = len(message)  # dpkt leaves the payload length to its caller
        ethertype = ETH_P_IPV6
    packet = bytes(ip)
    if ethernet is None:
        return packet
    return _ethernet(ethernet[0], ethernet[1], ethertype, packet)


def _ethernet(src_mac: str, dst_mac: str, ethertype: int, payload: bytes) -> bytes:
    return _mac_bytes(dst_mac) + _mac_bytes(src_mac) + struct.pack("!H", ethertype) + payload


def _default_addresses(device: Mapping[str, Any]) -> tuple[str, str]:
    """The device's first address (IPv4 preferred) and a neighbour in its subnet."""
    interfaces: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    for text in device.get("addresses", []):
        try:
            interfaces.append(ipaddress.ip_interface(str(text)))
        except ValueError:
            continue
    if not interfaces:
        return "", ""
    own = min(interfaces, key=lambda interface: interface.version)
    for host in own.network.hosts():
        if host != own.ip:
            return str(own.ip), str(host)
    # A /32 or /128: no neighbour in the subnet; take the next address.
    try:
        return str(own.ip), str(own.ip + 1)
    except ipaddress.AddressValueError:
        return str(own.ip), str(own.ip - 1)
