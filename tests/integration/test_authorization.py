"""polkit decides, per call, for a real unprivileged user.

The unprivileged caller is ``nobody`` calling with busctl (an outside
client) or with tunguictl; grants are real polkit rules files.
"""

from __future__ import annotations

import pytest

from tests.support.bus import DBusDaemon
from tests.support.helper import HelperProcess
from tests.support.helperbus import busctl_argv, create, devices
from tests.support.netns import Netns
from tests.support.nobody import NobodyPython, RunAsNobody, SpawnNobodyPython
from tests.support.polkit import Grant as GrantFixture

pytestmark = pytest.mark.integration

MANAGE = "io.github.tungui.manage"
FOREIGN = "io.github.tungui.manage-foreign"
REFUSED = "You are not allowed to"


def test_anyone_may_list(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    run_as_nobody: RunAsNobody,
    nobody_python: NobodyPython,
) -> None:
    name = create(mode="tap", persist=True)
    result = run_as_nobody(busctl_argv(bus.address, "ListDevices", "--json=short"))
    assert result.returncode == 0, result.stderr
    assert f'"data":"{name}"' in result.stdout
    # The listing in a file, as tunguictl and the window ask for it.
    result = nobody_python(
        "import asyncio\n"
        "from tungui.client import HelperClient\n"
        "async def main() -> None:\n"
        "    client = await HelperClient.connect()\n"
        "    print([d.name for d in await client.list_devices()])\n"
        "    await client.close()\n"
        "asyncio.run(main())\n",
        preimport=["asyncio", "json", "tungui.client", "importlib.readers"],
    )
    assert result.returncode == 0, result.stderr
    assert f"'{name}'" in result.stdout, result.stdout


def test_nobody_is_refused_every_change(
    helper: HelperProcess, clean_netns: Netns, bus: DBusDaemon, run_as_nobody: RunAsNobody
) -> None:
    name = create(mode="tap", persist=True)
    before = clean_netns.ip_json("link", "show")
    attempts = [
        ("CreateDevice", "a{sv}", "2", "mode", "s", "tap", "persist", "b", "true"),
        ("CreateBridge", "a{sv}", "0"),
        ("ConfigureDevice", "sa{sv}", name, "1", "mtu", "u", "1400"),
        ("DeleteDevice", "s", name),
    ]
    for member, *args in attempts:
        result = run_as_nobody(busctl_argv(bus.address, member, *args))
        assert result.returncode != 0, f"{member} was allowed"
        assert REFUSED in result.stderr, result.stderr
    assert clean_netns.ip_json("link", "show") == before


def test_a_polkit_rule_lets_nobody_manage(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    run_as_nobody: RunAsNobody,
    grant: GrantFixture,
) -> None:
    with grant(MANAGE):
        result = run_as_nobody(
            busctl_argv(
                bus.address,
                "CreateDevice",
                "a{sv}",
                "3",
                "mode",
                "s",
                "tap",
                "name",
                "s",
                "lab-granted0",
                "persist",
                "b",
                "true",
            )
        )
        assert result.returncode == 0, result.stderr
        assert clean_netns.link("lab-granted0") is not None
        result = run_as_nobody(
            busctl_argv(
                bus.address, "ConfigureDevice", "sa{sv}", "lab-granted0", "1", "mtu", "u", "1400"
            )
        )
        assert result.returncode == 0, result.stderr
        assert clean_netns.link("lab-granted0")["mtu"] == 1400  # type: ignore[index]
        result = run_as_nobody(busctl_argv(bus.address, "DeleteDevice", "s", "lab-granted0"))
        assert result.returncode == 0, result.stderr
        assert clean_netns.link("lab-granted0") is None
    # And once the rule is gone, so is the permission.
    result = run_as_nobody(busctl_argv(bus.address, "CreateBridge", "a{sv}", "0"))
    assert REFUSED in result.stderr


