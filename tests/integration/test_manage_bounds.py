"""What a user holding only io.github.tungui.manage may do, on the real stack.

``nobody`` (and ``daemon``, as a second user) get ``manage`` from a polkit
rules file and nothing else; no authentication agent runs, so whatever
needs ``manage-foreign`` is refused with the reason, and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bus import DBusDaemon
from tests.support.helper import HelperProcess
from tests.support.helperbus import create, create_bridge
from tests.support.netns import Netns
from tests.support.nobody import NobodyPython, SpawnNobodyPython, User
from tests.support.polkit import Grant as GrantFixture
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MANAGE = "io.github.tungui.manage"
REFUSED = "io.github.tungui.Error.NotAuthorized"

#: Makes calls as the user it runs as, one JSON line per call on stdin
#: ([member, signature, body] with {"type": value} variants as
#: [signature, value]); prints one JSON line per reply: ["ok", body] or
#: [error name, text].  One connection for the process's life.
CLIENT = """
import asyncio, json, sys
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

def revive(value):
    if isinstance(value, dict):
        return {k: Variant(v[0], v[1]) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("bytes:"):
        return bytes.fromhex(value[6:])
    return value

async def main():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    print(json.dumps(["connected", bus.unique_name]), flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        member, signature, body = json.loads(line)
        reply = await bus.call(Message(
            destination="io.github.tungui.Helper1", path="/io/github/tungui/Helper1",
            interface="io.github.tungui.Helper1", member=member,
            signature=signature, body=[revive(v) for v in body]))
        if reply.message_type == MessageType.METHOD_RETURN:
            print(json.dumps(["ok", [str(v) for v in reply.body]]), flush=True)
        else:
            print(json.dumps([reply.error_name, reply.body[0] if reply.body else ""]), flush=True)

asyncio.run(main())
"""


class Client:
    """A long-lived connection of an unprivileged user's."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        status, self.name = self._line()
        assert status == "connected"

    def _line(self) -> list[Any]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(f"the client ended: {self.proc.stderr.read()}")
        answer: list[Any] = json.loads(line)
        return answer

    def call(self, member: str, signature: str, *body: Any) -> tuple[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([member, signature, list(body)]) + "\n")
        self.proc.stdin.flush()
        status, value = self._line()
        return status, value

    def create(self, **spec: Any) -> tuple[str, Any]:
        return self.call("CreateDevice", "a{sv}", _variants(spec))

    def configure(self, name: str, **changes: Any) -> tuple[str, Any]:
        return self.call("ConfigureDevice", "sa{sv}", name, _variants(changes))


_SIGNATURES = {
    "name": "s",
    "mode": "s",
    "persist": "b",
    "owner": "i",
    "group": "i",
    "mtu": "u",
    "addresses": "as",
    "up": "b",
    "master": "s",
}


def _variants(values: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: [_SIGNATURES[key], value] for key, value in values.items()}


@pytest.fixture
def client(spawn_nobody_python: SpawnNobodyPython) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(user: str = "nobody") -> Client:
        proc = spawn_nobody_python(CLIENT, user=user, preimport=["dbus_fast", "dbus_fast.aio"])
        started.append(proc)
        return Client(proc)

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _refused(answer: tuple[str, Any], reason: str) -> None:
    status, text = answer
    assert status == REFUSED, answer
    assert reason in text, text


def test_manage_alone_gives_only_names_owners_and_routes_within_the_bounds(
    helper: HelperProcess, clean_netns: Netns, grant: GrantFixture, client: Any
) -> None:
    nobody = User.named("nobody")
    me = client()
    with grant(MANAGE):
        _refused(me.create(mode="tun", name="wg0", persist=True), "not among the names")
        _refused(me.create(mode="tap", name="docker0", persist=True), "not among the names")
        _refused(me.create(mode="tap", persist=True, owner=0), "belong to user 0")
        _refused(me.create(mode="tap", persist=True, group=0), "belong to group 0")
        # An IPv6 /0 would install a default route beating the router's.
        _refused(me.create(mode="tap", persist=True, addresses=["2001:db8::1/0"]), "route wider")
        _refused(me.create(mode="tap", persist=True, addresses=["192.0.2.1/1"]), "route wider")
        assert clean_netns.link_names() == ["lo"]
        # Within them: tungui's templates, the caller's own user, narrow routes.
        status, (name,) = me.create(
            mode="tap", persist=True, owner=nobody.uid, addresses=["192.0.2.1/24"]
        )
        assert status == "ok"
        assert clean_netns.link(name)["linkinfo"]["info_data"]["user"] == "nobody"  # type: ignore[index]
        _refused(me.configure(name, owner=0), "belong to user 0")
        _refused(me.configure(name, addresses=["192.0.2.1/24", "198.51.100.1/8"]), "route wider")
        assert me.configure(name, addresses=["192.0.2.1/24", "198.51.100.1/24"])[0] == "ok"


def test_a_policy_file_sets_the_bounds(
    helper: HelperProcess, clean_netns: Netns, grant: GrantFixture, client: Any, tmp_path: Any
) -> None:
    policy = tmp_path / "helper.toml"
    policy.write_text('[manage]\nnames = ["vpn*"]\nipv4_prefix = 8\n')
    policy.chmod(0o644)
    helper.stop()
    helper.extra_args = ["--policy", str(policy)]
    helper.start()
    try:
        me = client()
        with grant(MANAGE):
            _refused(me.create(mode="tun", name="tun%d", persist=True), "not among the names")
            status, _ = me.create(
                mode="tun", name="vpn%d", persist=True, addresses=["198.51.100.1/8"]
            )
            assert status == "ok"
        assert clean_netns.link("vpn0") is not None
    finally:
        helper.stop()
        helper.extra_args = []
        helper.start()


def test_foreign_follows_bridges(
    helper: HelperProcess, clean_netns: Netns, grant: GrantFixture, client: Any
) -> None:
    # tungui's bridge and TAP, and a port tungui did not make (a veth, as a
    # NIC would be): through the bridge, the TAP reaches that LAN.
    bridge = create_bridge(name="br%d", up=True)
    tap = create(mode="tap", name="tap%d", persist=True, master=bridge, up=True)
    clean_netns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
    clean_netns.ip("link", "set", "lan0", "master", bridge, "up")
    me = client()
    with grant(MANAGE):
        _refused(me.configure(tap, mtu=1280), "bridged with devices tungui did not create")
        _refused(
            me.call("InjectPacket", "say", tap, "bytes:" + (b"\xff" * 6 + bytes(54)).hex()),
            "bridged with devices tungui did not create (lan0)",
        )
        _refused(me.configure(bridge, up=False), "bridged with devices tungui did not create")
        _refused(me.call("DeleteDevice", "s", bridge), "bridged with devices")
        _refused(me.create(mode="tap", persist=True, master=bridge), "carries devices tungui")
        other = me.create(mode="tap", name="tap%d", persist=True)
        assert other[0] == "ok"
        _refused(me.configure(other[1][0], master=bridge), "carries devices tungui")
        assert clean_netns.link(tap)["mtu"] == 1500  # type: ignore[index]
        assert clean_netns.link(bridge) is not None
        # Once the foreign port is gone, tungui's own bridge is manage's again.
        clean_netns.ip("link", "del", "lan0")
        wait_until(lambda: me.configure(tap, mtu=1280)[0] == "ok", what="the TAP changed")
        assert me.call("DeleteDevice", "s", bridge)[0] == "ok"


def test_another_users_transient_device_is_foreign(
    helper: HelperProcess,
    clean_netns: Netns,
    grant: GrantFixture,
    client: Any,
    nobody_python: NobodyPython,
    bus: DBusDaemon,
) -> None:
    with grant(MANAGE, user="daemon"), grant(MANAGE):
        theirs = client("daemon")
        status, (name,) = theirs.create(mode="tap", name="tap%d")
        assert status == "ok"
        me = client()
        # Neither untie it (it would outlive its user's program) nor take it.
        _refused(me.configure(name, persist=True), "held for another user")
        _refused(me.configure(name, mtu=1280), "held for another user")
        _refused(me.call("DeleteDevice", "s", name), "held for another user")
        assert clean_netns.link(name)["mtu"] == 1500  # type: ignore[index]
        # Its own user may.
        assert theirs.configure(name, persist=True)[0] == "ok"
        wait_until(
            lambda: clean_netns.link(name)["linkinfo"]["info_data"]["persist"],  # type: ignore[index]
            what="the device persistent",
        )
        # Persistent and with no owner, it is nobody's in particular: tungui's own.
        assert me.configure(name, mtu=1280)[0] == "ok"
