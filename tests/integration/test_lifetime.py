"""Transient devices live exactly as long as the client that asked for them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import create, devices
from tests.support.netns import Netns
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from tungui.client import HelperClient

    async def main():
        client = await HelperClient.connect()
        transient = await client.create_device({"mode": "tap", "name": "gone%d"})
        persistent = await client.create_device({"mode": "tun", "name": "kept%d", "persist": True})
        print(transient, persistent, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@contextlib.contextmanager
def client_holding_devices() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A client (a process of its own) that made a transient and a persistent device."""
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert client.stdout is not None
        transient, persistent = client.stdout.readline().split()
        yield client, transient, persistent
    finally:
        client.kill()
        client.wait()


def test_sigkill_of_a_client_takes_its_transient_devices(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    with client_holding_devices() as (client, transient, persistent):
        assert clean_netns.link(transient) is not None
        listed = devices()
        assert listed[transient]["transient"] is True and listed[transient]["held"] is True
        assert listed[persistent]["transient"] is False
        client.send_signal(signal.SIGKILL)
        client.wait()
    wait_until(
        lambda: clean_netns.link(transient) is None,
        timeout=1.0,
        what=f"{transient} to go within a second of SIGKILL",
    )
    assert clean_netns.link(persistent) is not None
    assert transient not in devices() and persistent in devices()


def test_the_helper_stopping_takes_the_transient_devices_it_holds(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    try:
        with client_holding_devices() as (_client, transient, persistent):
            helper.stop()
            assert clean_netns.link(transient) is None
            assert clean_netns.link(persistent) is not None
    finally:
        helper.start()


def test_a_persistent_device_outlives_its_client(helper: HelperProcess, clean_netns: Netns) -> None:
    name = create(mode="tap", persist=True)  # that connection is closed already
    assert clean_netns.link(name) is not None
    assert devices()[name]["held"] is False
