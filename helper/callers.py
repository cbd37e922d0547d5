"""Who is calling: a caller's user, groups and process, as the bus daemon knows them.

The bus daemon took these from the kernel when the caller connected
(``SO_PEERCRED``), so they hold for as long as that connection does.  The
helper never reads ``/proc`` for them: a pid can be reused by another
process between the call and the look-up (CVE-2013-4288).  polkit is asked
about the caller's bus name, never about these; they serve for caps per
user and for deciding what ``manage`` alone may ask for (say, an owner other
than the caller).

A unique name is never given to another connection, so what was learnt
about it stays true until it leaves the bus; the service then calls
:meth:`Callers.forget`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tungui_contract.errors import Failed

log = logging.getLogger(__name__)

_DBUS = "org.freedesktop.DBus"
_DBUS_PATH = "/org/freedesktop/DBus"
_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"


@dataclass(frozen=True)
class Caller:
    """One connection on the bus and the credentials the bus daemon holds for it."""

    #: Its unique bus name (``:1.42``), polkit's subject.
    name: str
    uid: int
    #: Its groups, primary and supplementary; empty if the bus did not say.
    gids: frozenset[int]
    #: Its process, for the log only; None if the bus did not say.
    pid: int | None


class Callers:
    """Looks callers up on the bus daemon, once per unique name.

    Args:
        bus: the helper's connection; its daemon answers.
    """

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._known: dict[str, Caller] = {}
        #: Look-ups on their way, shared by every call from the same name.
        self._asking: dict[str, asyncio.Future[Caller]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, name: str) -> Caller | None:
        """The caller of that name if it is known already; never asks the bus."""
        return self._known.get(name)

    async def resolve(self, name: str) -> Caller:
        """The caller behind a unique bus name.

        Raises:
            Failed: the name left the bus before the daemon answered.
        """
        known = self._known.get(name)
        if known is not None:
            return known
        asking = self._asking.get(name)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(name))
            self._asking[name] = asking
            asking.add_done_callback(lambda done: self._settle(name, done))
        # One caller's call being cancelled must not cancel the others'.
        return await asyncio.shield(asking)

    def _settle(self, name: str, done: asyncio.Future[Caller]) -> None:
        if self._asking.get(name) is not done:
            return  # the name left while the daemon answered: keep nothing
        del self._asking[name]
        if not done.cancelled() and done.exception() is None:
            self._known[name] = done.result()

    def forget(self, name: str) -> None:
        """``name`` left the bus."""
        self._known.pop(name, None)
        self._asking.pop(name, None)

    async def _ask(self, name: str) -> Caller:
        reply = await self._call("GetConnectionCredentials", name)
        if reply.message_type == MessageType.METHOD_RETURN:
            credentials: dict[str, Any] = {k: v.value for k, v in reply.body[0].items()}
            if "UnixUserID" in credentials:
                pid = credentials.get("ProcessID")
                return Caller(
                    name=name,
                    uid=int(credentials["UnixUserID"]),
                    gids=frozenset(int(g) for g in credentials.get("UnixGroupIDs", ())),
                    pid=None if pid is None else int(pid),
                )
        elif reply.error_name != _UNKNOWN_METHOD:
            raise self._left(name, reply)
        # A bus too old for GetConnectionCredentials (before D-Bus 1.7.2), or
        # one that did not give the uid in it: ask for the uid alone.
        reply = await self._call("GetConnectionUnixUser", name)
        if reply.message_type != MessageType.METHOD_RETURN:
            raise self._left(name, reply)
        return Caller(name=name, uid=int(reply.body[0]), gids=frozenset(), pid=None)

    async def _call(self, member: str, name: str) -> Message:
        reply = await self._bus.call(
            Message(
                destination=_DBUS,
                path=_DBUS_PATH,
                interface=_DBUS,
                member=member,
                signature="s",
                body=[name],
            )
        )
        assert reply is not None  # a method call always gets a reply
        return reply

    @staticmethod
    def _left(name: str, reply: Message) -> Failed:
        log.debug("could not look %s up: %s %s", name, reply.error_name, reply.body)
        return Failed("The caller left the bus before it could be identified.")
