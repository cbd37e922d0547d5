"""Asks polkit whether a caller may do something.

The subject is always the caller's unique bus name (``system-bus-name``),
never a pid: a pid can be reused by another process between the call and
the check (CVE-2013-4288).  The decision is taken only from polkit's reply.
Each check is an ordinary awaited D-Bus call, so a caller sitting at a
password prompt never blocks the helper for anyone else.

A "yes" is reused for the same caller and action for at most
:data:`GRANT_LIFETIME` seconds, which takes polkit's round trip (about 2 ms,
most of a CreateDevice) off a burst of calls.  Only a "yes" that a new
question would get again without a password is reused: one from a check
that could not ask, or one polkit keeps as a temporary authorization
(``auth_admin_keep``).  A one-shot authentication (``auth_admin``, as the
foreign action asks) is never reused.  The reuse ends early when polkit
says its authorizations changed (its ``Changed`` signal: rules, sessions,
temporary authorizations), when polkitd leaves the bus, and when the caller
does.  A "yes" is kept with the details it was given for (the device, what
is asked), since administrators' rules may decide by them.

Every check times out (:data:`~.limits.CHECK_TIMEOUT`, and
:data:`~.limits.INTERACTIVE_TIMEOUT` when polkit may ask for a password),
and a timeout refuses the call; the helper then cancels the check, so no
password dialog stays open for it.  The checks on their way are capped,
per user at a prompt and over all users, below the bus's limit on replies
a connection may wait for (see :mod:`.limits`).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Final

from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

from tungui_contract.bus import POLKIT_BUS_NAME, POLKIT_INTERFACE, POLKIT_PATH, Action
from tungui_contract.errors import NotAuthorized

from .callers import Caller
from .limits import CHECK_TIMEOUT, INTERACTIVE_TIMEOUT, POLKIT_CHECKS, PROMPTS_PER_USER, Tally

log = logging.getLogger(__name__)

#: CheckAuthorization flag: polkit may ask the user to authenticate.
ALLOW_USER_INTERACTION = 0x1
#: Seconds a "yes" is reused for the same caller, action and details.
GRANT_LIFETIME = 1.0
#: Seconds GetPermissions' answers are reused for the same caller: a window
#: asks once when it opens, a flood of free calls asks polkit once a second.
PERMISSIONS_LIFETIME = 1.0
#: Expired answers are swept when this many are kept.
_PRUNE_AT = 256
#: Details in a hashable, canonical form.
_Details = tuple[tuple[str, str], ...]
#: The detail polkit adds to a "yes" that rests on a temporary authorization.
TEMPORARY_AUTHORIZATION = "polkit.temporary_authorization_id"

#: The match rule that routes polkit's ``Changed`` signal to the helper.
CHANGED_RULE = (
    f"type='signal',sender='{POLKIT_BUS_NAME}',path='{POLKIT_PATH}',"
    f"interface='{POLKIT_INTERFACE}',member='Changed'"
)


#: What each action lets a caller do, as refusals name it.
ACTION_TEXT: Final = {
    Action.MANAGE: "manage TUN/TAP devices and bridges",
    Action.MANAGE_FOREIGN: (
        "change network devices that tungui did not create, or go beyond what it may do "
        "with its own"
    ),
    Action.CAPTURE: "capture packets",
}


class Decision(enum.StrEnum):
    """polkit's answer, as GetPermissions reports it."""

    YES = "yes"
    AUTH = "auth"  # authorized after authentication
    NO = "no"


class AuthorizationTimedOut(NotAuthorized):
    """polkit did not answer in time; the call is refused."""


