"""DevicesChanged follows the kernel's netlink events, batched."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import helperbus
from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tungui.client import HelperClient
from tungui_contract.device import Device

pytestmark = pytest.mark.integration

Signals = list[tuple[list[Device], list[str]]]


async def _watch_while(argv_batches: list[list[str]], until: Any, timeout: float = 5.0) -> Signals:
    """Run commands while collecting signals, until ``until(signals)`` holds."""
    client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    received: Signals = []
    changed = asyncio.Event()

    def on_change(updated: list[Device], removed: list[str]) -> None:
        received.append((updated, removed))
        changed.set()

    try:
        await client.watch_devices(on_change)
        for argv in argv_batches:
            await asyncio.to_thread(subprocess.run, argv, check=True, capture_output=True)

        async def wait() -> None:
            while not until(received):
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(wait(), timeout)
    finally:
        await client.close()
    return received


def _updated_names(signals: Signals) -> set[str]:
    return {d.name for updated, _ in signals for d in updated}


def _removed_names(signals: Signals) -> set[str]:
    return {n for _, removed in signals for n in removed}


def test_a_device_made_in_a_terminal_is_announced(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    ip = ["ip", "-n", clean_netns.name]
    signals = asyncio.run(
        _watch_while(
            [[*ip, "tuntap", "add", "mode", "tap", "name", "term0"]],
            lambda s: "term0" in _updated_names(s),
        )
    )
    (device,) = [d for updated, _ in signals for d in updated if d.name == "term0"][-1:]
    assert device.kind == "tap" and device.managed is False

    signals = asyncio.run(
        _watch_while(
            [[*ip, "tuntap", "del", "mode", "tap", "name", "term0"]],
            lambda s: "term0" in _removed_names(s),
        )
    )
    assert "term0" in _removed_names(signals)


def test_a_burst_of_changes_is_batched(helper: HelperProcess, clean_netns: Netns) -> None:
    names = [f"burst{i}" for i in range(120)]
    batch = "".join(f"link add {name} type bridge\n" for name in names)
    path = f"/tmp/tungui-burst-{os.getpid()}.batch"
    with open(path, "w") as handle:
        handle.write(batch)
    try:
        signals = asyncio.run(
            _watch_while(
                [["ip", "-n", clean_netns.name, "-batch", path]],
                lambda s: set(names) <= _updated_names(s),
            )
        )
    finally:
        Path(path).unlink()
    # 120 netlink events; a handful of signals (one per 50 ms at most).
    assert len(signals) < 20, f"{len(signals)} signals for 120 new bridges"


def test_list_devices_shows_a_change_made_outside_at_once(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    # The helper keeps its last ListDevices answer; the kernel's event for a
    # change is queued before ``ip`` returns, and must end the kept answer.
    ip = ["ip", "-n", clean_netns.name]
    subprocess.run([*ip, "tuntap", "add", "mode", "tap", "name", "kept0"], check=True)
    assert helperbus.devices()["kept0"]["mtu"] == 1500
    assert helperbus.devices()["kept0"]["mtu"] == 1500  # answered from what was kept
    subprocess.run([*ip, "link", "set", "kept0", "mtu", "1400", "up"], check=True)
    subprocess.run([*ip, "addr", "add", "192.0.2.7/24", "dev", "kept0"], check=True)
    device = helperbus.devices()["kept0"]
    assert (device["mtu"], device["up"], device["addresses"]) == (1400, True, ["192.0.2.7/24"])
    subprocess.run([*ip, "link", "del", "kept0"], check=True)
    assert "kept0" not in helperbus.devices()
