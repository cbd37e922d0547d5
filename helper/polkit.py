"""Asks polkit whether a caller may do something.

The subject is always the caller's unique bus name (``system-bus-name``),
never a pid: a pid can be reused by another process between the call and
the check (CVE-2013-4288).  The decision is taken only from polkit's reply.
Each check is an ordinary awaited D-Bus call, so a caller sitting at a
password prompt never blocks the helper for anyone else.
"""

from __future__ import annotations

import enum
import logging

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from .contract import POLKIT_BUS_NAME, POLKIT_INTERFACE, POLKIT_PATH, Action

log = logging.getLogger(__name__)

#: CheckAuthorization flag: polkit may ask the user to authenticate.
ALLOW_USER_INTERACTION = 0x1


class Decision(enum.StrEnum):
    """polkit's answer, as GetPermissions reports it."""

    YES = "yes"
    AUTH = "auth"  # authorized after authentication
    NO = "no"


class Authority:
    """polkit's Authority, reached over the helper's own bus connection."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def check(self, sender: str, action: Action, *, interactive: bool) -> Decision:
        """Ask polkit about ``sender`` doing ``action``.

        Args:
            sender: the caller's unique bus name.
            action: the polkit action.
            interactive: let polkit ask the user for a password; only when the
                caller's message carried ALLOW_INTERACTIVE_AUTHORIZATION.

        Returns:
            YES when authorized now, AUTH when authentication would be
            needed, NO otherwise (including when polkit cannot be reached).
        """
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
                    {},
                    ALLOW_USER_INTERACTION if interactive else 0,
                    "",
                ],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            error = None if reply is None else f"{reply.error_name}: {reply.body}"
            log.warning("polkit could not decide %s for %s: %s", action.value, sender, error)
            return Decision.NO
        # (bba{ss}): is_authorized, is_challenge, details.  Structs arrive as
        # lists before dbus-fast 3.0 and tuples after; index, don't unpack types.
        result = reply.body[0]
        if result[0]:
            return Decision.YES
        if result[1]:
            return Decision.AUTH
        return Decision.NO
