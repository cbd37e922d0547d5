"""One-line packet summaries (tungui.packets.decode), on frames built with dpkt."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

dpkt = pytest.importorskip("dpkt", reason="dpkt (PyPI) or python3-dpkt (Debian) is not installed")

from tungui.packets.decode import LINKS, Decoded, decode, protocol, summary  # noqa: E402

MAC1 = bytes.fromhex("02005e100001")
MAC2 = bytes.fromhex("02005e100002")
BROADCAST = b"\xff" * 6
A1 = ipaddress.IPv4Address("192.0.2.1").packed
A2 = ipaddress.IPv4Address("192.0.2.2").packed
B1 = ipaddress.IPv6Address("2001:db8::1").packed
B2 = ipaddress.IPv6Address("2001:db8::2").packed
LL1 = ipaddress.IPv6Address("fe80::1").packed
ALL_ROUTERS = ipaddress.IPv6Address("ff02::2").packed


# -- frame builders -------------------------------------------------------------


# A dpkt packet object: dpkt has no type information.
Packet = Any


def raw(packet: Packet) -> bytes:
    """A packet's bytes (dpkt fills in lengths and checksums)."""
    data: bytes = bytes(packet)
    return data


def ether(payload: Packet, ethertype: int, src: bytes = MAC2, dst: bytes = BROADCAST) -> bytes:
    return raw(dpkt.ethernet.Ethernet(src=src, dst=dst, type=ethertype)) + raw(payload)


def arp(op: int, sha: bytes, spa: bytes, tpa: bytes, tha: bytes = b"\0" * 6) -> bytes:
    return raw(dpkt.arp.ARP(op=op, sha=sha, spa=spa, tha=tha, tpa=tpa))


def ipv4(proto: int, payload: Packet, src: bytes = A1, dst: bytes = A2, **fields: int) -> bytes:
    return raw(dpkt.ip.IP(src=src, dst=dst, p=proto, data=payload, **fields))


def ipv6(nxt: int, payload: Packet, src: bytes = B1, dst: bytes = B2) -> bytes:
    body = raw(payload)
    return raw(dpkt.ip6.IP6(src=src, dst=dst, nxt=nxt, hlim=64, plen=len(body), data=body))


def udp(sport: int, dport: int, payload: bytes) -> Packet:
    return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)


def tcp(sport: int, dport: int, flags: int, payload: bytes = b"") -> Packet:
    return dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, data=payload)


def icmp_echo(kind: int, ident: int, seq: int) -> Packet:
    return dpkt.icmp.ICMP(type=kind, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=b"ping" * 8))


def icmp6(kind: int, body: bytes, code: int = 0) -> Packet:
    return dpkt.icmp6.ICMP6(type=kind, code=code, data=body)


def tun_pi(ethertype: int, packet: bytes) -> bytes:
    return struct.pack("!HH", 0, ethertype) + packet


ARP_REQUEST = ether(arp(1, MAC2, A2, A1), 0x0806)
ARP_REPLY = ether(arp(2, MAC1, A1, A2, MAC2), 0x0806, src=MAC1, dst=MAC2)
ICMP_REQUEST = ipv4(1, icmp_echo(8, 0x1234, 1))
UDP_V4 = ipv4(17, udp(53, 40000, b"x" * 20))
TCP_SYN = ipv4(6, tcp(80, 40000, dpkt.tcp.TH_SYN))
NEIGHBOR_SOLICITATION = ipv6(58, icmp6(135, b"\0" * 4 + B1 + bytes([1, 1]) + MAC2), src=B2)

# Every well-formed frame of these tests, with its link type.
FRAMES = [
    (ARP_REQUEST, "ethernet"),
    (ARP_REPLY, "ethernet"),
    (ether(ICMP_REQUEST, 0x0800), "ethernet"),
    (ether(UDP_V4, 0x0800), "ethernet"),
    (ether(NEIGHBOR_SOLICITATION, 0x86DD), "ethernet"),
    (ICMP_REQUEST, "ip"),
    (TCP_SYN, "ip"),
    (NEIGHBOR_SOLICITATION, "ip"),
    (tun_pi(0x0800, UDP_V4), "tun_pi"),
    (tun_pi(0x86DD, NEIGHBOR_SOLICITATION), "tun_pi"),
]


