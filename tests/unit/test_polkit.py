"""When the helper reuses a "yes" from polkit, and when it asks again.

polkit here is a fake bus that answers CheckAuthorization from a script and
counts the questions; the real polkitd is in tests/integration.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dbus_fast import Message

from tungui_helper.contract import POLKIT_INTERFACE, POLKIT_PATH, Action
from tungui_helper.polkit import TEMPORARY_AUTHORIZATION, Authority, Decision

CALLER = ":1.42"


class FakePolkit:
    """A bus on which polkit answers every CheckAuthorization with ``answer``."""

    def __init__(self) -> None:
        #: (is_authorized, is_challenge, details) for the next questions.
        self.answer: tuple[bool, bool, dict[str, str]] = (True, False, {})
        self.questions: list[tuple[str, str, int]] = []
        self.handlers: list[Any] = []
        #: When set, questions wait for it (a check still on its way).
        self.hold: asyncio.Event | None = None

    async def call(self, msg: Message) -> Message:
        msg.serial = len(self.questions) + 1
        subject, action, _details, flags, _cancel = msg.body
        self.questions.append((subject[1]["name"].value, action, flags))
        if self.hold is not None:
            await self.hold.wait()
        return Message.new_method_return(msg, "(bba{ss})", [list(self.answer)])

    def add_message_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def signal_changed(self) -> None:
        changed = Message.new_signal(POLKIT_PATH, POLKIT_INTERFACE, "Changed")
        for handler in self.handlers:
            handler(changed)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def polkit() -> FakePolkit:
    return FakePolkit()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def authority(polkit: FakePolkit, clock: Clock) -> Authority:
    return Authority(polkit, lifetime=1.0, clock=clock)  # type: ignore[arg-type]


def ask(auth: Authority, *, interactive: bool = False, action: Action = Action.MANAGE) -> Decision:
    return asyncio.run(auth.check(CALLER, action, interactive=interactive))


def test_a_plain_yes_is_reused_for_the_same_caller_and_action_only(
    polkit: FakePolkit, clock: Clock
) -> None:
    auth = authority(polkit, clock)
    assert ask(auth) is Decision.YES
    assert ask(auth) is Decision.YES
    assert len(polkit.questions) == 1
    assert ask(auth, action=Action.CAPTURE) is Decision.YES
    assert asyncio.run(auth.check(":1.43", Action.MANAGE, interactive=False)) is Decision.YES
    assert len(polkit.questions) == 3, "another action or caller is asked about"


def test_the_reuse_ends_after_its_lifetime(polkit: FakePolkit, clock: Clock) -> None:
    auth = authority(polkit, clock)
    ask(auth)
    clock.now += 0.99
    ask(auth)
    assert len(polkit.questions) == 1
    clock.now += 0.02
    polkit.answer = (False, False, {})
    assert ask(auth) is Decision.NO
    assert len(polkit.questions) == 2


def test_no_and_auth_are_never_reused(polkit: FakePolkit, clock: Clock) -> None:
    auth = authority(polkit, clock)
    polkit.answer = (False, True, {})
    assert ask(auth) is Decision.AUTH
    polkit.answer = (False, False, {})
    assert ask(auth) is Decision.NO
    polkit.answer = (True, False, {})
    assert ask(auth) is Decision.YES
    assert len(polkit.questions) == 3


def test_a_one_shot_authentication_is_not_reused(polkit: FakePolkit, clock: Clock) -> None:
    # auth_admin: polkit said yes after a password, and keeps nothing.
    auth = authority(polkit, clock)
    ask(auth, interactive=True, action=Action.MANAGE_FOREIGN)
    ask(auth, interactive=True, action=Action.MANAGE_FOREIGN)
    assert len(polkit.questions) == 2
    assert [q[2] for q in polkit.questions] == [1, 1], "both asked with user interaction"


def test_a_temporary_authorization_is_reused(polkit: FakePolkit, clock: Clock) -> None:
    # auth_admin_keep: polkit keeps the authentication, and says so.
    auth = authority(polkit, clock)
    polkit.answer = (True, False, {TEMPORARY_AUTHORIZATION: "tmpauthz7"})
    ask(auth, interactive=True)
    ask(auth, interactive=True)
    assert len(polkit.questions) == 1


def test_polkit_changed_ends_every_reuse(polkit: FakePolkit, clock: Clock) -> None:
    auth = authority(polkit, clock)
    auth.follow_changes()
    ask(auth)
    polkit.signal_changed()
    polkit.answer = (False, False, {})
    assert ask(auth) is Decision.NO


def test_an_answer_given_before_a_change_is_not_kept(polkit: FakePolkit, clock: Clock) -> None:
    auth = authority(polkit, clock)
    auth.follow_changes()

    async def scenario() -> None:
        polkit.hold = asyncio.Event()
        check = asyncio.create_task(auth.check(CALLER, Action.MANAGE, interactive=False))
        while not polkit.questions:
            await asyncio.sleep(0)
        polkit.signal_changed()  # while polkit's answer is on its way
        polkit.hold.set()
        assert await check is Decision.YES
        polkit.hold = None
        await auth.check(CALLER, Action.MANAGE, interactive=False)

    asyncio.run(scenario())
    assert len(polkit.questions) == 2


def test_a_caller_leaving_ends_its_reuse_and_polkit_leaving_ends_all(
    polkit: FakePolkit, clock: Clock
) -> None:
    auth = authority(polkit, clock)
    ask(auth)
    auth.forget(":1.99")
    ask(auth)
    assert len(polkit.questions) == 1
    auth.forget(CALLER)
    ask(auth)
    assert len(polkit.questions) == 2
    auth.forget("org.freedesktop.PolicyKit1")
    ask(auth)
    assert len(polkit.questions) == 3


def test_polkit_unreachable_is_a_no(polkit: FakePolkit, clock: Clock) -> None:
    async def refuse(msg: Message) -> Message:
        msg.serial = 1
        return Message.new_error(msg, "org.freedesktop.DBus.Error.ServiceUnknown", "gone")

    polkit.call = refuse  # type: ignore[method-assign]
    auth = authority(polkit, clock)
    assert ask(auth) is Decision.NO


def test_a_lifetime_of_zero_asks_every_time(polkit: FakePolkit, clock: Clock) -> None:
    auth = Authority(polkit, lifetime=0, clock=clock)  # type: ignore[arg-type]
    ask(auth)
    ask(auth)
    assert len(polkit.questions) == 2


def test_answers_of_callers_long_gone_are_swept(polkit: FakePolkit, clock: Clock) -> None:
    auth = authority(polkit, clock)
    for n in range(300):
        asyncio.run(auth.check(f":1.{n}", Action.MANAGE, interactive=False))
        clock.now += 0.01
    # At most a second's worth of answers (100 here) outlives each sweep.
    assert len(auth._granted) < 200
