"""Building packets for Send packet…, and checking the form, without Qt."""

from __future__ import annotations

import itertools
from typing import Any, Literal

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.devicedicts import MAC
from tests.support.devicedicts import send_tap as tap
from tests.support.devicedicts import send_tun as tun
from tungui.packets import sendform as packetforms
from tungui.packets.build import (
    arp_request,
    icmp_echo_request,
    parse_hex,
    udp_datagram,
)
from tungui.packets.sendform import SendForm, check, max_length, min_length
from tungui_contract.device import Device
from tungui_contract.limits import Framing


def repacked(packet: Any) -> bytes:
    """The packet packed again by dpkt with every checksum recomputed."""
    layer = packet
    while hasattr(layer, "data") and not isinstance(layer, bytes):
        if hasattr(layer, "sum"):
            layer.sum = 0
        layer = layer.data
    return bytes(packet)


# -- parse_hex -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["45 00 00 1c", "450000 1c", "45:00:00:1c", "  45\n00\t00:1C\n", "4500001c"],
)
def test_parse_hex_accepts_separators(text: str) -> None:
    assert parse_hex(text) == bytes.fromhex("4500001c")


def test_parse_hex_of_nothing_is_empty() -> None:
    assert parse_hex(" \n") == b""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("45 zz", "'zz' is not hexadecimal."),
        ("45 0x10", "'0x10' is not hexadecimal."),
        ("450", "an odd number of hex digits"),
        ("4-5", "'4-5' is not hexadecimal."),
        ("٣٣", "is not hexadecimal"),
    ],
)
def test_parse_hex_refuses_with_a_sentence(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hex(text)


@given(st.text())
def test_parse_hex_raises_only_value_error(text: str) -> None:
    try:
        parse_hex(text)
    except ValueError as exc:
        assert str(exc).endswith(".")


@given(st.binary())
def test_parse_hex_reads_what_hex_writes(data: bytes) -> None:
    assert parse_hex(data.hex(" ")) == data
    assert parse_hex(data.hex(":").upper()) == data


# -- builders ---------------------------------------------------------------------


def test_icmp_echo_request_ipv4_is_valid() -> None:
    packet = icmp_echo_request("192.0.2.2", "192.0.2.1", 0x7475, 1, b"ping", ethernet=None)
    ip = dpkt.ip.IP(packet)
    assert ip.len == len(packet) == 20 + 8 + 4
    assert ip.p == dpkt.ip.IP_PROTO_ICMP
    assert ip.src == bytes([192, 0, 2, 2]) and ip.dst == bytes([192, 0, 2, 1])
    assert ip.data.type == dpkt.icmp.ICMP_ECHO
    assert (ip.data.data.id, ip.data.data.seq, ip.data.data.data) == (0x7475, 1, b"ping")
    assert repacked(dpkt.ip.IP(packet)) == packet


def test_icmp_echo_request_ipv6_is_icmpv6() -> None:
    packet = icmp_echo_request("2001:db8::2", "2001:db8::1", 7, 9, b"x", ethernet=None)
    ip6 = dpkt.ip6.IP6(packet)
    assert ip6.nxt == dpkt.ip.IP_PROTO_ICMP6
    assert ip6.plen == len(packet) - 40
    assert ip6.data.type == dpkt.icmp6.ICMP6_ECHO_REQUEST
    assert (ip6.data.data.id, ip6.data.data.seq) == (7, 9)
    assert ip6.data.sum != 0
    assert repacked(dpkt.ip6.IP6(packet)) == packet


def test_icmp_in_ethernet() -> None:
    frame = icmp_echo_request(
        "192.0.2.2", "192.0.2.1", 1, 1, b"", ethernet=("02:00:00:00:00:02", MAC)
    )
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.dst == bytes.fromhex(MAC.replace(":", ""))
    assert eth.src == bytes.fromhex("020000000002")
    assert eth.type == 0x0800
    assert isinstance(eth.data, dpkt.ip.IP)
    assert repacked(dpkt.ethernet.Ethernet(frame)) == frame


@pytest.mark.parametrize(("src", "dst"), [("192.0.2.2", "192.0.2.1"), ("2001:db8::2", "::1")])
def test_udp_datagram_is_valid(src: str, dst: str) -> None:
    packet = udp_datagram(src, 40000, dst, 9, b"hello", ethernet=None)
    ip = dpkt.ip.IP(packet) if ":" not in src else dpkt.ip6.IP6(packet)
    udp = ip.data
    assert isinstance(udp, dpkt.udp.UDP)
    assert (udp.sport, udp.dport, udp.ulen, udp.data) == (40000, 9, 13, b"hello")
    assert udp.sum != 0
    assert repacked(type(ip)(packet)) == packet


def test_mixed_families_are_refused() -> None:
    with pytest.raises(ValueError, match="family"):
        udp_datagram("192.0.2.2", 1, "2001:db8::1", 2, b"", ethernet=None)


def test_arp_request_is_a_broadcast_who_has() -> None:
    frame = arp_request("02:00:00:00:00:02", "192.0.2.2", "192.0.2.1")
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.dst == b"\xff" * 6
    assert eth.type == 0x0806
    arp = eth.data
    assert arp.op == dpkt.arp.ARP_OP_REQUEST
    assert arp.sha == eth.src == bytes.fromhex("020000000002")
    assert arp.spa == bytes([192, 0, 2, 2]) and arp.tpa == bytes([192, 0, 2, 1])
    assert arp.tha == bytes(6)


# -- limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "longest", "shortest"),
    [
        (tun(), 1500, 20),
        (tun(pi=True), 1504, 24),
        (tap(), 1518, 14),
        (tap(mtu=9000), 9018, 14),
        (tap(pi=True), 1522, 18),
        (tun(vnet_hdr=True), 1510, 30),
        (tap(pi=True, vnet_hdr=True), 1532, 28),
    ],
)
def test_lengths_match_the_helper(device: Device, longest: int, shortest: int) -> None:
    assert max_length(device) == longest
    assert min_length(device) == shortest