# -- ARP --------------------------------------------------------------------------


def test_arp_request_and_reply() -> None:
    assert summary(ARP_REQUEST, link="ethernet") == "ARP who-has 192.0.2.1 tell 192.0.2.2"
    assert summary(ARP_REPLY, link="ethernet") == "ARP 192.0.2.1 is-at 02:00:5e:10:00:01"
    assert protocol(ARP_REQUEST, link="ethernet") == "ARP"
    assert decode(ARP_REPLY, link="ethernet") == Decoded(
        "ARP", "ARP 192.0.2.1 is-at 02:00:5e:10:00:01"
    )


def test_arp_gratuitous_probe_and_other_kinds() -> None:
    gratuitous = ether(arp(1, MAC1, A1, A1), 0x0806)
    assert summary(gratuitous, link="ethernet") == (
        "ARP who-has 192.0.2.1 tell 192.0.2.1 (gratuitous)"
    )
    probe = ether(arp(1, MAC1, b"\0" * 4, A1), 0x0806)
    assert summary(probe, link="ethernet") == "ARP who-has 192.0.2.1 tell 0.0.0.0 (probe)"
    rarp_reply = ether(arp(4, MAC1, A1, A2), 0x0806)
    assert summary(rarp_reply, link="ethernet") == "ARP op=4 192.0.2.1 → 192.0.2.2"
    token_ring = ether(raw(dpkt.arp.ARP(hrd=6, op=1)), 0x0806)
    assert summary(token_ring, link="ethernet") == "ARP hardware=6 protocol=type=0x0800 (IPv4) op=1"


def test_truncated_arp_is_malformed() -> None:
    frame = ARP_REQUEST[:30]
    assert decode(frame, link="ethernet") == Decoded("ARP", "malformed ARP packet (16 bytes)")


# -- ICMP -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "link"),
    [
        (ether(ICMP_REQUEST, 0x0800), "ethernet"),
        (ICMP_REQUEST, "ip"),
        (tun_pi(0x0800, ICMP_REQUEST), "tun_pi"),
    ],
)
def test_icmp_echo_request_on_every_link(frame: bytes, link: str) -> None:
    assert decode(frame, link=link) == Decoded(
        "ICMP", "ICMP echo request 192.0.2.1 → 192.0.2.2 id=4660 seq=1"
    )


def test_icmp_echo_reply_and_errors() -> None:
    reply = ipv4(1, icmp_echo(0, 7, 42), src=A2, dst=A1)
    assert summary(reply, link="ip") == "ICMP echo reply 192.0.2.2 → 192.0.2.1 id=7 seq=42"
    unreachable = ipv4(1, dpkt.icmp.ICMP(type=3, code=3, data=b"\0" * 4 + UDP_V4[:28]))
    assert summary(unreachable, link="ip") == (
        "ICMP destination unreachable (port unreachable) 192.0.2.1 → 192.0.2.2"
    )
    expired = ipv4(1, dpkt.icmp.ICMP(type=11, code=1, data=b"\0" * 4))
    assert summary(expired, link="ip") == "ICMP time exceeded code=1 192.0.2.1 → 192.0.2.2"
    unknown = ipv4(1, dpkt.icmp.ICMP(type=42, code=0, data=b"\0" * 4))
    assert summary(unknown, link="ip") == "ICMP type=42 code=0 192.0.2.1 → 192.0.2.2"


def test_icmp_echo_without_its_id_and_sequence_is_malformed() -> None:
    short = ipv4(1, raw(dpkt.icmp.ICMP(type=8))[:4])
    assert decode(short, link="ip") == Decoded(
        "ICMP", "malformed ICMP echo request 192.0.2.1 → 192.0.2.2 (0 bytes)"
    )


# -- ICMPv6 -----------------------------------------------------------------------