class Authority:
    """polkit's Authority, reached over the helper's own bus connection.

    Args:
        bus: the helper's connection.
        lifetime: seconds a "yes" is reused (0: ask every time).
        clock: monotonic seconds.
        check_timeout: seconds polkit may take when it may not ask for a password.
        interactive_timeout: seconds polkit may take when it may.
    """

    def __init__(
        self,
        bus: MessageBus,
        *,
        lifetime: float = GRANT_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
        check_timeout: float = CHECK_TIMEOUT,
        interactive_timeout: float = INTERACTIVE_TIMEOUT,
    ) -> None:
        self._bus = bus
        self._lifetime = lifetime
        self._clock = clock
        self._check_timeout = check_timeout
        self._interactive_timeout = interactive_timeout
        #: (caller's name, action, details) -> when the reuse of polkit's "yes" ends.
        self._granted: dict[tuple[str, Action, _Details], float] = {}
        #: caller's name -> when GetPermissions' answers for it expire, and them.
        self._permissions: dict[str, tuple[float, asyncio.Future[dict[Action, Decision]]]] = {}
        #: Bumped whenever polkit's answers may have changed, so an answer
        #: that was on its way during the change is not kept.
        self._generation = 0
        self._prompts = Tally(
            PROMPTS_PER_USER,
            "You already have {cap} calls waiting for a password; answer or cancel those first.",
        )
        self._checks = Tally(
            POLKIT_CHECKS, "The helper waits for polkit on {cap} calls already; try again shortly."
        )
        self._cancellation_ids = (f"tungui-{n}" for n in itertools.count(1))
        #: polkitd's unique bus name, once it has answered.
        self._polkit: str | None = None

    def follow_changes(self) -> None:
        """Listen for polkit's ``Changed`` signal, which the bus routes by :data:`CHANGED_RULE`.

        Clients leaving come through :meth:`forget`.
        """
        self._bus.add_message_handler(self._on_signal)

    def _on_signal(self, msg: Message) -> bool:
        # Anyone may send the helper a signal that looks like polkit's (a
        # signal addressed to it passes no match rule), and a flood of fake
        # ones would make every check and GetPermissions ask polkit again:
        # once polkitd has answered, only its own connection counts.  Before,
        # any Changed counts; nothing is kept then that a fake could end.
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "Changed"
            and msg.interface == POLKIT_INTERFACE
            and self._polkit in (None, msg.sender)
        ):
            self.forget_all()
        return False

    def forget(self, name: str) -> None:
        """``name`` left the bus: drop its answers (polkitd leaving drops all)."""
        if name == POLKIT_BUS_NAME:
            self._polkit = None
            self.forget_all()
            return
        for key in [k for k in self._granted if k[0] == name]:
            del self._granted[key]
        self._permissions.pop(name, None)

    def forget_all(self) -> None:
        self._granted.clear()
        self._permissions.clear()
        self._generation += 1

    @property
    def checks_in_flight(self) -> int:
        """polkit checks on their way now."""
        return self._checks[None]

    async def check(
        self,
        caller: Caller,
        action: Action,
        *,
        interactive: bool,
        details: Mapping[str, str] | None = None,
    ) -> Decision:
        """Ask polkit about ``caller`` doing ``action``.

        Args:
            caller: who asks; polkit's subject is its unique bus name.
            action: the polkit action.
            interactive: let polkit ask the user for a password; only when the
                caller's message carried ALLOW_INTERACTIVE_AUTHORIZATION.
            details: for polkit's prompt and rules (see :class:`~.authorize.Authorization`).

        Returns:
            YES when authorized now, AUTH when authentication would be
            needed, NO otherwise (including when polkit cannot be reached).

        Raises:
            AuthorizationTimedOut: polkit did not answer in time.
            LimitsExceeded: the caller's user has too many calls at a
                password prompt, or the helper waits on too many checks.
        """
        if caller.uid == 0:
            # polkit authorizes uid 0 for every action before it reads any
            # rule ("uid 0, root, is _always_ authorized for anything",
            # polkitbackendinteractiveauthority.c); asking would cost a
            # round trip for that same answer.  systemd's services skip it
            # for root too.  The uid is the bus's (SO_PEERCRED), never a
            # default: a caller the bus cannot name is refused (callers.py).
            return Decision.YES
        shown = details or {}
        key = (caller.name, action, tuple(sorted(shown.items())))
        if self._lifetime > 0:
            until = self._granted.get(key)
            if until is not None:
                if self._clock() < until:
                    return Decision.YES
                del self._granted[key]
        generation = self._generation
        decision, kept = await self._ask(caller, action, shown, interactive=interactive)
        if (
            self._lifetime > 0
            and decision is Decision.YES
            and (kept or not interactive)
            and generation == self._generation
        ):
            # Without the interactive flag, polkit said yes without a
            # password; with it, the "yes" may have been a one-shot
            # authentication unless polkit keeps it as temporary.
            now = self._clock()
            if len(self._granted) >= _PRUNE_AT:
                # Callers that left while polkit answered are not forgotten
                # by name; their answers expire like any other.
                self._granted = {k: t for k, t in self._granted.items() if t > now}
            if len(self._granted) < _PRUNE_AT:
                self._granted[key] = now + self._lifetime
        return decision

    async def permissions(self, caller: Caller) -> dict[Action, Decision]:
        """polkit's answer for every action, without a password, as GetPermissions reports it.

        The answers are reused for the same caller for
        :data:`PERMISSIONS_LIFETIME` seconds (or until polkit reports a
        change, or the caller leaves), and callers asking while polkit
        answers share its answer: a flood of this free call costs polkit
        a few questions a second, not three per call.
        """
        now = self._clock()
        kept = self._permissions.get(caller.name)
        if kept is None or (
            kept[1].done() and (now >= kept[0] or kept[1].cancelled() or kept[1].exception())
        ):
            if len(self._permissions) >= _PRUNE_AT:
                self._permissions = {
                    name: entry
                    for name, entry in self._permissions.items()
                    if not entry[1].done() or entry[0] > now
                }
            kept = (now + PERMISSIONS_LIFETIME, asyncio.ensure_future(self._ask_all(caller)))
            self._permissions[caller.name] = kept
        return await asyncio.shield(kept[1])

    async def _ask_all(self, caller: Caller) -> dict[Action, Decision]:
        # One question at a time, so one call never holds more than one of
        # the checks the helper may have on their way.
        answers: dict[Action, Decision] = {}
        for action in Action:
            try:
                answers[action] = await self.check(caller, action, interactive=False)
            except AuthorizationTimedOut:
                # polkit does not answer: the rest would wait as long.
                return {a: answers.get(a, Decision.NO) for a in Action}
        return answers

    async def _ask(
        self, caller: Caller, action: Action, details: Mapping[str, str], *, interactive: bool
    ) -> tuple[Decision, bool]:
        """polkit's decision, and whether it rests on a temporary authorization."""
        if interactive:
            self._prompts.take(caller.uid)
        try:
            self._checks.take(None)
        except BaseException:
            if interactive:
                self._prompts.give_back(caller.uid)
            raise
        try:
            return await self._ask_polkit(caller, action, details, interactive=interactive)
        finally:
            self._checks.give_back(None)
            if interactive:
                self._prompts.give_back(caller.uid)

    async def _ask_polkit(
        self, caller: Caller, action: Action, details: Mapping[str, str], *, interactive: bool
    ) -> tuple[Decision, bool]:
        subject = ["system-bus-name", {"name": Variant("s", caller.name)}]
        cancellation_id = next(self._cancellation_ids)
        timeout = self._interactive_timeout if interactive else self._check_timeout
        try:
            reply = await asyncio.wait_for(
                self._bus.call(
                    Message(
                        destination=POLKIT_BUS_NAME,
                        path=POLKIT_PATH,
                        interface=POLKIT_INTERFACE,
                        member="CheckAuthorization",
                        signature="(sa{sv})sa{ss}us",
                        body=[
                            subject,
                            action.value,
                            dict(details),
                            ALLOW_USER_INTERACTION if interactive else 0,
                            cancellation_id,
                        ],
                    )
                ),
                timeout,
            )
        except BaseException as exc:
            # Timed out, or the call itself was cancelled: polkit drops the
            # check and closes its password dialog.
            self._cancel(cancellation_id)
            if not isinstance(exc, TimeoutError):
                raise
            log.warning(
                "polkit gave no answer within %g s on %s for %s (uid %d); refused",
                timeout,
                action.value,
                caller.name,
                caller.uid,
            )
            raise AuthorizationTimedOut(
                f"polkit gave no answer within {timeout:g} seconds on whether you may "
                f"{ACTION_TEXT[action]}; nothing was done."
            ) from None
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            error = None if reply is None else f"{reply.error_name}: {reply.body}"
            log.warning("polkit could not decide %s for %s: %s", action.value, caller.name, error)
            return Decision.NO, False
        # The bus stamps the sender: polkitd's unique name, whose Changed counts.
        self._polkit = reply.sender
        # (bba{ss}): is_authorized, is_challenge, details.  Structs arrive as
        # lists before dbus-fast 3.0 and tuples after; index, don't unpack types.
        result = reply.body[0]
        if result[0]:
            return Decision.YES, TEMPORARY_AUTHORIZATION in result[2]
        if result[1]:
            return Decision.AUTH, False
        return Decision.NO, False

    def _cancel(self, cancellation_id: str) -> None:
        """Tell polkit to drop a check; no answer is awaited (it would hold a reply slot)."""
        self._bus.send(
            Message(
                destination=POLKIT_BUS_NAME,
                path=POLKIT_PATH,
                interface=POLKIT_INTERFACE,
                member="CancelCheckAuthorization",
                signature="s",
                body=[cancellation_id],
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )
