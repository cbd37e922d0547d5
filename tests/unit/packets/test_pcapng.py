"""pcapng files (tungui.packets.pcapng): their blocks, and what tshark reads in them."""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.support.tshark import tshark_fields
from tungui.packets.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureWriter

MAC1 = bytes.fromhex("02005e100001")
MAC2 = bytes.fromhex("02005e100002")
A1 = bytes([192, 0, 2, 1])
A2 = bytes([192, 0, 2, 2])

# 2023-11-14T22:13:20.123456789Z: the nanoseconds must survive.
T0 = 1_700_000_000_123_456_789


# -- frames, built by hand (the writer needs no dissector) ---------------------------


def checksum(data: bytes) -> int:
    data += bytes(len(data) % 2)
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa


def ipv4(proto: int, src: bytes, dst: bytes, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0)
    header += src + dst
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def icmp_echo(kind: int, ident: int, seq: int, payload: bytes) -> bytes:
    message = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


ARP_REQUEST = ethernet(b"\xff" * 6, MAC2, 0x0806, arp(1, MAC2, A2, bytes(6), A1))
ARP_REPLY = ethernet(MAC2, MAC1, 0x0806, arp(2, MAC1, A1, MAC2, A2))
PING = ipv4(1, A2, A1, icmp_echo(8, 0x1234, 1, b"tungui-ping-0123456789abcdef"))
PONG = ipv4(1, A1, A2, icmp_echo(0, 0x1234, 1, b"tungui-ping-0123456789abcdef"))
SHORT_UDP = ipv4(17, A2, A1, udp(40000, 40001, bytes(30)))
BIG_UDP = ipv4(17, A1, A2, udp(5000, 5001, bytes(range(256)) * 4))  # 1,052 bytes


def tun_pi(packet: bytes) -> bytes:
    return struct.pack("!HH", 0, 0x0800) + packet


def write_sample(file: BinaryIO) -> None:
    """A TAP, a TUN and a TUN with packet info; the last added after packets."""
    with CaptureWriter(file) as writer:
        tap = writer.add_interface("tap0", "ethernet", 262144)
        tun = writer.add_interface("tun0", "ip", 96)
        writer.write(tap, T0, ARP_REQUEST, len(ARP_REQUEST))
        writer.write(tap, T0 + 1_000, ARP_REPLY, len(ARP_REPLY), inbound=True)
        writer.write(tap, T0 + 2_000, ethernet(MAC1, MAC2, 0x0800, PING), 14 + len(PING))
        writer.write(tun, T0 + 3_000, PONG, len(PONG), inbound=False)
        writer.write(tun, T0 + 4_000, BIG_UDP, len(BIG_UDP))  # cut to 96 bytes
        writer.write(tun, T0 + 5_000, SHORT_UDP[:40], len(SHORT_UDP))  # cut by the capture
        tun_with_pi = writer.add_interface("tun1", "tun_pi", 0)
        writer.write(tun_with_pi, T0 + 6_000, tun_pi(PING), 4 + len(PING))


# -- the blocks, read back without Wireshark ------------------------------------------


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    """Each block's type and body; checks both length fields and the alignment."""
    found = []
    offset = 0
    while offset < len(data):
        kind, length = struct.unpack_from("<II", data, offset)
        assert length % 4 == 0
        assert struct.unpack_from("<I", data, offset + length - 4) == (length,)
        found.append((kind, data[offset + 8 : offset + length - 4]))
        offset += length
    assert offset == len(data)
    return found


