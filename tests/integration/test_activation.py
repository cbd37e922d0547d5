"""D-Bus activation starts the helper; it exits when idle and holding nothing.

A bus of its own with a service directory, holding the shipped activation
file with only its Exec= line pointed at this checkout (and the test's
namespace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.support.bus import DBusDaemon
from tests.support.buscall import name_has_owner
from tests.support.helperbus import busctl_argv
from tests.support.names import REPO_ROOT
from tests.support.netns import Netns, remove_stale_netns
from tests.support.polkit import PolkitDaemon
from tests.support.processes import make_shared_tmpdir
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SERVICE = REPO_ROOT / "resources/dbus/io.github.tungui.Helper1.service"
IDLE = 1.0


@pytest.fixture
def activating_bus() -> Iterator[tuple[DBusDaemon, Netns]]:
    remove_stale_netns()
    directory = make_shared_tmpdir("tungui-activation-")
    services = directory / "services"
    services.mkdir()
    netns = Netns(f"tungui-act-{os.getpid()}")
    netns.create()
    exec_line = (
        f"Exec=/usr/sbin/ip netns exec {netns.name} {sys.executable} -m tungui_helper "
        f"--idle-timeout {IDLE}"
    )
    text = "\n".join(
        exec_line if line.startswith("Exec=") else line for line in SERVICE.read_text().splitlines()
    )
    (services / SERVICE.name).write_text(text + "\n")
    daemon = DBusDaemon(directory, servicedir=services)
    daemon.start()
    polkit = PolkitDaemon(daemon.address, directory)
    try:
        polkit.start()
        yield daemon, netns
    finally:
        polkit.stop()
        daemon.stop()
        netns.delete()
        shutil.rmtree(directory, ignore_errors=True)


def test_activation_and_idle_exit(activating_bus: tuple[DBusDaemon, Netns]) -> None:
    bus, _netns = activating_bus
    assert not name_has_owner(bus.address, "io.github.tungui.Helper1")
    result = subprocess.run(
        busctl_argv(bus.address, "ListDevices"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr + bus.log_text()
    assert result.stdout.startswith("aa{sv}")
    assert name_has_owner(bus.address, "io.github.tungui.Helper1")
    wait_until(
        lambda: not name_has_owner(bus.address, "io.github.tungui.Helper1"),
        timeout=IDLE + 10,
        what="the idle helper to exit",
    )


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from tungui.client import HelperClient

    async def main():
        client = await HelperClient.connect(sys.argv[1])
        if sys.argv[2] == "device":
            print(await client.create_device({"mode": "tun"}), flush=True)
        else:
            await client.subscribe()
            print("subscribed", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("holds", ["device", "subscription"])
def test_the_helper_stays_while_a_client_holds_something(
    activating_bus: tuple[DBusDaemon, Netns], holds: str
) -> None:
    bus, netns = activating_bus
    client = subprocess.Popen(
        [sys.executable, "-c", HOLDER, bus.address, holds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        line = client.stdout.readline().strip()
        assert line, client.stderr.read() if client.stderr else ""
        # Several idle periods pass; the helper must hold on.
        with pytest.raises(TimeoutError):
            wait_until(
                lambda: not name_has_owner(bus.address, "io.github.tungui.Helper1"),
                timeout=IDLE * 3,
                what="the helper to exit",
            )
        if holds == "device":
            assert netns.link(line) is not None
    finally:
        client.kill()
        client.wait()
    if holds == "device":
        wait_until(lambda: netns.link(line) is None, timeout=5, what=f"{line} to go")
    wait_until(
        lambda: not name_has_owner(bus.address, "io.github.tungui.Helper1"),
        timeout=IDLE + 10,
        what="the idle helper to exit",
    )
