"""Callers that never read their replies cannot knock the helper off the bus.

With 300 devices a ListDevices reply is about 150 KB.  Clients that
call it in a loop and never read their socket make the bus daemon queue
their replies, and it reads the helper's socket more slowly than the helper
writes: the helper's socket fills.  A full socket must mean "wait until
writable", never "disconnect" (which would end every user's transient
devices and captures), and root's calls must still be answered meanwhile.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import call, devices
from tests.support.netns import Netns
from tests.support.nobody import SpawnNobodyPython
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEVICES = 300
CLIENTS = 3
CALLS = 600

# nobody's client: stops reading its socket, then calls ListDevices CALLS
# times, a few at a time, and stays connected (its replies pile up in the
# bus daemon) until stdin closes.
DEAF = """
import asyncio, os, sys
from dbus_fast import Message
from dbus_fast.aio import MessageBus

async def main():
    bus = await MessageBus(bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"]).connect()
    asyncio.get_running_loop().remove_reader(bus._fd)  # never read again
    for n in range(int(os.environ["CALLS"])):
        bus.send(Message(
            destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
            interface="io.github.tungui.Helper1", member="ListDevices",
        ))
        if n % 16 == 0:
            await asyncio.sleep(0.001)
    print("sent", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def test_replies_to_callers_that_never_read_cost_the_helper_nothing(
    helper: HelperProcess, clean_netns: Netns, spawn_nobody_python: SpawnNobodyPython
) -> None:
    batch = "".join(f"link add slow{n} type bridge\n" for n in range(DEVICES))
    subprocess.run(
        ["ip", "-n", clean_netns.name, "-batch", "-"], input=batch, text=True, check=True
    )
    wait_until(lambda: len(devices()) == DEVICES, timeout=30, what="the helper to list them")
    clients = [spawn_nobody_python(DEAF, env={"CALLS": str(CALLS)}) for _ in range(CLIENTS)]
    try:
        for client in clients:
            assert client.stdout is not None and client.stderr is not None
            line = client.stdout.readline()
            assert line == "sent\n", client.stderr.read()
        # The flood is on its way through the helper: it stays on the bus
        # and answers root all along.
        slowest = 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert call("GetPermissions")
            slowest = max(slowest, time.monotonic() - started)
            assert helper.running, helper.stderr_text()
            time.sleep(0.1)
        assert slowest < 1.0, f"root waited {slowest:.2f} s"
    finally:
        for client in clients:
            assert client.stdin is not None
            client.stdin.close()
            client.wait(timeout=10)
    assert helper.running, helper.stderr_text()
    assert "lost the connection" not in helper.stderr_text()
    assert len(devices()) == DEVICES
