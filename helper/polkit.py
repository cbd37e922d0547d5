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
does.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from .contract import POLKIT_BUS_NAME, POLKIT_INTERFACE, POLKIT_PATH, Action

log = logging.getLogger(__name__)

#: CheckAuthorization flag: polkit may ask the user to authenticate.
ALLOW_USER_INTERACTION = 0x1
#: Seconds a "yes" is reused for the same caller and action.
GRANT_LIFETIME = 1.0
#: Expired answers are swept when this many are kept.
_PRUNE_AT = 256
#: The detail polkit adds to a "yes" that rests on a temporary authorization.
TEMPORARY_AUTHORIZATION = "polkit.temporary_authorization_id"

#: The match rule that routes polkit's ``Changed`` signal to the helper.
CHANGED_RULE = (
    f"type='signal',sender='{POLKIT_BUS_NAME}',path='{POLKIT_PATH}',"
    f"interface='{POLKIT_INTERFACE}',member='Changed'"
)


class Decision(enum.StrEnum):
    """polkit's answer, as GetPermissions reports it."""

    YES = "yes"
    AUTH = "auth"  # authorized after authentication
    NO = "no"


class Authority:
    """polkit's Authority, reached over the helper's own bus connection."""

    def __init__(
        self,
        bus: MessageBus,
        *,
        lifetime: float = GRANT_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._lifetime = lifetime
        self._clock = clock
        #: (caller, action, details) -> when the reuse of polkit's "yes" ends.
        #: The details are part of the key: administrators' rules may
        #: decide by device, so a yes for one device is not one for another.
        self._granted: dict[tuple[str, Action, frozenset[tuple[str, str]]], float] = {}
        #: Bumped whenever polkit's answers may have changed, so an answer
        #: that was on its way during the change is not kept.
        self._generation = 0

    def follow_changes(self) -> None:
        """Listen for polkit's ``Changed`` signal, which the bus routes by :data:`CHANGED_RULE`.

        Clients leaving come through :meth:`forget`.
        """
        self._bus.add_message_handler(self._on_signal)

    def _on_signal(self, msg: Message) -> bool:
        # Anyone may send a signal that looks like polkit's; the worst a fake
        # one does is make the next check ask polkit again.
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "Changed"
            and msg.interface == POLKIT_INTERFACE
        ):
            self.forget_all()
        return False

    def forget(self, name: str) -> None:
        """``name`` left the bus: drop its answers (polkitd leaving drops all)."""
        if name == POLKIT_BUS_NAME:
            self.forget_all()
            return
        for key in [k for k in self._granted if k[0] == name]:
            del self._granted[key]

    def forget_all(self) -> None:
        self._granted.clear()
        self._generation += 1

    async def check(
        self,
        sender: str,
        action: Action,
        *,
        interactive: bool,
        details: Mapping[str, str] | None = None,
    ) -> Decision:
        """Ask polkit about ``sender`` doing ``action``.

        Args:
            sender: the caller's unique bus name.
            action: the polkit action.
            interactive: let polkit ask the user for a password; only when the
                caller's message carried ALLOW_INTERACTIVE_AUTHORIZATION.
            details: what is asked (device, request), for polkit's prompt
                and administrators' rules.

        Returns:
            YES when authorized now, AUTH when authentication would be
            needed, NO otherwise (including when polkit cannot be reached).
        """
        details = dict(details or {})
        key = (sender, action, frozenset(details.items()))
        if self._lifetime <= 0:
            return (await self._ask(sender, action, details, interactive=interactive))[0]
        until = self._granted.get(key)
        if until is not None:
            if self._clock() < until:
                return Decision.YES
            del self._granted[key]
        generation = self._generation
        decision, kept = await self._ask(sender, action, details, interactive=interactive)
        if (
            decision is Decision.YES
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
            self._granted[key] = now + self._lifetime
        return decision

    async def _ask(
        self, sender: str, action: Action, details: dict[str, str], *, interactive: bool
    ) -> tuple[Decision, bool]:
        """polkit's decision, and whether it rests on a temporary authorization."""
        subject = ["system-bus-name", {"name": Variant("s", sender)}]
        reply = await self._bus.call(
            Message(
                destination=POLKIT_BUS_NAME,
                path=POLKIT_PATH,
                interface=POLKIT_INTERFACE,
                member="CheckAuthorization",
                signature="(sa{sv})sa{ss}us",
                body=[
                    subject,
                    action.value,
                    details,
                    ALLOW_USER_INTERACTION if interactive else 0,
                    "",
                ],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            error = None if reply is None else f"{reply.error_name}: {reply.body}"
            log.warning("polkit could not decide %s for %s: %s", action.value, sender, error)
            return Decision.NO, False
        # (bba{ss}): is_authorized, is_challenge, details.  Structs arrive as
        # lists before dbus-fast 3.0 and tuples after; index, don't unpack types.
        result = reply.body[0]
        if result[0]:
            return Decision.YES, TEMPORARY_AUTHORIZATION in result[2]
        if result[1]:
            return Decision.AUTH, False
        return Decision.NO, False