def test_icmpv6_neighbor_discovery() -> None:
    assert decode(NEIGHBOR_SOLICITATION, link="ip") == Decoded(
        "ICMPv6", "ICMPv6 neighbor solicitation for 2001:db8::1 from 2001:db8::2"
    )
    advert_body = bytes([0x60, 0, 0, 0]) + B1 + bytes([2, 1]) + MAC1
    advert = ipv6(58, icmp6(136, advert_body), src=B1, dst=B2)
    assert summary(advert, link="ip") == (
        "ICMPv6 neighbor advertisement 2001:db8::1 is-at 02:00:5e:10:00:01 (sol, ovr)"
    )
    bare_advert = ipv6(58, icmp6(136, bytes(4) + B1))
    assert summary(bare_advert, link="ip") == "ICMPv6 neighbor advertisement 2001:db8::1"
    solicit = ipv6(58, icmp6(133, bytes(4)), src=LL1, dst=ALL_ROUTERS)
    assert decode(solicit, link="ip") == Decoded(
        "ICMPv6", "ICMPv6 router solicitation from fe80::1"
    )
    advertise = ipv6(58, icmp6(134, bytes(12)), src=LL1)
    assert summary(advertise, link="ip") == "ICMPv6 router advertisement from fe80::1"


def test_icmpv6_echo_and_errors() -> None:
    echo = ipv6(58, icmp6(128, raw(dpkt.icmp6.ICMP6.Echo(id=9, seq=3))))
    assert summary(echo, link="ip") == "ICMPv6 echo request 2001:db8::1 → 2001:db8::2 id=9 seq=3"
    unreachable = ipv6(58, icmp6(1, bytes(4), code=4))
    assert summary(unreachable, link="ip") == (
        "ICMPv6 destination unreachable (port unreachable) 2001:db8::1 → 2001:db8::2"
    )
    too_big = ipv6(58, icmp6(2, struct.pack("!I", 1280)))
    assert summary(too_big, link="ip") == (
        "ICMPv6 packet too big mtu=1280 2001:db8::1 → 2001:db8::2"
    )
    report = ipv6(58, icmp6(143, bytes(4)))
    assert summary(report, link="ip") == (
        "ICMPv6 multicast listener report v2 2001:db8::1 → 2001:db8::2"
    )


def test_truncated_neighbor_solicitation_is_malformed() -> None:
    short = ipv6(58, icmp6(135, bytes(8)))
    assert decode(short, link="ip") == Decoded(
        "ICMPv6", "malformed ICMPv6 neighbor solicitation 2001:db8::1 → 2001:db8::2 (8 bytes)"
    )


# -- UDP and TCP --------------------------------------------------------------------


def test_udp_over_ipv4_and_ipv6() -> None:
    assert decode(ether(UDP_V4, 0x0800), link="ethernet") == Decoded(
        "UDP", "UDP 192.0.2.1:53 → 192.0.2.2:40000 len=20"
    )
    over6 = ipv6(17, udp(40000, 53, b"q" * 12))
    assert summary(over6, link="ip") == "UDP [2001:db8::1]:40000 → [2001:db8::2]:53 len=12"


@pytest.mark.parametrize(
    ("flags", "payload", "text"),
    [
        (dpkt.tcp.TH_SYN, b"", "[SYN]"),
        (dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, b"", "[SYN, ACK]"),
        (dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, b"hello", "[PSH, ACK] len=5"),
        (dpkt.tcp.TH_FIN | dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, b"", "[FIN, PSH, ACK]"),
        (dpkt.tcp.TH_RST, b"", "[RST]"),
        (0, b"", "[<none>]"),
    ],
)
def test_tcp_flags(flags: int, payload: bytes, text: str) -> None:
    packet = ipv4(6, tcp(80, 40000, flags, payload))
    assert decode(packet, link="ip") == Decoded("TCP", f"TCP 192.0.2.1:80 → 192.0.2.2:40000 {text}")


def test_tcp_over_ipv6_on_a_tap() -> None:
    frame = ether(ipv6(6, tcp(443, 50000, dpkt.tcp.TH_ACK)), 0x86DD)
    assert summary(frame, link="ethernet") == "TCP [2001:db8::1]:443 → [2001:db8::2]:50000 [ACK]"