MODES: tuple[Literal["tun", "tap"], ...] = ("tun", "tap")
#: Every framing of a TUN/TAP device: mode, pi, vnet_hdr.
FRAMINGS = list(itertools.product(MODES, (False, True), (False, True)))


def _frame(mode: str, length: int) -> bytes:
    """A frame or packet of ``length`` bytes a device of ``mode`` takes (IPv4 on a TUN)."""
    if mode == "tap":
        header = bytes.fromhex(MAC.replace(":", "")) + bytes(6) + b"\x08\x00"
        return (header + bytes(max(0, length - 14)))[:length]
    return b"\x45" + bytes(length - 1)


@pytest.mark.parametrize(("mode", "pi", "vnet_hdr"), FRAMINGS)
@pytest.mark.parametrize("mtu", [68, 1500, 65535])
def test_bounds_and_headers_are_the_contracts(
    mode: Literal["tun", "tap"], pi: bool, vnet_hdr: bool, mtu: int
) -> None:
    """The form's bounds and headers drift from the helper's rule (Framing) in no case."""
    framing = Framing(mode, pi, vnet_hdr)
    device = (tap if mode == "tap" else tun)(pi=pi, vnet_hdr=vnet_hdr, mtu=mtu)
    assert packetforms.framing(device) == framing
    assert (min_length(device), max_length(device)) == (framing.shortest, framing.longest(mtu))
    # Typed as hex, a frame of the longest and of the shortest length goes,
    # after the headers; one byte more or less does not.
    for length in (framing.shortest, framing.longest(mtu)):
        frame = _frame(mode, length - framing.headers)
        result = check(SendForm(template="hex", hex=frame.hex()), device)
        assert result.packet == framing.prefix(0x0800) + frame
    for length in (framing.shortest - 1, framing.longest(mtu) + 1):
        frame = _frame(mode, length - framing.headers)
        result = check(SendForm(template="hex", hex=frame.hex()), device)
        assert not result.ok and list(result.by_field) == ["length"]


