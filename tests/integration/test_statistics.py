"""Counters: what the client receives equals what the kernel counts; one message per tick."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.traffic import Reader, udp
from tungui.client import HelperClient

pytestmark = pytest.mark.integration

Ticks = list[tuple[int, dict[str, tuple[int, ...]]]]


def kernel_counters(netns: Netns, name: str) -> tuple[int, ...]:
    (link,) = netns.ip_json("-s", "link", "show", "dev", name)
    rx, tx = link["stats64"]["rx"], link["stats64"]["tx"]
    return (rx["packets"], rx["bytes"], rx["dropped"], rx["errors"],
            tx["packets"], tx["bytes"], tx["dropped"], tx["errors"])  # fmt: skip


async def _send_and_watch(
    netns: Netns, interval_ms: int, send: list[str]
) -> tuple[Ticks, str, tuple[int, ...], int]:
    """Send through a TUN that a reader holds, watching Statistics.

    Returns:
        The ticks, the device's name, the kernel's own counters at the end,
        and how many packets the reader took.
    """
    client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    ticks: Ticks = []
    name = await client.create_device(
        {"mode": "tun", "name": "cnt%d", "persist": True, "addresses": ["192.0.2.1/24"], "up": True}
    )
    reader = Reader(netns, name)
    try:
        await client.watch_statistics(interval_ms, lambda t, c: ticks.append((t, c)))
        result = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", netns.name, *send],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        # Wait for a tick that agrees with the kernel (traffic has stopped).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await asyncio.sleep(interval_ms / 1000)
            if ticks and ticks[-1][1].get(name) == kernel_counters(netns, name):
                break
        kernel = kernel_counters(netns, name)
    finally:
        read = len(reader.close())
        await client.close()
    return ticks, name, kernel, read


def test_counters_equal_the_kernels(helper: HelperProcess, clean_netns: Netns) -> None:
    ticks, name, kernel, read = asyncio.run(_send_and_watch(clean_netns, 100, udp(5)))
    assert ticks, "no Statistics signal arrived"
    last = ticks[-1][1][name]
    assert last == kernel
    # Five datagrams of 96 bytes: 124 bytes each with IPv4 and UDP headers.
    assert last[4] == read >= 5
    assert last[5] >= 5 * 124
    stamps = [t for t, _ in ticks]
    assert stamps == sorted(stamps)


def test_the_message_rate_does_not_follow_the_packet_rate(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    start = time.monotonic()
    ticks, name, _kernel, _read = asyncio.run(_send_and_watch(clean_netns, 200, udp(20000)))
    elapsed = time.monotonic() - start
    counters = ticks[-1][1][name]
    assert counters[4] + counters[6] >= 20000  # read or dropped: all went through
    # One message per 200 ms tick, however many thousand packets flowed.
    assert len(ticks) <= elapsed / 0.2 + 2, (len(ticks), elapsed)
