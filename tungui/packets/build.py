"""Packets built for the Send packet… dialog, without Qt.

The bytes are what a device's program would write, so the host receives
them: an Ethernet frame for a TAP device, a bare IPv4 or IPv6 packet for a
TUN device.  The device's own headers (packet information, a virtio-net
header) go before it: :mod:`.sendform` writes them, from the contract's
:class:`~tungui_contract.limits.Framing`.

Packets are built with dpkt, which fills in lengths and the IPv4, ICMP,
ICMPv6 and UDP checksums when they are left 0: nothing here sums by hand.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from typing import Any

import dpkt

from .protocols import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

_HEX_SEPARATORS = re.compile(r"[\s:]+")
MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        sha=mac_bytes(sender_mac),
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


def mac_bytes(mac: str) -> bytes:
    """The six bytes of a MAC address written 02:00:5e:10:00:01."""
    if not MAC_RE.fullmatch(mac):
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
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + payload
