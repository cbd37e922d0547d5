"""The Send packet… dialog's state and its checking, without Qt.

:class:`SendForm` holds what a person typed, as text.  :func:`check` turns it
into the bytes to hand to the helper's InjectPacket, or into sentences that
say what is wrong.  The bytes are what the device's program would write, so
the host receives them: the device's headers, then the frame.

* a TAP device takes an Ethernet frame, a TUN device a bare IPv4 or IPv6
  packet;
* before it go the headers the device was made with: packet information
  (``pi``: flags and the EtherType) and a virtio-net header (``vnet_hdr``).
  Every template, the hex one too, is the frame alone; the headers and the
  bounds come from the contract's :class:`~tungui_contract.limits.Framing`,
  the rule the helper checks InjectPacket against.

The packets themselves are built in :mod:`tungui.packets.build`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from tungui.problems import Problems
from tungui_contract.device import Device
from tungui_contract.limits import Framing

from .build import (
    BROADCAST_MAC,
    MAC_RE,
    IpAddress,
    arp_request,
    icmp_echo_request,
    mac_bytes,
    parse_hex,
    udp_datagram,
)
from .protocols import ETH_P_IP, ETH_P_IPV6

Template = Literal["hex", "arp", "icmp", "udp"]

#: The templates, in the order a picker lists them.
TEMPLATES: tuple[Template, ...] = ("hex", "arp", "icmp", "udp")

#: The link types of :mod:`tungui.packets.decode` a frame can have.
Link = Literal["ethernet", "ip"]

#: The identifier of a new echo request: "tu" in ASCII.
DEFAULT_IDENT = 0x7475


# -- the device's limits -----------------------------------------------------------


def device_mode(device: Device) -> str:
    """``"tun"`` or ``"tap"`` (or whatever else the device says it is)."""
    return device.mode or device.kind


def link_type(device: Device) -> Link:
    """How :mod:`tungui.packets.decode` reads a frame of this device (without its headers)."""
    return "ethernet" if device_mode(device) == "tap" else "ip"


def framing(device: Device) -> Framing:
    """How the device's program frames what it writes: its headers and the size bounds."""
    return device.framing


def max_length(device: Device) -> int:
    """The longest write the device takes, headers included, as the helper checks it."""
    return framing(device).longest(device.mtu)


def min_length(device: Device) -> int:
    """The shortest write the device takes, headers included, as the helper checks it."""
    return framing(device).shortest


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
    #: The frame (TAP) or IP packet (TUN), from its first header byte on;
    #: :func:`check` writes the device's own headers (pi, vnet_hdr) before it.
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
    def defaults(cls, device: Device, template: Template = "icmp") -> SendForm:
        """A form that makes the host answer: from a neighbour to the device's address.

        The source is another address of the device's first subnet (IPv4
        preferred), the destination the device's own address; on a TAP
        device the frame comes from a neighbour's MAC (see
        :func:`neighbour_mac`) to the device's (for ARP: to broadcast).

        Args:
            device: the device, as listed.
            template: which template the form is for.
        """
        own, neighbour = _default_addresses(device)
        mac = device.mac
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
        packet: the bytes to inject (the device's headers, then the frame);
            None when there are problems.
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
    octets = bytearray(mac_bytes(mac))
    octets[0] = 0x02
    if bytes(octets) == mac_bytes(mac):
        octets[5] ^= 0x01
    return ":".join(f"{octet:02x}" for octet in octets)


def check(form: SendForm, device: Device) -> Checked:
    """Check a form against a device and build its packet.

    Args:
        form: the dialog's contents.
        device: the device dict (name, kind or mode, mtu, pi, mac).

    Returns:
        The packet ready for InjectPacket, or the problems.
    """
    out = _Collector()
    tap = device_mode(device) == "tap"
    name = device.name or "the device"
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
            packet = mac_bytes(dst_mac) + frame[6:]
    elif form.template in ("icmp", "udp"):
        packet = _check_ip_template(out, form, tap)
    else:
        out.add("template", f"{form.template!r} is not a packet template.")
    if packet is not None and not out.problems:
        packet = framing(device).prefix(_ethertype(packet, tap)) + packet
        _check_length(out, packet, device)
    return out.result(packet)


class _Collector(Problems):
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


def _check_hex(out: _Collector, form: SendForm, device: Device) -> bytes | None:
    try:
        packet = parse_hex(form.hex)
    except ValueError as exc:
        out.add("hex", str(exc))
        return None
    if not packet:
        out.add("hex", "Enter the packet's bytes in hex.")
        return None
    if link_type(device) == "ip" and packet[0] >> 4 not in (4, 6):
        # The kernel refuses (EINVAL) a bare packet that is neither, and
        # packet information names the protocol after the version.
        out.add(
            "hex",
            f"{device.name or 'The device'} takes IP packets: "
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


def _ethertype(frame: bytes, tap: bool) -> int:
    """The EtherType packet information names: the frame's own, or the IP version's."""
    if tap:
        return int.from_bytes(frame[12:14], "big")
    return ETH_P_IPV6 if frame[0] >> 4 == 6 else ETH_P_IP


def _check_length(out: _Collector, packet: bytes, device: Device) -> None:
    """The helper's bound on the whole write, told in bytes of the frame a person sees."""
    name = device.name or "the device"
    longest, shortest = max_length(device), min_length(device)
    headers = framing(device).headers
    if len(packet) > longest:
        out.add(
            "length",
            f"The packet is {len(packet) - headers} bytes; {name} takes at most "
            f"{longest - headers} (MTU {device.mtu}).",
        )
    elif len(packet) < shortest:
        out.add(
            "length",
            f"The packet is {len(packet) - headers} bytes; {name} takes at least "
            f"{shortest - headers}.",
        )


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
    if not MAC_RE.fullmatch(text):
        raise ValueError(f"The {what} {text!r} is not of the form 02:00:5e:10:00:01.")
    return text.lower()


def _unicast_mac(text: str, what: str) -> str:
    mac = _any_mac(text, what)
    octets = mac_bytes(mac)
    if octets[0] & 1:
        raise ValueError(f"The {what} {mac} is a multicast address; a sender has a unicast one.")
    if not any(octets):
        raise ValueError(f"The {what} 00:00:00:00:00:00 cannot be used.")
    return mac


# -- helpers ------------------------------------------------------------------------


def _default_addresses(device: Device) -> tuple[str, str]:
    """The device's first address (IPv4 preferred) and a neighbour in its subnet."""
    interfaces: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    for text in device.addresses:
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
