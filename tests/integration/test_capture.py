"""Capture: the right bytes, to the authorized caller alone, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.bus import DBusDaemon
from tests.support.capturing import TRANSIENT_TUN
from tests.support.helper import HelperProcess
from tests.support.helperbus import busctl_argv, create
from tests.support.netns import Netns
from tests.support.nobody import RunAsNobody, SpawnNobodyPython
from tests.support.traffic import Reader, udp
from tests.support.waiting import wait_until
from tungui.client import HelperClient
from tungui.packets.stream import Packet, read_packets

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


def _udp(stream: socket.socket, count: int) -> list[Packet]:
    """The first ``count`` IPv4 UDP packets of a stream (IPv6 chatter skipped)."""
    found = []
    for packet in read_packets(stream):
        if packet.data[0] >> 4 == 4 and packet.data[9] == 17:
            found.append(packet)
            if len(found) == count:
                break
    return found


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