def test_devices_tungui_did_not_create_need_the_foreign_action(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    run_as_nobody: RunAsNobody,
    grant: GrantFixture,
) -> None:
    clean_netns.ip("tuntap", "add", "mode", "tun", "name", "other0")
    listed = devices()["other0"]
    assert listed["managed"] is False
    with grant(MANAGE):
        result = run_as_nobody(busctl_argv(bus.address, "DeleteDevice", "s", "other0"))
        assert result.returncode != 0
        assert "did not create" in result.stderr, result.stderr
        assert clean_netns.link("other0") is not None
        with grant(FOREIGN):
            result = run_as_nobody(busctl_argv(bus.address, "DeleteDevice", "s", "other0"))
            assert result.returncode == 0, result.stderr
    assert clean_netns.link("other0") is None


def test_a_foreign_bridge_needs_the_foreign_action_to_join(
    helper: HelperProcess,
    clean_netns: Netns,
    bus: DBusDaemon,
    run_as_nobody: RunAsNobody,
    grant: GrantFixture,
) -> None:
    clean_netns.ip("link", "add", "otherbr0", "type", "bridge")
    with grant(MANAGE):
        result = run_as_nobody(
            busctl_argv(
                bus.address,
                "CreateDevice",
                "a{sv}",
                "3",
                "mode",
                "s",
                "tap",
                "master",
                "s",
                "otherbr0",
                "persist",
                "b",
                "true",
            )
        )
        assert "did not create" in result.stderr, result.stderr
    assert [n for n in clean_netns.link_names() if n.startswith("tap")] == []


def test_get_permissions_reports_polkit_answers(
    helper: HelperProcess, bus: DBusDaemon, run_as_nobody: RunAsNobody, grant: GrantFixture
) -> None:
    def permissions() -> str:
        result = run_as_nobody(busctl_argv(bus.address, "GetPermissions"))
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert '"io.github.tungui.manage" "auth"' in permissions()
    assert '"io.github.tungui.manage-foreign" "auth"' in permissions()
    with grant(MANAGE):
        assert '"io.github.tungui.manage" "yes"' in permissions()
    with grant(MANAGE, result="NO"):
        assert '"io.github.tungui.manage" "no"' in permissions()


# One connection of nobody's, creating the device named on each stdin line
# and printing "ok" or the error's D-Bus name.
CREATE_PER_LINE = """
import asyncio, os, sys
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

async def main():
    bus = await MessageBus(
        bus_address=os.environ["DBUS_SYSTEM_BUS_ADDRESS"], bus_type=BusType.SYSTEM
    ).connect()
    print("connected", flush=True)
    loop = asyncio.get_running_loop()
    while name := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        spec = {
            "mode": Variant("s", "tap"), "name": Variant("s", name),
            "persist": Variant("b", True),
        }
        reply = await bus.call(Message(
            destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
            interface="io.github.tungui.Helper1", member="CreateDevice",
            signature="a{sv}", body=[spec],
        ))
        ok = reply.message_type == MessageType.METHOD_RETURN
        print("ok" if ok else reply.error_name, flush=True)

asyncio.run(main())
"""


def test_polkit_reporting_a_change_ends_the_reuse_of_its_yes(
    helper: HelperProcess,
    clean_netns: Netns,
    grant: GrantFixture,
    spawn_nobody_python: SpawnNobodyPython,
) -> None:
    # A yes reused for ten minutes: only polkit's Changed signal can end it.
    helper.stop()
    helper.extra_args = ["--reuse-authorization", "600"]
    helper.start()
    try:
        proc = spawn_nobody_python(CREATE_PER_LINE)
        assert proc.stdin is not None and proc.stdout is not None

        def create_as_nobody(name: str) -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(name + "\n")
            proc.stdin.flush()
            return answer()

        def answer() -> str:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline().strip()
            if not line:
                pytest.fail(f"nobody's client ended: {proc.stderr.read()}")
            return line

        assert answer() == "connected"
        with grant(MANAGE):
            # The same request each time (a yes is reused for the same details).
            assert create_as_nobody("lab%d") == "ok"
            assert create_as_nobody("lab%d") == "ok"
        # Leaving the block removed the rule and waited until polkitd applied
        # that, which it announces with Changed before it answers anew.
        assert create_as_nobody("lab%d") == "io.github.tungui.Error.NotAuthorized"
        assert clean_netns.link("lab1") is not None
        assert clean_netns.link("lab2") is None
    finally:
        helper.stop()
        helper.extra_args = []
        helper.start()
