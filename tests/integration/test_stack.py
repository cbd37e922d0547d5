"""Smoke tests of the test stack itself: private bus, polkitd, namespace, users.

If these fail, every other integration test would fail for reasons that
have nothing to do with tungui.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bus import DBusDaemon
from tests.support.buscall import dbus_daemon_call, name_has_owner, name_owner_pid
from tests.support.helper import HelperProcess
from tests.support.names import (
    ACTION_CAPTURE,
    ACTION_MANAGE,
    ACTIONS,
    DBUS_NAME_FLAG_DO_NOT_QUEUE,
    DBUS_POLICY_FILE,
    HELPER_BUS_NAME,
    HELPER_SOURCE_DIR,
)
from tests.support.netns import Netns
from tests.support.nobody import NobodyPython, RunAsNobody, SpawnNobodyPython
from tests.support.polkit import Grant, PolkitDaemon, bus_name_subject, process_subject
from tests.support.processes import run

pytestmark = pytest.mark.integration

NOBODY_UID = 65534

# A client that connects as nobody, prints its unique name and stays
# connected until its stdin closes.
HOLD_CONNECTION = """
import asyncio, os, sys
from dbus_fast import BusType
from dbus_fast.aio import MessageBus

async def main():
    bus = await MessageBus(
        bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], bus_type=BusType.SYSTEM
    ).connect()
    print(bus.unique_name, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    bus.disconnect()

asyncio.run(main())
"""


@pytest.fixture
def nobody_connection(spawn_nobody_python: SpawnNobodyPython) -> Iterator[str]:
    """The unique bus name of a live connection made by nobody."""
    proc = spawn_nobody_python(HOLD_CONNECTION)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        assert proc.stderr is not None
        pytest.fail(f"nobody's client did not connect: {proc.stderr.read()}")
    yield line


# -- the bus


def test_bus_listens_where_everyone_can_reach_it(bus: DBusDaemon) -> None:
    assert os.environ["DBUS_SYSTEM_BUS_ADDRESS"] == bus.address
    assert stat.S_ISSOCK(bus.socket_path.stat().st_mode)
    assert bus.socket_path.parent.stat().st_mode & 0o777 == 0o755
    assert str(DBUS_POLICY_FILE) in bus.config_path.read_text()
    assert dbus_daemon_call(bus.address, "GetId")[0]


def test_nobody_connects_as_uid_65534(nobody_python: NobodyPython) -> None:
    proc = nobody_python(
        """
        import asyncio, json, os
        from dbus_fast import BusType, Message
        from dbus_fast.aio import MessageBus

        async def main():
            bus = await MessageBus(
                bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], bus_type=BusType.SYSTEM
            ).connect()
            reply = await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="GetConnectionUnixUser",
                signature="s", body=[bus.unique_name]))
            print(json.dumps({"uid": os.getuid(), "gid": os.getgid(),
                              "groups": os.getgroups(), "bus_uid": reply.body[0]}))

        asyncio.run(main())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "uid": NOBODY_UID,
        "gid": NOBODY_UID,
        "groups": [],
        "bus_uid": NOBODY_UID,
    }