@pytest.mark.parametrize(("mode", "pi", "vnet_hdr"), FRAMINGS)
@pytest.mark.parametrize("template", ["arp", "icmp", "udp"])
def test_every_template_gets_the_devices_headers(
    mode: Literal["tun", "tap"], pi: bool, vnet_hdr: bool, template: packetforms.Template
) -> None:
    if template == "arp" and mode == "tun":
        return
    framing = Framing(mode, pi, vnet_hdr)
    device = (tap if mode == "tap" else tun)(pi=pi, vnet_hdr=vnet_hdr)
    packet = check(SendForm.defaults(device, template), device).packet
    assert packet is not None
    frame = packet[framing.headers :]
    if mode == "tap":
        ethertype = dpkt.ethernet.Ethernet(frame).type
        assert ethertype == (0x0806 if template == "arp" else 0x0800)
    else:
        ethertype = 0x0800
        assert dpkt.ip.IP(frame).p == (17 if template == "udp" else 1)
    assert packet == framing.prefix(ethertype) + frame


# -- the form ---------------------------------------------------------------------


def test_defaults_for_tun_make_the_host_answer() -> None:
    form = SendForm.defaults(tun())
    assert (form.src_ip, form.dst_ip) == ("192.0.2.2", "192.0.2.1")
    result = check(form, tun())
    assert result.ok and result.problems == []
    ip = dpkt.ip.IP(result.packet)
    assert ip.data.data.id == 0x7475 and ip.data.data.seq == 1


def test_defaults_pick_a_neighbour_other_than_the_device() -> None:
    form = SendForm.defaults(tun(addresses=["198.51.100.2/30"]))
    assert (form.src_ip, form.dst_ip) == ("198.51.100.1", "198.51.100.2")
    form = SendForm.defaults(tun(addresses=["2001:db8::1/64"]))
    assert (form.src_ip, form.dst_ip) == ("2001:db8::2", "2001:db8::1")
    form = SendForm.defaults(tun(addresses=["192.0.2.7/32"]))
    assert (form.src_ip, form.dst_ip) == ("192.0.2.8", "192.0.2.7")
    form = SendForm.defaults(tun(addresses=[]))
    assert (form.src_ip, form.dst_ip) == ("", "")


def test_defaults_for_tap_come_from_a_neighbour_mac() -> None:
    form = SendForm.defaults(tap())
    assert form.dst_mac == MAC
    assert form.src_mac == "02:54:00:12:34:56"
    assert SendForm.defaults(tap(), "arp").dst_mac == "ff:ff:ff:ff:ff:ff"
    assert packetforms.neighbour_mac("02:00:00:00:00:01") == "02:00:00:00:00:00"


def test_tun_with_pi_gets_the_header() -> None:
    device = tun(pi=True)
    result = check(SendForm.defaults(device), device)
    assert result.packet is not None
    assert result.packet[:4] == b"\x00\x00\x08\x00"
    assert dpkt.ip.IP(result.packet[4:]).data.type == dpkt.icmp.ICMP_ECHO


def test_tun_with_pi_ipv6_header() -> None:
    device = tun(pi=True, addresses=["2001:db8::1/64"])
    result = check(SendForm.defaults(device, "udp"), device)
    assert result.packet is not None and result.packet[:4] == b"\x00\x00\x86\xdd"


def test_tap_udp_is_an_ethernet_frame() -> None:
    form = SendForm.defaults(tap(), "udp")
    form.payload = "68 69"
    form.payload_is_hex = True
    result = check(form, tap())
    eth = dpkt.ethernet.Ethernet(result.packet)
    assert eth.data.data.data == b"hi"
    assert (eth.data.data.sport, eth.data.data.dport) == (40000, 9)


def test_arp_on_tap() -> None:
    result = check(SendForm.defaults(tap(), "arp"), tap())
    eth = dpkt.ethernet.Ethernet(result.packet)
    assert eth.dst == b"\xff" * 6 and eth.data.tpa == bytes([192, 0, 2, 1])


def test_arp_refused_on_tun() -> None:
    result = check(SendForm.defaults(tun(), "arp"), tun())
    assert not result.ok
    assert result.problems == ["tun0 is a TUN device: it carries IP packets, not ARP."]


