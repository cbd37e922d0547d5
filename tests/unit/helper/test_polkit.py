"""When the helper reuses a "yes" from polkit, and when it asks again.

polkit here is a fake bus that answers CheckAuthorization from a script and
counts the questions; the real polkitd is in tests/integration.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dbus_fast import Message

from tungui_contract.bus import POLKIT_INTERFACE, POLKIT_PATH, Action
from tungui_helper.callers import Caller
from tungui_helper.polkit import TEMPORARY_AUTHORIZATION, Authority, Decision


def caller(name: str, uid: int = 1000) -> Caller:
    return Caller(name=name, uid=uid, gids=frozenset({uid}), pid=None)


CALLER = caller(":1.42")
#: polkitd's unique name on the fake bus.
POLKITD = ":1.2"


class FakePolkit:
    """A bus on which polkit answers every CheckAuthorization with ``answer``."""

    def __init__(self) -> None:
        #: (is_authorized, is_challenge, details) for the next questions.
        self.answer: tuple[bool, bool, dict[str, str]] = (True, False, {})
        self.questions: list[tuple[str, str, int]] = []
        #: The details and cancellation id of each question.
        self.details: list[dict[str, str]] = []
        self.cancellation_ids: list[str] = []
        #: Checks the helper cancelled (CancelCheckAuthorization).
        self.cancelled: list[str] = []
        self.handlers: list[Any] = []
        #: When set, questions wait for it (a check still on its way).
        self.hold: asyncio.Event | None = None

    async def call(self, msg: Message) -> Message:
        msg.serial = len(self.questions) + 1
        subject, action, details, flags, cancellation_id = msg.body
        self.questions.append((subject[1]["name"].value, action, flags))
        self.details.append(details)
        self.cancellation_ids.append(cancellation_id)
        if self.hold is not None:
            await self.hold.wait()
        reply = Message.new_method_return(msg, "(bba{ss})", [list(self.answer)])
        reply.sender = POLKITD
        return reply

    def send(self, msg: Message) -> None:
        assert msg.member == "CancelCheckAuthorization"
        self.cancelled.append(msg.body[0])

    def add_message_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def signal_changed(self, sender: str = ":1.2") -> None:
        changed = Message.new_signal(POLKIT_PATH, POLKIT_INTERFACE, "Changed")
        changed.sender = sender
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
    assert (
        asyncio.run(auth.check(caller(":1.43"), Action.MANAGE, interactive=False)) is Decision.YES
    )
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


def test_a_changed_signal_from_anyone_but_polkitd_changes_nothing(
    polkit: FakePolkit, clock: Clock
) -> None:
    auth = authority(polkit, clock)
    auth.follow_changes()
    ask(auth)
    for _ in range(100):
        polkit.signal_changed(sender=":1.666")  # a local user's fake
    ask(auth)
    assert len(polkit.questions) == 1
    polkit.signal_changed(sender=POLKITD)
    ask(auth)
    assert len(polkit.questions) == 2


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
    auth.forget(CALLER.name)
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
        asyncio.run(auth.check(caller(f":1.{n}"), Action.MANAGE, interactive=False))
        clock.now += 0.01
    # At most a second's worth of answers (100 here) outlives each sweep.
    assert len(auth._granted) < 200


def test_a_yes_is_kept_with_its_details(polkit: FakePolkit, clock: Clock) -> None:
    # Administrators' rules may decide by the details: a yes for one device
    # says nothing about another.
    auth = authority(polkit, clock)

    def check(device: str) -> Decision:
        return asyncio.run(
            auth.check(CALLER, Action.MANAGE, interactive=False, details={"device": device})
        )

    assert check("tap0") is Decision.YES
    assert check("tap0") is Decision.YES
    assert len(polkit.questions) == 1
    assert check("tap1") is Decision.YES
    assert len(polkit.questions) == 2
    assert polkit.details == [{"device": "tap0"}, {"device": "tap1"}]


def _slow(polkit: FakePolkit, **timeouts: float) -> Authority:
    polkit.hold = asyncio.Event()  # polkitd answers nothing
    return Authority(polkit, lifetime=1.0, **timeouts)  # type: ignore[arg-type]


def test_a_check_polkit_does_not_answer_times_out_and_is_cancelled(polkit: FakePolkit) -> None:
    from tungui_helper.polkit import AuthorizationTimedOut

    auth = _slow(polkit, check_timeout=0.05, interactive_timeout=60)
    with pytest.raises(AuthorizationTimedOut, match=r"no answer within 0\.05 seconds"):
        asyncio.run(auth.check(CALLER, Action.MANAGE, interactive=False))
    assert polkit.cancelled == polkit.cancellation_ids != [""]
    assert auth.checks_in_flight == 0


def test_a_password_prompt_has_its_own_timeout(polkit: FakePolkit) -> None:
    from tungui_helper.polkit import AuthorizationTimedOut

    auth = _slow(polkit, check_timeout=60, interactive_timeout=0.05)
    with pytest.raises(AuthorizationTimedOut, match="capture packets"):
        asyncio.run(auth.check(CALLER, Action.CAPTURE, interactive=True))
    assert polkit.cancelled == polkit.cancellation_ids


def test_cancellation_ids_are_unique(polkit: FakePolkit, clock: Clock) -> None:
    auth = Authority(polkit, lifetime=0, clock=clock)  # type: ignore[arg-type]
    for _ in range(3):
        ask(auth)
    assert len(set(polkit.cancellation_ids)) == 3


def test_password_prompts_are_capped_per_user(polkit: FakePolkit) -> None:
    from tungui_contract.errors import LimitsExceeded
    from tungui_helper.limits import PROMPTS_PER_USER

    auth = _slow(polkit)

    async def scenario() -> None:
        waiting = [
            asyncio.ensure_future(auth.check(caller(f":1.{n}"), Action.MANAGE, interactive=True))
            for n in range(PROMPTS_PER_USER)
        ]
        await asyncio.sleep(0)
        with pytest.raises(LimitsExceeded, match="calls waiting for a password"):
            await auth.check(caller(":1.99"), Action.MANAGE, interactive=True)
        # Another user, or a check that cannot prompt, still goes to polkit.
        others = [
            asyncio.ensure_future(
                auth.check(caller(":2.1", uid=1001), Action.MANAGE, interactive=True)
            ),
            asyncio.ensure_future(auth.check(caller(":1.98"), Action.MANAGE, interactive=False)),
        ]
        await asyncio.sleep(0)
        assert auth.checks_in_flight == PROMPTS_PER_USER + 2
        assert polkit.hold is not None
        polkit.hold.set()
        await asyncio.gather(*waiting, *others)
        assert auth.checks_in_flight == 0
        # Answered prompts free their places.
        assert await auth.check(caller(":1.99"), Action.MANAGE, interactive=True) is Decision.YES

    asyncio.run(scenario())


def test_checks_on_their_way_are_capped_below_the_bus_limit(polkit: FakePolkit) -> None:
    from tungui_contract.errors import LimitsExceeded
    from tungui_helper.limits import POLKIT_CHECKS

    assert POLKIT_CHECKS < 128, "dbus-daemon's max_replies_per_connection on the system bus"
    auth = _slow(polkit)

    async def scenario() -> None:
        waiting = [
            asyncio.ensure_future(
                auth.check(caller(f":1.{n}", uid=1000 + n), Action.MANAGE, interactive=False)
            )
            for n in range(POLKIT_CHECKS)
        ]
        await asyncio.sleep(0)
        with pytest.raises(LimitsExceeded, match="waits for polkit"):
            await auth.check(caller(":9.9", uid=9999), Action.MANAGE, interactive=False)
        while len(polkit.questions) < POLKIT_CHECKS:
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert len(polkit.questions) == POLKIT_CHECKS
        assert polkit.hold is not None
        polkit.hold.set()
        await asyncio.gather(*waiting)

    asyncio.run(scenario())


def test_get_permissions_asks_polkit_once_per_caller_and_second(
    polkit: FakePolkit, clock: Clock
) -> None:
    auth = authority(polkit, clock)
    polkit.answer = (False, True, {})  # auth: never reused as a grant

    async def flood(count: int) -> list[dict[Action, Decision]]:
        return await asyncio.gather(*(auth.permissions(CALLER) for _ in range(count)))

    answers = asyncio.run(flood(50))
    assert all(a == dict.fromkeys(Action, Decision.AUTH) for a in answers)
    assert len(polkit.questions) == len(Action), "three questions for fifty calls"
    assert [q[2] for q in polkit.questions] == [0] * len(Action), "never a prompt"
    clock.now += 0.5
    asyncio.run(flood(50))
    assert len(polkit.questions) == len(Action)
    clock.now += 0.6
    asyncio.run(flood(1))
    assert len(polkit.questions) == 2 * len(Action)
    # Another caller, polkit reporting a change, the caller leaving: asked anew.
    asyncio.run(auth.permissions(caller(":1.43")))
    assert len(polkit.questions) == 3 * len(Action)
    auth.forget_all()
    asyncio.run(flood(1))
    auth.forget(CALLER.name)
    asyncio.run(flood(1))
    assert len(polkit.questions) == 5 * len(Action)


def test_get_permissions_says_no_when_polkit_does_not_answer(polkit: FakePolkit) -> None:
    auth = _slow(polkit, check_timeout=0.05)
    answers = asyncio.run(auth.permissions(CALLER))
    assert answers == dict.fromkeys(Action, Decision.NO)
    assert len(polkit.questions) == 1, "the first timeout stands for the others"


def test_root_is_authorized_without_asking_polkit(polkit: FakePolkit) -> None:
    # polkit answers yes to uid 0 for every action before reading any rule;
    # the helper spares the round trip, and asks for everyone else.
    authority = Authority(polkit, lifetime=0)  # type: ignore[arg-type]

    async def scenario() -> list[Decision]:
        polkit.answer = (False, False, {})
        return [
            await authority.check(caller(":1.7", uid=0), action, interactive=False)
            for action in Action
        ] + [await authority.check(caller(":1.8", uid=1), Action.MANAGE, interactive=False)]

    decisions = asyncio.run(scenario())
    assert decisions == [Decision.YES] * len(Action) + [Decision.NO]
    assert [q[0] for q in polkit.questions] == [":1.8"]
