"""InjectPacket on the real stack: what the host receives, and what is refused."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import create
from tests.support.netns import Netns
from tungui.client import HelperClient
from tungui.packets.stream import read_packets

pytestmark = pytest.mark.integration


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(source: str, destination: str, ident: int, seq: int) -> bytes:
    """An IPv4 ICMP echo request, checksums and all."""
    import ipaddress

    payload = b"tungui-inject-test"
    icmp = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + payload
    icmp = icmp[:2] + _checksum(icmp).to_bytes(2, "big") + icmp[4:]
    header = (
        bytes([0x45, 0])
        + (20 + len(icmp)).to_bytes(2, "big")
        + b"\x12\x34\x40\x00\x40\x01\x00\x00"
        + ipaddress.IPv4Address(source).packed
        + ipaddress.IPv4Address(destination).packed
    )
    header = header[:10] + _checksum(header).to_bytes(2, "big") + header[12:]
    return header + icmp


def test_an_injected_echo_request_gets_its_reply(helper: HelperProcess, clean_netns: Netns) -> None:
    async def scenario() -> list:  # type: ignore[type-arg]
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            # Transient: the helper holds its queue, so the reply has somewhere to go.
            name = await client.create_device(
                {"mode": "tun", "name": "inj%d", "addresses": ["192.0.2.1/24"], "up": True}
            )
            stream = await client.start_capture(name)
            stream.settimeout(10)
            await client.inject_packet(name, echo_request("192.0.2.2", "192.0.2.1", 0x7475, 1))
            # The device is up: IPv6 router solicitations may come too.
            ipv4 = (p for p in read_packets(stream) if p.data[0] >> 4 == 4)
            packets = await asyncio.to_thread(lambda: [next(ipv4), next(ipv4)])
            stream.close()
            return packets
        finally:
            await client.close()

    request, reply = asyncio.run(scenario())
    assert not request.outgoing and request.data[20] == 8, "the echo request, received"
    assert reply.outgoing and reply.data[20] == 0, "the echo reply, sent by the host"
    assert reply.data[12:16] == bytes([192, 0, 2, 1]) and reply.data[16:20] == bytes([192, 0, 2, 2])
    assert reply.data[24:28] == request.data[24:28], "same identifier and sequence"


def test_a_packet_longer_than_the_mtu_is_refused(helper: HelperProcess, clean_netns: Netns) -> None:
    from tests.support.errors import DBusCallError
    from tests.support.helperbus import call

    name = create(mode="tun", name="big%d", persist=True, mtu=576)
    with pytest.raises(DBusCallError) as refused:
        call("InjectPacket", "say", name, b"\x45" + b"\0" * 600)
    assert refused.value.name == "io.github.tungui.Error.InvalidArgument"
    assert "MTU 576" in refused.value.message


def test_a_virtio_net_header_is_not_counted_against_the_mtu(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    from tests.support.errors import DBusCallError
    from tests.support.helperbus import call

    name = create(mode="tun", name="vnet%d", persist=True, mtu=576, vnet_hdr=True, up=True)
    header = bytes(10)  # struct virtio_net_hdr: no checksum offload, no GSO
    call("InjectPacket", "say", name, header + b"\x45" + b"\0" * 575)
    with pytest.raises(DBusCallError) as refused:
        call("InjectPacket", "say", name, header + b"\x45" + b"\0" * 576)
    assert "must be 30 to 586 bytes" in refused.value.message


# -- devices the helper holds: it reads them itself