def test_arp_refuses_ipv6() -> None:
    form = SendForm.defaults(tap(), "arp")
    form.dst_ip = "2001:db8::1"
    assert "ARP is for IPv4" in check(form, tap()).by_field["dst_ip"]


def test_too_long_is_refused_with_the_mtu() -> None:
    form = SendForm.defaults(tap(), "udp")
    form.payload = "x" * 1476  # 14 + 20 + 8 + 1476 = 1518: just fits
    assert check(form, tap()).ok
    form.payload += "x" * 12
    assert check(form, tap()).problems == [
        "The packet is 1530 bytes; tap0 takes at most 1518 (MTU 1500)."
    ]


def test_hex_is_sent_as_is() -> None:
    packet = icmp_echo_request("192.0.2.2", "192.0.2.1", 1, 1, b"", ethernet=None)
    assert check(SendForm(template="hex", hex=packet.hex(" ")), tun()).packet == packet
    # With packet information, the hex is the packet alone: the header goes before it.
    framed = b"\x00\x00\x08\x00" + packet
    assert check(SendForm(template="hex", hex=packet.hex()), tun(pi=True)).packet == framed
    # Typing the header too is typing a packet that is not IP.
    assert not check(SendForm(template="hex", hex=framed.hex()), tun(pi=True)).ok
    ipv6 = icmp_echo_request("2001:db8::2", "2001:db8::1", 1, 1, b"", ethernet=None)
    result = check(SendForm(template="hex", hex=ipv6.hex()), tun(pi=True, vnet_hdr=True))
    assert result.packet == b"\x00\x00\x86\xdd" + bytes(10) + ipv6


def test_too_short_and_too_long_are_told_without_the_headers() -> None:
    device = tap(pi=True, vnet_hdr=True)
    result = check(SendForm(template="hex", hex="ff" * 13), device)
    assert result.problems == ["The packet is 13 bytes; tap0 takes at least 14."]
    result = check(SendForm(template="hex", hex=_frame("tap", 1519).hex()), device)
    assert result.problems == ["The packet is 1519 bytes; tap0 takes at most 1518 (MTU 1500)."]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Enter the packet's bytes in hex."),
        ("45 zz", "'zz' is not hexadecimal."),
        ("4500 0", "odd number"),
        ("00" * 20, "the first hex digit must be 4 (IPv4) or 6 (IPv6)"),
        ("45" + "00" * 10, "The packet is 11 bytes; tun0 takes at least 20."),
    ],
)
def test_hex_problems(text: str, problem: str) -> None:
    result = check(SendForm(template="hex", hex=text), tun())
    assert not result.ok
    assert problem in result.problems[0]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("src_ip", "192.0.2.300", "The source address '192.0.2.300' is not an IPv4 or IPv6"),
        ("src_ip", "", "Enter the source address."),
        ("src_ip", "224.0.0.1", "is a multicast address"),
        ("dst_ip", "2001:db8::1", "use one family for both"),
        ("src_port", "65536", "The source port '65536' is not a number from 0 to 65535."),
        ("dst_port", "nine", "The destination port 'nine' is not a number"),
        ("src_mac", "01:00:5e:00:00:01", "is a multicast address"),
        ("dst_mac", "ff:ff", "is not of the form"),
        ("payload", "zz", "The payload: 'zz' is not hexadecimal."),
    ],
)
def test_field_problems(field: str, value: str, problem: str) -> None:
    form = SendForm.defaults(tap(), "udp")
    form.payload_is_hex = True
    setattr(form, field, value)
    result = check(form, tap())
    assert not result.ok
    assert problem in result.by_field[field]


@pytest.mark.parametrize(("text", "value"), [("0x7475", 0x7475), ("010", 10), ("65535", 65535)])
def test_ident_accepts_decimal_and_hex(text: str, value: int) -> None:
    form = SendForm.defaults(tun())
    form.ident = text
    result = check(form, tun())
    assert dpkt.ip.IP(result.packet).data.data.id == value


def test_ident_out_of_range() -> None:
    form = SendForm.defaults(tun())
    form.seq = "-1"
    assert "sequence number '-1' is not a number" in check(form, tun()).by_field["seq"]