def test_nobody_cannot_own_the_helper_name(nobody_python: NobodyPython) -> None:
    proc = nobody_python(
        f"""
        import asyncio, json, os
        from dbus_fast import BusType, Message
        from dbus_fast.aio import MessageBus

        async def main():
            bus = await MessageBus(
                bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], bus_type=BusType.SYSTEM
            ).connect()
            reply = await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="RequestName",
                signature="su", body=[{HELPER_BUS_NAME!r}, 4]))
            print(json.dumps({{"error": reply.error_name, "body": reply.body}}))

        asyncio.run(main())
        """
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["error"] == "org.freedesktop.DBus.Error.AccessDenied", result


def test_root_may_own_the_helper_name(bus: DBusDaemon) -> None:
    # 1: now the owner; 3: the helper already owns it (a session that
    # started it earlier). Either way the policy let root ask.
    (reply,) = dbus_daemon_call(
        bus.address, "RequestName", "su", HELPER_BUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE
    )
    assert reply in (1, 3)


def test_run_as_nobody_uses_the_private_bus(bus: DBusDaemon, run_as_nobody: RunAsNobody) -> None:
    proc = run_as_nobody(["id", "-u"], check=True)
    assert proc.stdout.strip() == str(NOBODY_UID)
    proc = run_as_nobody(
        [
            "busctl",
            "--system",
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetId",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[1].strip('"') == dbus_daemon_call(bus.address, "GetId")[0]


# -- polkit


def test_polkitd_knows_our_actions(polkit: PolkitDaemon) -> None:
    assert set(ACTIONS) <= polkit.known_actions()
    assert set(polkit.action_ids_in_policy()) == set(ACTIONS)


@pytest.mark.parametrize("action", ACTIONS)
def test_root_is_authorized(polkit: PolkitDaemon, action: str) -> None:
    result = polkit.check(action, process_subject(os.getpid()))
    assert result.authorized


@pytest.mark.parametrize("action", ACTIONS)
def test_nobody_is_not_authorized(
    polkit: PolkitDaemon, nobody_connection: str, action: str
) -> None:
    # No authentication agent: auth_admin* is a challenge, never a yes.
    by_process = polkit.check_user(action)
    assert not by_process.authorized
    assert by_process.challenge
    by_name = polkit.check(action, bus_name_subject(nobody_connection))
    assert not by_name.authorized
    assert by_name.challenge


def test_grant_allows_nobody_for_the_with_block_only(
    polkit: PolkitDaemon, grant: Grant, nobody_connection: str
) -> None:
    subject = bus_name_subject(nobody_connection)
    assert not polkit.check(ACTION_MANAGE, subject).authorized
    with grant(ACTION_MANAGE) as rules_file:
        assert rules_file.exists()
        assert polkit.check(ACTION_MANAGE, subject).authorized
        assert polkit.check_user(ACTION_MANAGE).authorized
        # Only that action.
        assert not polkit.check_user(ACTION_CAPTURE).authorized
    assert not rules_file.exists()
    assert not polkit.check(ACTION_MANAGE, subject).authorized
    assert not polkit.check_user(ACTION_MANAGE).authorized


def test_grant_can_say_no_without_challenge(polkit: PolkitDaemon, grant: Grant) -> None:
    with grant(ACTION_CAPTURE, result="NO"):
        result = polkit.check_user(ACTION_CAPTURE)
        assert (result.authorized, result.challenge) == (False, False)
    assert polkit.check_user(ACTION_CAPTURE).challenge


# -- the namespace


def test_clean_netns_removes_every_link_but_lo(
    clean_netns: Netns, ip: Callable[..., str], ip_json: Callable[..., list[dict[str, Any]]]
) -> None:
    host_links = run(["ip", "-j", "link", "show"]).stdout
    ip("tuntap", "add", "mode", "tap", "name", "tgtest0")
    ip("link", "add", "tgveth0", "type", "veth", "peer", "name", "tgveth1")
    assert {"tgtest0", "tgveth0", "tgveth1"} <= set(clean_netns.link_names())
    assert ip_json("link", "show", "dev", "tgtest0")[0]["linkinfo"]["info_kind"] == "tun"
    deleted = clean_netns.clean()
    assert set(deleted) >= {"tgtest0", "tgveth0"}
    assert clean_netns.link_names() == ["lo"]
    # The machine's own interfaces were not touched.
    assert run(["ip", "-j", "link", "show"]).stdout == host_links


# -- the helper (needs helper/__main__.py)

needs_helper = pytest.mark.skipif(
    not (HELPER_SOURCE_DIR / "__main__.py").exists(),
    reason="the helper (helper/__main__.py) is not written yet",
)


@needs_helper
def test_helper_owns_its_name_inside_the_namespace(bus: DBusDaemon, helper: HelperProcess) -> None:
    assert name_owner_pid(bus.address, HELPER_BUS_NAME) == helper.pid
    helper_ns = Path(f"/proc/{helper.pid}/ns/net").stat().st_ino
    assert helper_ns == Path(f"/run/netns/{helper.netns.name}").stat().st_ino
    assert helper_ns != Path("/proc/self/ns/net").stat().st_ino


@needs_helper
def test_helper_can_be_restarted(bus: DBusDaemon, helper: HelperProcess) -> None:
    old_pid = helper.pid
    status = helper.stop()
    assert status in (0, -signal.SIGTERM), helper.stderr_text()
    assert not name_has_owner(bus.address, HELPER_BUS_NAME)
    helper.start()
    assert helper.pid != old_pid
    assert name_owner_pid(bus.address, HELPER_BUS_NAME) == helper.pid
