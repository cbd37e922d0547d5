"""Who is calling: a unique bus name's user and groups, from the bus itself.

The bus daemon knows the credentials of every connection (it read them
from the socket when the client connected); the helper asks it once per
connection, with ``GetConnectionCredentials``, and forgets the answer when
the connection leaves the bus.  Never from ``/proc/PID``: a pid can be
reused by another process (CVE-2013-4288).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from .errors import Failed


@dataclass(frozen=True)
class Caller:
    """One connection to the helper and the user behind it."""

    #: The unique bus name (":1.42").
    name: str
    uid: int
    gids: frozenset[int]
    pid: int


class Callers:
    """The credentials of the helper's callers, asked of the bus once a connection."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._known: dict[str, asyncio.Future[Caller]] = {}

    async def get(self, name: str) -> Caller:
        """The caller behind a unique bus name.

        Raises:
            Failed: the bus could not say (the caller left already).
        """
        known = self._known.get(name)
        if known is None:
            known = self._known[name] = asyncio.ensure_future(self._ask(name))
        try:
            return await asyncio.shield(known)
        except Failed:
            self._known.pop(name, None)
            raise

    def forget(self, name: str) -> None:
        """``name`` left the bus."""
        known = self._known.pop(name, None)
        if known is not None and not known.done():
            known.cancel()

    async def _ask(self, name: str) -> Caller:
        reply = await self._bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="GetConnectionCredentials",
                signature="s",
                body=[name],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            raise Failed("The bus could not say who is calling; the caller may have left.")
        credentials = {key: variant.value for key, variant in reply.body[0].items()}
        uid = int(credentials["UnixUserID"])
        gids = frozenset(int(g) for g in credentials.get("UnixGroupIDs", ()))
        return Caller(name, uid, gids, int(credentials.get("ProcessID", 0)))