def test_truncated_transport_headers_are_malformed() -> None:
    assert decode(UDP_V4[:24], link="ip") == Decoded(
        "UDP", "malformed UDP 192.0.2.1 → 192.0.2.2 (4 bytes)"
    )
    assert decode(TCP_SYN[:30], link="ip") == Decoded(
        "TCP", "malformed TCP 192.0.2.1 → 192.0.2.2 (10 bytes)"
    )


# -- other network and link layers ------------------------------------------------


def test_other_ip_protocols_say_their_number() -> None:
    gre = ipv4(47, b"\0" * 8)
    assert decode(gre, link="ip") == Decoded("GRE", "IPv4 192.0.2.1 → 192.0.2.2 proto=47 (GRE)")
    unassigned = ipv4(200, b"\0" * 8)
    assert decode(unassigned, link="ip") == Decoded("IPv4", "IPv4 192.0.2.1 → 192.0.2.2 proto=200")
    v6 = ipv6(253, b"\0" * 8)
    assert decode(v6, link="ip") == Decoded("IPv6", "IPv6 2001:db8::1 → 2001:db8::2 proto=253")


def test_fragments_after_the_first_are_not_read_as_transport() -> None:
    fragment = ipv4(17, b"\0" * 16, offset=185)
    assert decode(fragment, link="ip") == Decoded(
        "IPv4", "IPv4 192.0.2.1 → 192.0.2.2 fragment offset=1480 proto=17 (UDP)"
    )
    frag_header = struct.pack("!BBHI", 17, 0, 185 << 3, 1)
    v6 = ipv6(44, frag_header + b"\0" * 16)
    assert decode(v6, link="ip") == Decoded(
        "IPv6", "IPv6 2001:db8::1 → 2001:db8::2 fragment offset=1480 proto=17 (UDP)"
    )


def test_other_ethertypes_say_their_number() -> None:
    lldp = ether(b"\0" * 46, 0x88CC, dst=bytes.fromhex("0180c200000e"))
    assert decode(lldp, link="ethernet") == Decoded(
        "LLDP", "Ethernet 02:00:5e:10:00:02 → 01:80:c2:00:00:0e type=0x88cc (LLDP)"
    )
    local = ether(b"\0" * 46, 0x88B5)
    assert decode(local, link="ethernet") == Decoded(
        "Ethernet", "Ethernet 02:00:5e:10:00:02 → ff:ff:ff:ff:ff:ff type=0x88b5"
    )
    llc = ether(b"\x42\x42\x03" + b"\0" * 43, 38, dst=bytes.fromhex("0180c2000000"))
    assert decode(llc, link="ethernet") == Decoded(
        "Ethernet", "Ethernet 802.3 02:00:5e:10:00:02 → 01:80:c2:00:00:00 length=38"
    )


def test_vlan_tags_are_read_through() -> None:
    tag = struct.pack("!HH", (3 << 13) | 10, 0x0806)
    frame = ether(tag + arp(1, MAC2, A2, A1), 0x8100)
    assert decode(frame, link="ethernet") == Decoded(
        "ARP", "ARP who-has 192.0.2.1 tell 192.0.2.2 (VLAN 10)"
    )
    outer = struct.pack("!HH", 100, 0x8100)
    inner = struct.pack("!HH", 20, 0x0800)
    qinq = ether(outer + inner + UDP_V4, 0x88A8)
    assert summary(qinq, link="ethernet") == (
        "UDP 192.0.2.1:53 → 192.0.2.2:40000 len=20 (VLAN 100, 20)"
    )


def test_tun_packet_info_with_another_protocol() -> None:
    assert decode(tun_pi(0x0806, arp(2, MAC1, A1, A2)), link="tun_pi") == Decoded(
        "ARP", "ARP 192.0.2.1 is-at 02:00:5e:10:00:01"
    )
    assert decode(tun_pi(0x1234, b"\0" * 10), link="tun_pi") == Decoded(
        "TUN", "TUN packet type=0x1234 (10 bytes)"
    )