def options(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 0
    while True:
        code, length = struct.unpack_from("<HH", data, offset)
        if code == 0:
            assert offset + 4 == len(data)
            return found
        found[code] = data[offset + 4 : offset + 4 + length]
        offset += 4 + length + (-length % 4)


def test_the_blocks_say_what_was_written() -> None:
    buffer = io.BytesIO()
    write_sample(buffer)
    assert not buffer.closed  # the file is the caller's
    read = blocks(buffer.getvalue())
    assert [kind for kind, _ in read] == [0x0A0D0D0A, 1, 1, 6, 6, 6, 6, 6, 6, 1, 6]

    shb = read[0][1]
    assert struct.unpack_from("<IHHq", shb) == (0x1A2B3C4D, 1, 0, -1)
    assert options(shb[16:])[4].startswith(b"tungui ")

    interfaces = [body for kind, body in read if kind == 1]
    assert [struct.unpack_from("<HHI", body) for body in interfaces] == [
        (LINKTYPE_ETHERNET, 0, 262144),
        (LINKTYPE_RAW, 0, 96),
        (LINKTYPE_RAW, 0, 0),
    ]
    assert [options(body[8:]) for body in interfaces] == [
        {2: b"tap0", 9: b"\x09"},
        {2: b"tun0", 9: b"\x09"},
        {2: b"tun1", 9: b"\x09"},
    ]

    packets = []
    for kind, body in read:
        if kind == 6:
            interface, high, low, captured, original = struct.unpack_from("<IIIII", body)
            data_end = 20 + captured + (-captured % 4)  # padded to 32 bits
            found = options(body[data_end:]) if len(body) > data_end else {}
            packets.append(
                (interface, (high << 32) | low, original, body[20 : 20 + captured], found)
            )
    inbound, outbound = {2: b"\x01\0\0\0"}, {2: b"\x02\0\0\0"}
    assert packets == [
        (0, T0, 42, ARP_REQUEST, {}),
        (0, T0 + 1_000, 42, ARP_REPLY, inbound),
        (0, T0 + 2_000, 14 + len(PING), ethernet(MAC1, MAC2, 0x0800, PING), {}),
        (1, T0 + 3_000, len(PONG), PONG, outbound),
        (1, T0 + 4_000, len(BIG_UDP), BIG_UDP[:96], {}),
        (1, T0 + 5_000, len(SHORT_UDP), SHORT_UDP[:40], {}),
        (2, T0 + 6_000, len(PING), PING, {}),  # the packet-info header is gone
    ]


def test_misuse_is_refused() -> None:
    buffer = io.BytesIO()
    writer = CaptureWriter(buffer)
    with pytest.raises(ValueError, match="unknown link type 'ppp'"):
        writer.add_interface("ppp0", "ppp", 0)
    with pytest.raises(ValueError, match="snap length"):
        writer.add_interface("tap0", "ethernet", -1)
    tap = writer.add_interface("tap0", "ethernet", 1500)
    with pytest.raises(ValueError, match="no interface 1"):
        writer.write(1, T0, ARP_REQUEST, 42)
    with pytest.raises(ValueError, match="shorter than the data"):
        writer.write(tap, T0, ARP_REQUEST, 41)
    with pytest.raises(ValueError, match="timestamp"):
        writer.write(tap, -1, ARP_REQUEST, 42)
    with pytest.raises(ValueError, match="timestamp"):
        writer.write(tap, 1 << 64, ARP_REQUEST, 42)
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(tap, T0, ARP_REQUEST, 42)
    # Nothing refused reached the file: the header and one interface.
    assert [kind for kind, _ in blocks(buffer.getvalue())] == [0x0A0D0D0A, 1]


# -- what Wireshark's own reader makes of it ------------------------------------------


@pytest.mark.skipif(
    shutil.which("tshark") is None,
    reason="tshark is not installed (Debian: apt-get install tshark)",
)
def test_tshark_reads_every_packet(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcapng"
    with path.open("wb") as file:
        write_sample(file)
    fields = [
        "frame.number",
        "frame.len",
        "frame.cap_len",
        "_ws.col.Protocol",
        "frame.interface_name",
        "frame.time_epoch",
        "frame.packet_flags_direction",
    ]
    rows = tshark_fields(path, *fields)
    framed, ping, pong, short = (
        str(n) for n in (14 + len(PING), len(PING), len(PONG), len(SHORT_UDP))
    )
    assert rows == [
        ["1", "42", "42", "ARP", "tap0", "1700000000.123456789", ""],
        ["2", "42", "42", "ARP", "tap0", "1700000000.123457789", "0x00000001"],
        ["3", framed, framed, "ICMP", "tap0", "1700000000.123458789", ""],
        ["4", pong, pong, "ICMP", "tun0", "1700000000.123459789", "0x00000002"],
        ["5", "1052", "96", "UDP", "tun0", "1700000000.123460789", ""],
        ["6", short, "40", "UDP", "tun0", "1700000000.123461789", ""],
        ["7", ping, ping, "ICMP", "tun1", "1700000000.123462789", ""],
    ]
