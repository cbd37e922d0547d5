"""Callers are looked up on the bus daemon once per unique name, and forgotten when they leave.

The daemon here is a fake that answers from a table and counts the questions;
the real dbus-daemon is in tests/integration.
"""

from __future__ import annotations

import asyncio

import pytest
from dbus_fast import Message, Variant

from tungui_contract.errors import Failed
from tungui_helper.callers import Caller, Callers

UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
NO_OWNER = "org.freedesktop.DBus.Error.NameHasNoOwner"


class FakeDaemon:
    """A bus whose daemon knows the connections in ``credentials``."""

    def __init__(self) -> None:
        self.credentials: dict[str, dict[str, Variant]] = {
            ":1.7": {
                "UnixUserID": Variant("u", 1000),
                "UnixGroupIDs": Variant("au", [1000, 27]),
                "ProcessID": Variant("u", 4242),
            }
        }
        #: What GetConnectionUnixUser answers.
        self.uids = {":1.7": 1000}
        self.questions: list[tuple[str, str]] = []
        #: Members the daemon does not know (an old bus).
        self.unknown: set[str] = set()
        #: When set, answers wait for it.
        self.hold: asyncio.Event | None = None

    async def call(self, msg: Message) -> Message:
        msg.serial = len(self.questions) + 1
        (name,) = msg.body
        self.questions.append((msg.member or "", name))
        if self.hold is not None:
            await self.hold.wait()
        if msg.member in self.unknown:
            return Message.new_error(msg, UNKNOWN_METHOD, "no such method")
        if name not in self.uids:
            return Message.new_error(msg, NO_OWNER, f"{name} has no owner")
        if msg.member == "GetConnectionCredentials":
            return Message.new_method_return(msg, "a{sv}", [self.credentials[name]])
        assert msg.member == "GetConnectionUnixUser"
        return Message.new_method_return(msg, "u", [self.uids[name]])


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


def resolve(callers: Callers, name: str) -> Caller:
    return asyncio.run(callers.resolve(name))


def callers_on(daemon: FakeDaemon) -> Callers:
    return Callers(daemon)  # type: ignore[arg-type]


def test_the_daemon_is_asked_once_per_name(daemon: FakeDaemon) -> None:
    callers = callers_on(daemon)
    caller = resolve(callers, ":1.7")
    assert caller == Caller(name=":1.7", uid=1000, gids=frozenset({1000, 27}), pid=4242)
    assert resolve(callers, ":1.7") is caller
    assert callers.get(":1.7") is caller
    assert daemon.questions == [("GetConnectionCredentials", ":1.7")]


def test_calls_arriving_together_share_one_question(daemon: FakeDaemon) -> None:
    callers = callers_on(daemon)

    async def together() -> list[Caller]:
        daemon.hold = asyncio.Event()
        lookups = [asyncio.ensure_future(callers.resolve(":1.7")) for _ in range(5)]
        await asyncio.sleep(0)
        daemon.hold.set()
        return await asyncio.gather(*lookups)

    assert {c.uid for c in asyncio.run(together())} == {1000}
    assert len(daemon.questions) == 1


def test_a_name_that_left_is_forgotten(daemon: FakeDaemon) -> None:
    callers = callers_on(daemon)
    resolve(callers, ":1.7")
    callers.forget(":1.7")
    assert callers.get(":1.7") is None and len(callers) == 0
    resolve(callers, ":1.7")
    assert len(daemon.questions) == 2


def test_a_name_that_leaves_while_the_daemon_answers_is_not_kept(daemon: FakeDaemon) -> None:
    # The daemon's answer, then NameOwnerChanged, are read before the look-up
    # goes on: what it learnt must not outlive the name.
    callers = callers_on(daemon)

    async def leave_meanwhile() -> Caller:
        daemon.hold = asyncio.Event()
        lookup = asyncio.ensure_future(callers.resolve(":1.7"))
        while not daemon.questions:
            await asyncio.sleep(0)
        daemon.hold.set()
        callers.forget(":1.7")
        return await lookup

    assert asyncio.run(leave_meanwhile()).uid == 1000, "the call itself still learns who it was"
    assert callers.get(":1.7") is None and len(callers) == 0


def test_a_name_without_owner_is_a_named_error_and_not_kept(daemon: FakeDaemon) -> None:
    callers = callers_on(daemon)
    with pytest.raises(Failed, match="left the bus"):
        resolve(callers, ":1.8")
    assert len(callers) == 0


@pytest.mark.parametrize("reason", ["old bus", "no uid in the credentials"])
def test_without_credentials_the_uid_is_asked_alone(daemon: FakeDaemon, reason: str) -> None:
    if reason == "old bus":
        daemon.unknown.add("GetConnectionCredentials")
    else:
        daemon.credentials[":1.7"] = {"ProcessID": Variant("u", 4242)}
    caller = resolve(callers_on(daemon), ":1.7")
    assert caller == Caller(name=":1.7", uid=1000, gids=frozenset(), pid=None)
    assert [q[0] for q in daemon.questions] == [
        "GetConnectionCredentials",
        "GetConnectionUnixUser",
    ]
