"""Capture: the right bytes, to the authorized caller alone, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.bus import DBusDaemon
from tests.support.helper import HelperProcess
from tests.support.helperbus import busctl_argv, create
from tests.support.netns import Netns
from tests.support.nobody import RunAsNobody, SpawnNobodyPython
from tests.support.traffic import Reader, udp, udp_for
from tests.support.waiting import wait_until
from tungui.client import HelperClient
from tungui.packets.stream import Packet, ask_rate, read_packets

pytestmark = pytest.mark.integration


def send(netns: Netns, count: int, size: int = 96) -> None:
    subprocess.run(["ip", "netns", "exec", netns.name, *udp(count, size)], check=True)


async def _capture(netns: Netns, name: str, count: int, snaplen: int | None) -> list:  # type: ignore[type-arg]
    client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        stream = await client.start_capture(name, snaplen=snaplen)
        await asyncio.to_thread(send, netns, count)
        stream.settimeout(10)
        packets = await asyncio.to_thread(lambda: list(read_packets(stream, count)))
        stream.close()
        return packets
    finally:
        await client.close()


@pytest.fixture
def tun(helper: HelperProcess, clean_netns: Netns) -> str:
    name = create(mode="tun", name="cap%d", persist=True, addresses=["192.0.2.1/24"], up=True)
    return name


def test_captured_bytes_equal_what_the_program_read(
    helper: HelperProcess, clean_netns: Netns, tun: str
) -> None:
    reader = Reader(clean_netns, tun)
    try:
        packets = asyncio.run(_capture(clean_netns, tun, 5, None))
    finally:
        read = reader.close()
    assert len(packets) == 5
    assert [p.data for p in packets] == read[:5]
    assert all(p.outgoing for p in packets), "sent by the host through the TUN"
    assert all(p.original_length == len(p.data) == 124 for p in packets)
    assert all(p.data[0] >> 4 == 4 and p.data[9] == 17 for p in packets), "IPv4, UDP"
    stamps = [p.timestamp_ns for p in packets]
    assert stamps == sorted(stamps) and stamps[0] > 1_600_000_000 * 10**9


def test_snap_length_is_cut_in_the_kernel(
    helper: HelperProcess, clean_netns: Netns, tun: str
) -> None:
    reader = Reader(clean_netns, tun)
    try:
        packets = asyncio.run(_capture(clean_netns, tun, 3, 64))
    finally:
        reader.close()
    assert [len(p.data) for p in packets] == [64] * 3
    assert [p.original_length for p in packets] == [124] * 3


def test_capture_is_refused_to_an_unprivileged_user(
    helper: HelperProcess, tun: str, bus: DBusDaemon, run_as_nobody: RunAsNobody
) -> None:
    before = helper.fd_count()
    result = run_as_nobody(busctl_argv(bus.address, "StartCapture", "sa{sv}", tun, "0"))
    assert result.returncode != 0
    assert "not allowed to capture packets" in result.stderr, result.stderr
    assert helper.fd_count() == before


def test_closing_the_stream_ends_the_capture(helper: HelperProcess, tun: str) -> None:
    before = helper.fd_count()

    async def start_then_close() -> None:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            stream = await client.start_capture(tun)
            # The packet socket (and its ring), and the helper's end of the stream.
            wait_until(lambda: helper.fd_count() > before, timeout=5, what="capture fds")
            stream.close()
            wait_until(lambda: helper.fd_count() == before, timeout=5, what="fds released")
        finally:
            await client.close()

    asyncio.run(start_then_close())


CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from tungui.client import HelperClient

    async def main():
        client = await HelperClient.connect()
        stream = await client.start_capture(sys.argv[1])
        print("capturing", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_a_killed_client_ends_its_capture(helper: HelperProcess, tun: str) -> None:
    before = helper.fd_count()
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, tun],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "capturing"
        assert helper.fd_count() > before
        # The stream is the client's alone: its fd is a socket in the client's
        # table, and no path on the filesystem leads to it.
        fds = [fd.readlink() for fd in Path(f"/proc/{client.pid}/fd").iterdir()]
        assert any(str(target).startswith("socket:") for target in fds)
        client.send_signal(signal.SIGKILL)
        client.wait()
    finally:
        client.kill()
        client.wait()
    wait_until(lambda: helper.fd_count() == before, timeout=5, what="fds released")


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


def _udp(stream: socket.socket, count: int) -> list[Packet]:
    """The first ``count`` IPv4 UDP packets of a stream (IPv6 chatter skipped)."""
    found = []
    for packet in read_packets(stream):
        if packet.data[0] >> 4 == 4 and packet.data[9] == 17:
            found.append(packet)
            if len(found) == count:
                break
    return found


def _until_quiet(stream: socket.socket) -> list[Packet]:
    """Every packet until the stream has been quiet for a second."""
    stream.settimeout(1.0)
    packets: list[Packet] = []
    with contextlib.suppress(TimeoutError):
        packets.extend(read_packets(stream))
    return packets


TRANSIENT_TUN: dict[str, object] = {
    "mode": "tun",
    "name": "held%d",
    "addresses": ["192.0.2.1/24"],
    "up": True,
}


def test_the_helper_reads_a_device_it_holds(helper: HelperProcess, clean_netns: Netns) -> None:
    async def scenario() -> tuple[list[Packet], list[Packet], int]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            name = await client.create_device(TRANSIENT_TUN)
            read = await client.start_capture(name)  # the helper reads the device
            seen = await client.start_capture(name)  # a packet socket, beside it
            await asyncio.to_thread(send, clean_netns, 20)
            read.settimeout(10)
            seen.settimeout(10)
            from_queue = await asyncio.to_thread(_udp, read, 20)
            from_socket = await asyncio.to_thread(_udp, seen, 20)
            (stats,) = clean_netns.ip_json("-s", "link", "show", "dev", name)
            return from_queue, from_socket, stats["stats64"]["tx"]["packets"]
        finally:
            await client.close()

    from_queue, from_socket, transmitted = asyncio.run(scenario())
    assert len(from_queue) == 20
    assert [p.data for p in from_queue] == [p.data for p in from_socket]
    assert all(p.outgoing and p.original_length == len(p.data) == 124 for p in from_queue)
    stamps = [p.timestamp_ns for p in from_queue]
    assert stamps == sorted(stamps) and stamps[0] > 1_600_000_000 * 10**9
    # The kernel counts a TUN's sent packets when its program reads them:
    # here that program is the helper.
    assert transmitted >= 20


@pytest.mark.parametrize(
    "headers", [{"pi": True}, {"vnet_hdr": True}, {"pi": True, "vnet_hdr": True}], ids=str
)
def test_a_held_device_is_cut_to_the_snap_length_without_its_headers(
    helper: HelperProcess, clean_netns: Netns, headers: dict[str, bool]
) -> None:
    async def scenario() -> list[Packet]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            name = await client.create_device({**TRANSIENT_TUN, **headers})
            stream = await client.start_capture(name, snaplen=64)
            await asyncio.to_thread(send, clean_netns, 3)
            stream.settimeout(10)
            return await asyncio.to_thread(_udp, stream, 3)
        finally:
            await client.close()

    packets = asyncio.run(scenario())
    assert [len(p.data) for p in packets] == [64] * 3, "the device's headers are not data"
    assert [p.original_length for p in packets] == [124] * 3
    assert all(p.data[0] == 0x45 for p in packets), "an IPv4 header comes first"


def test_a_capture_does_not_keep_a_transient_device(
    helper: HelperProcess, clean_netns: Netns, spawn_nobody_python: SpawnNobodyPython
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None
        name = holder.stdout.readline().strip()
        assert clean_netns.link(name) is not None

        async def capture_then_lose_the_device() -> bytes:
            client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
            try:
                stream = await client.start_capture(name)
                holder.send_signal(signal.SIGKILL)
                stream.settimeout(5)
                return await asyncio.to_thread(lambda: stream.recv(1 << 19))
            finally:
                await client.close()

        assert asyncio.run(capture_then_lose_the_device()) == b"", "the stream ends"
        wait_until(lambda: clean_netns.link(name) is None, timeout=1, what=f"{name} to go")
    finally:
        holder.kill()
        holder.wait()


HOLDER = textwrap.dedent(
    """
    import asyncio
    from tungui.client import HelperClient

    async def main():
        client = await HelperClient.connect()
        name = await client.create_device({"mode": "tap", "name": "gone%d"})
        print(name, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


# -- sampling: at most max_rate packets a second, the rest counted


def _flood_while_capturing(
    netns: Netns, name: str, max_rate: int, seconds: float, rate: int
) -> tuple[int, list[Packet]]:
    async def scenario() -> tuple[int, list[Packet]]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            stream = await client.start_capture(name, snaplen=64, max_rate=max_rate)
            result = await asyncio.to_thread(
                subprocess.run,
                ["ip", "netns", "exec", netns.name, *udp_for(seconds, rate)],
                capture_output=True,
                text=True,
                check=True,
            )
            return int(result.stdout), await asyncio.to_thread(_until_quiet, stream)
        finally:
            await client.close()

    return asyncio.run(scenario())


def test_a_held_device_is_sampled_above_the_rate_asked_for(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    async def make() -> tuple[HelperClient, str]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        return client, await client.create_device(TRANSIENT_TUN)

    async def close(client: HelperClient) -> None:
        await client.close()

    loop = asyncio.new_event_loop()
    client, name = loop.run_until_complete(make())
    try:
        sent, packets = _flood_while_capturing(clean_netns, name, 200, 2.0, 4000)
    finally:
        loop.run_until_complete(close(client))
        loop.close()
    udp = [p for p in packets if p.data[0] >> 4 == 4]
    assert packets and packets[-1].sampled > 0
    assert len(udp) < sent / 2, f"{len(udp)} of {sent} shown"
    # Read from the device, every packet is either shown or counted.
    assert len(packets) + packets[-1].sampled >= sent


def test_a_packet_socket_samples_in_the_kernel(
    helper: HelperProcess, clean_netns: Netns, tun: str
) -> None:
    reader = Reader(clean_netns, tun)
    try:
        sent, packets = _flood_while_capturing(clean_netns, tun, 200, 2.0, 4000)
    finally:
        reader.close()
    assert packets and packets[-1].sampled > 0
    assert len(packets) < sent / 2, f"{len(packets)} of {sent} shown"
    # Sampled at random, the count left out is an estimate.
    assert 0.5 * sent <= len(packets) + packets[-1].sampled <= 1.5 * sent


def test_a_held_capture_leaves_nothing_behind(helper: HelperProcess, clean_netns: Netns) -> None:
    async def scenario() -> tuple[str, bytes]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            name = await client.create_device({**TRANSIENT_TUN, "multi_queue": True, "queues": 2})
            before = helper.fd_count()
            stream = await client.start_capture(name)
            # The stream's end, a duplicate of each queue, the thread's wake
            # pipe; the helper closes its copy of the caller's end only once
            # the reply is written, which may be just after it arrived.
            wait_until(
                lambda: helper.fd_count() == before + 1 + 2 + 2, timeout=5, what="capture fds"
            )
            stream.close()
            wait_until(lambda: helper.fd_count() == before, timeout=5, what="fds released")
            assert clean_netns.link(name) is not None, "the device is still held"
            # Again, and this time the device goes while it is captured.
            stream = await client.start_capture(name)
            await client.delete_device(name)
            stream.settimeout(5)
            ended = await asyncio.to_thread(lambda: stream.recv(1 << 19))
            wait_until(lambda: helper.fd_count() == before - 2, timeout=5, what="fds released")
            return name, ended
        finally:
            await client.close()

    name, ended = asyncio.run(scenario())
    assert ended == b"", "the stream ends with the device"
    assert clean_netns.link(name) is None


def _sampled_then_all(
    netns: Netns, name: str | None
) -> tuple[int, list[Packet], int, list[Packet]]:
    """Flood at max_rate 200, ask on the stream for every packet, flood again.

    ``name`` None: on a transient TUN the helper holds (and reads).
    """

    def flood() -> int:
        argv = ["ip", "netns", "exec", netns.name, *udp_for(1.5, 3000)]
        return int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)

    async def scenario() -> tuple[int, list[Packet], int, list[Packet]]:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            device = name or await client.create_device(TRANSIENT_TUN)
            stream = await client.start_capture(device, snaplen=64, max_rate=200)
            sent = await asyncio.to_thread(flood)
            sampled_phase = await asyncio.to_thread(_until_quiet, stream)
            ask_rate(stream, 0)
            sent_again = await asyncio.to_thread(flood)
            every_phase = await asyncio.to_thread(_until_quiet, stream)
            return sent, sampled_phase, sent_again, every_phase
        finally:
            await client.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["held", "packet socket"])
def test_the_reader_asks_for_every_packet_on_its_stream(
    helper: HelperProcess, clean_netns: Netns, kind: str, request: pytest.FixtureRequest
) -> None:
    tun = reader = None
    if kind == "packet socket":  # a device the helper does not hold, drained by a program
        tun = request.getfixturevalue("tun")
        reader = Reader(clean_netns, tun)
    try:
        sent, first, sent_again, second = _sampled_then_all(clean_netns, tun)
    finally:
        if reader is not None:
            reader.close()
    udp = [p for p in first if p.data[0] >> 4 == 4]
    assert len(udp) < sent / 2 and first[-1].sampled > 0, "sampled at first"
    udp_again = [p for p in second if p.data[0] >> 4 == 4]
    # The request goes on the stream, with no answer: the first moments of
    # the second flood may still be sampled.
    assert len(udp_again) >= 0.9 * sent_again, f"{len(udp_again)} of {sent_again}"