# -- garbage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "link", "expected"),
    [
        (b"", "ethernet", Decoded("Ethernet", "malformed Ethernet frame (0 bytes)")),
        (b"\x01" * 13, "ethernet", Decoded("Ethernet", "malformed Ethernet frame (13 bytes)")),
        (
            b"\xff" * 12 + b"\x81\x00\x00",
            "ethernet",
            Decoded("Ethernet", "malformed Ethernet frame (15 bytes)"),
        ),
        (b"", "ip", Decoded("IP", "malformed IP packet (0 bytes)")),
        (b"\x50" * 30, "ip", Decoded("IP", "malformed IP packet (30 bytes)")),
        (b"\x45" * 10, "ip", Decoded("IPv4", "malformed IPv4 packet (10 bytes)")),
        (b"\x44" + b"\0" * 30, "ip", Decoded("IPv4", "malformed IPv4 packet (31 bytes)")),
        (b"\x60" * 39, "ip", Decoded("IPv6", "malformed IPv6 packet (39 bytes)")),
        (b"\0\0\x08", "tun_pi", Decoded("TUN", "malformed TUN packet-info header (3 bytes)")),
        (b"\0\0\x08\0\x60", "tun_pi", Decoded("IPv4", "malformed IPv4 packet (1 bytes)")),
    ],
)
def test_garbage_is_called_malformed(data: bytes, link: str, expected: Decoded) -> None:
    assert decode(data, link=link) == expected


@pytest.mark.parametrize(("frame", "link"), FRAMES)
def test_every_truncation_of_a_real_frame_is_summarised(frame: bytes, link: str) -> None:
    for end in range(len(frame) + 1):
        decoded = decode(frame[:end], link=link)
        assert decoded.summary
        assert decoded.protocol


def test_tunnels_show_the_innermost_packet_and_deep_nesting_does_not_raise() -> None:
    # dpkt decodes IP-in-IP recursively; 3,000 levels exceed Python's stack.
    packet = b"ping"
    for _ in range(3000):
        packet = ipv4(4, packet)
    assert decode(packet, link="ip").protocol == "IPv4"
    assert decode(ipv4(4, ipv4(4, ICMP_REQUEST)), link="ip") == decode(ICMP_REQUEST, link="ip")
    six_in_four = ipv4(41, NEIGHBOR_SOLICITATION)
    assert decode(six_in_four, link="ip") == decode(NEIGHBOR_SOLICITATION, link="ip")


def test_a_packet_dpkt_fails_on_is_called_malformed() -> None:
    # dpkt 1.9.8 raises AttributeError on a fragment header followed by a
    # routing header (it reads frag_off from the last extension header).
    fragment = struct.pack("!BBHI", 43, 0, 0, 1)
    routing = struct.pack("!BBBBI", 59, 0, 0, 0, 0)
    packet = ipv6(44, fragment + routing)
    assert decode(packet, link="ip") == Decoded("IPv6", "malformed IPv6 packet (56 bytes)")


def test_an_unknown_link_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown link type 'ppp'"):
        decode(ARP_REQUEST, link="ppp")


@given(data=st.binary(max_size=200), link=st.sampled_from(LINKS))
def test_random_bytes_never_raise(data: bytes, link: str) -> None:
    decoded = decode(data, link=link)
    assert decoded.summary
    assert decoded.protocol
    assert "\n" not in decoded.summary


@settings(max_examples=300)
@given(
    prefix=st.sampled_from([frame[: 14 + 20] for frame, link in FRAMES if link == "ethernet"]),
    tail=st.binary(max_size=120),
)
def test_random_bytes_behind_real_headers_never_raise(prefix: bytes, tail: bytes) -> None:
    decoded = decode(prefix + tail, link="ethernet")
    assert decoded.summary


@settings(max_examples=300)
@given(
    version=st.sampled_from([0x45, 0x46, 0x4F, 0x60]),
    proto=st.sampled_from([1, 4, 6, 17, 41, 44, 47, 58, 0, 43, 60]),
    tail=st.binary(max_size=120),
)
def test_random_ip_payloads_never_raise(version: int, proto: int, tail: bytes) -> None:
    if version == 0x60:
        header = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", len(tail), proto, 64) + B1 + B2
    else:
        header = bytes([version, 0]) + struct.pack("!HHHBBH", 20 + len(tail), 0, 0, 64, proto, 0)
        header += A1 + A2
    decoded = decode(header + tail, link="ip")
    assert decoded.summary
