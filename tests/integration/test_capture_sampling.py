"""Capture above the rate a reader asks for: sampled in the helper or the kernel."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from tests.support.capturing import TRANSIENT_TUN, until_quiet
from tests.support.helper import HelperProcess
from tests.support.helperbus import create
from tests.support.netns import Netns
from tests.support.traffic import Reader, udp_for
from tests.support.waiting import wait_until
from tungui.client import HelperClient
from tungui.packets.stream import Packet, ask_rate

pytestmark = pytest.mark.integration


@pytest.fixture
def tun(helper: HelperProcess, clean_netns: Netns) -> str:
    name = create(mode="tun", name="cap%d", persist=True, addresses=["192.0.2.1/24"], up=True)
    return name


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
            return int(result.stdout), await asyncio.to_thread(until_quiet, stream)
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
            sampled_phase = await asyncio.to_thread(until_quiet, stream)
            ask_rate(stream, 0)
            sent_again = await asyncio.to_thread(flood)
            every_phase = await asyncio.to_thread(until_quiet, stream)
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
