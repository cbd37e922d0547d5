"""Routes D-Bus calls to declared handlers: validate, authorize, act, report.

The interface is the introspection XML shipped with the package; this
module serves exactly it.  Each exported method is declared with
:func:`~.declare.method`, which names its polkit action (or says, explicitly, that it
is public); :class:`Dispatcher` refuses to start if the XML has a method with
no declaration or a declaration the XML does not have.

dbus-fast's ``@method`` handlers cannot see who called them, and polkit
needs that, so calls are taken by a message handler, which sees
``msg.sender`` and ``msg.flags``.  Handlers and action rules get the
:class:`~.callers.Caller`, whose uid the bus daemon vouches for.

Calls are counted before any work: per connection as each message arrives,
before its arguments are looked at, and per user once the caller's uid is
known (:mod:`.limits`), those of Introspectable, Properties and Peer too.  A
call keeps its place until its reply has been written, so replies waiting
for a slow bus are bounded too.  A call over a cap gets ``LimitsExceeded``
(over the cap per user in the user's turn) and nothing else happens.

Counted calls wait in one line per user and are started in turns, one per
round of the event loop and none while replies wait for the bus socket
(:mod:`.turns`), so one user's flood delays another user's call by one
call at most, not by the flood's whole backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.introspection import Node

from tungui_contract.bus import INTERFACE, OBJECT_PATH, Action, ErrorName, interface_xml
from tungui_contract.errors import InvalidArgument, LimitsExceeded, NotAuthorized, TunguiError

from . import standard
from .authorize import REASON, Authorization
from .bustext import bus_text
from .callers import Caller, Callers
from .declare import Declaration, FdReply, OneOf, Public, unwrap
from .limits import CALLS_PER_CONNECTION, CALLS_PER_USER, Tally
from .marshalled import MarshalledBody, MarshalledReply
from .netlink import LinkInfo
from .polkit import ACTION_TEXT, Authority, Decision
from .turns import Turns

log = logging.getLogger(__name__)

DBUS_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
_FAILED = "{member} failed inside the helper; its log has the details."

#: Builds the answer to a call of a standard interface.
Builder = Callable[[Message], Message]


def _failed(msg: Message) -> Message:
    return Message.new_error(msg, ErrorName.FAILED.value, _FAILED.format(member=msg.member))


def _error_reply(msg: Message, exc: Exception) -> Message:
    """The caller's answer to ``exc``: its named error, or a sentence; never a traceback."""
    if isinstance(exc, TunguiError):
        return Message.new_error(msg, exc.name, bus_text(exc.message))
    return _failed(msg)


@dataclass(frozen=True)
class _Bound:
    declaration: Declaration
    handler: Callable[..., Awaitable[list[Any]]]
    in_signature: str
    out_signature: str
    #: The handler takes what was authorized (an ``authorized`` parameter).
    wants_authorization: bool


@dataclass
class _Waiting:
    """A call counted on arrival, on its way to its reply."""

    msg: Message
    sender: str
    #: What answers it: a method of the helper's interface, or a standard one.
    work: _Bound | Builder
    #: Who made it, once the bus daemon has said (then it counts for the user).
    caller: Caller | None = None

    @property
    def own(self) -> bool:
        """A call of the helper's own interface (not Introspect, Properties, Peer)."""
        return isinstance(self.work, _Bound)


class Dispatcher:
    """Routes method calls on the helper's object to declared handlers.

    Args:
        bus: the connection the helper serves on.
        service: the object whose :func:`method` handlers implement the XML.
        authority: polkit.
        callers: who is behind each bus name.
        properties: getters of the interface's read-only properties.
    """

    def __init__(
        self,
        bus: MessageBus,
        service: object,
        authority: Authority,
        callers: Callers,
        properties: dict[str, Callable[[], Variant]],
    ) -> None:
        self._bus = bus
        self._service = service
        self._authority = authority
        self._callers = callers
        self._properties = properties
        self._methods = self._bind(service)
        self.inflight = 0
        self.activity = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Calls of connections the bus daemon has not yet said the user of.
        self._unidentified: dict[str, list[_Waiting]] = {}
        #: Calls counted and waiting for their turn, in one line per user,
        #: started while the bus socket keeps up (HelperBus.when_written).
        self._turns: Turns[_Waiting] = Turns(self._start, getattr(bus, "when_written", None))
        self._per_connection = Tally(
            CALLS_PER_CONNECTION,
            "This connection already has {cap} calls in flight; wait for their answers.",
        )
        self._per_user = Tally(
            CALLS_PER_USER,
            "Your user already has {cap} calls in flight; wait for their answers.",
        )

    @staticmethod
    def _bind(service: object) -> dict[str, _Bound]:
        interface = next(i for i in Node.parse(interface_xml()).interfaces if i.name == INTERFACE)
        declared: dict[str, tuple[Declaration, Any]] = {}
        for _name, func in inspect.getmembers(service, inspect.ismethod):
            declaration = getattr(func, "_tungui_declaration", None)
            if declaration is not None:
                declared[declaration.member] = (declaration, func)
        bound: dict[str, _Bound] = {}
        for spec in interface.methods:
            if spec.name not in declared:
                raise TypeError(f"{spec.name} is in the interface XML but has no handler")
            declaration, func = declared.pop(spec.name)
            action = declaration.action
            if not isinstance(action, Action | Public | OneOf) or (
                isinstance(action, OneOf)
                and not (action.actions and all(isinstance(a, Action) for a in action.actions))
            ):
                raise TypeError(f"{spec.name} declares no polkit action")
            if len(declaration.parsers) != len(spec.in_args):
                raise TypeError(f"{spec.name} needs one checker per in-argument")
            bound[spec.name] = _Bound(
                declaration,
                func,
                "".join(str(a.signature) for a in spec.in_args),
                "".join(str(a.signature) for a in spec.out_args),
                "authorized" in inspect.signature(func).parameters,
            )
        if declared:
            raise TypeError(f"handlers for methods not in the interface XML: {sorted(declared)}")
        return bound

    # ------------------------------------------------------------------

    def handle(self, msg: Message) -> bool:
        """Message handler: take calls to the helper's object, leave the rest."""
        if msg.message_type != MessageType.METHOD_CALL:
            return False
        work: _Bound | Builder
        if msg.interface == standard.PEER:
            work = standard.peer_reply
        elif msg.path != OBJECT_PATH:
            if not standard.is_parent_introspection(msg):
                return False
            work = standard.parent_introspection_reply
        elif msg.interface == standard.INTROSPECTABLE and msg.member == "Introspect":
            work = standard.introspection_reply
        elif msg.interface == standard.PROPERTIES:
            work = self._properties_reply
        elif msg.interface not in (INTERFACE, None):
            return False
        else:
            bound = self._methods.get(msg.member or "")
            if bound is None:
                self._bus.send(
                    Message.new_error(msg, DBUS_UNKNOWN_METHOD, f"No method {msg.member} here.")
                )
                return True
            work = bound
        self._admit(_Waiting(msg, msg.sender or "", work))
        return True

    def _properties_reply(self, msg: Message) -> Message:
        return standard.properties_reply(msg, self._properties)

    def _admit(self, call: _Waiting) -> None:
        """Count a call that has just arrived, then line it up once its user is known."""
        # Counted before anything is parsed: a flood costs no more than this.
        try:
            self._per_connection.take(call.sender)
        except LimitsExceeded as exc:
            self._refuse(call.msg, exc)
            return
        self.inflight += 1
        if call.own:
            self.activity.set()
        caller = self._callers.get(call.sender)
        if caller is not None:
            self._line_up(call, caller)
            return
        unknown = self._unidentified.get(call.sender)
        if unknown is None:
            # The first call of a new connection: ask the bus daemon who it is
            # (once; later calls of that connection wait for the same answer).
            self._unidentified[call.sender] = [call]
            task = asyncio.get_running_loop().create_task(self._identify(call.sender))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            unknown.append(call)

    async def _identify(self, sender: str) -> None:
        try:
            caller = await self._callers.resolve(sender)
        except Exception as exc:
            # It left the bus before the daemon answered (Failed), or worse.
            if not isinstance(exc, TunguiError):
                log.exception("could not learn who %s is", sender)
            for call in self._unidentified.pop(sender, []):
                self._answer_with(call, _error_reply(call.msg, exc))
            return
        for call in self._unidentified.pop(sender, []):
            self._line_up(call, caller)

    def _line_up(self, call: _Waiting, caller: Caller) -> None:
        """Count the call against its user's cap and put it in their line."""
        try:
            self._per_user.take(caller.uid)
        except LimitsExceeded as exc:
            # Refused in the user's turn (holding its place on its connection
            # until then): a flood of refused calls gets no more than its share.
            refusal = _error_reply(call.msg, exc)
            call.work = lambda _call: refusal
        else:
            call.caller = caller
        self._turns.add(caller.uid, call)

    def _start(self, call: _Waiting) -> None:
        """Start a call in its turn (see :mod:`.turns`)."""
        if isinstance(call.work, _Bound):
            assert call.caller is not None  # lined up
            task = asyncio.get_running_loop().create_task(self._call(call, call.work, call.caller))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            reply = call.work(call.msg)
        except Exception:
            log.exception("%s failed", call.msg.member)
            reply = _failed(call.msg)
        self._answer_with(call, reply)

    def _answer_with(self, call: _Waiting, reply: Message) -> None:
        """Send ``reply``; the call keeps its place until it is written."""
        if int(call.msg.flags) & int(MessageFlag.NO_REPLY_EXPECTED):
            self._release(call)
            return
        try:
            sending = self._send(call.msg, reply)
        except BaseException:
            self._release(call)
            raise
        sending.add_done_callback(lambda _: self._release(call))

    def _release(self, call: _Waiting) -> None:
        """The call is over: its place is free again."""
        self._per_connection.give_back(call.sender)
        if call.caller is not None:
            self._per_user.give_back(call.caller.uid)
        self.inflight -= 1
        if call.own:
            self.activity.set()

    def _send(self, msg: Message, reply: Message) -> asyncio.Future[None]:
        """Send the reply to ``msg``; one that cannot be marshalled becomes a Failed error."""
        try:
            return self._bus.send(reply)
        except Exception:
            log.exception("the reply to %s could not be sent", msg.member)
            return self._bus.send(_failed(msg))

    def _refuse(self, msg: Message, exc: TunguiError) -> None:
        if not int(msg.flags) & int(MessageFlag.NO_REPLY_EXPECTED):
            self._bus.send(Message.new_error(msg, exc.name, exc.message))

    async def _call(self, call: _Waiting, bound: _Bound, caller: Caller) -> None:
        msg = call.msg
        fd_reply: FdReply | None = None
        try:
            try:
                reply, fd_reply = await self._run(bound, msg, caller)
            except Exception as exc:
                # The operator gets the traceback in the journal; the caller a
                # sentence. No traceback ever crosses the bus.
                if not isinstance(exc, TunguiError):
                    log.exception("%s failed", msg.member)
                reply = _error_reply(msg, exc)
            if int(msg.flags) & int(MessageFlag.NO_REPLY_EXPECTED) and fd_reply is None:
                return
            # The call keeps its place until its reply is written (and an
            # FdReply's fds must stay open until then).
            with contextlib.suppress(Exception):
                await self._send(msg, reply)
            if fd_reply is not None:
                for fd in fd_reply.fds:
                    os.close(fd)
                if fd_reply.sent is not None:
                    fd_reply.sent()
        finally:
            self._release(call)

    def _decide(self, rule: OneOf, caller: Caller, args: list[Any]) -> Authorization:
        """What the call needs now, with the same rule kept to ask again later."""
        service = self._service

        def recheck(device: LinkInfo | None, bridge: LinkInfo | None) -> Authorization:
            return rule.decide(service, caller, device, bridge, *args)

        device, bridge = rule.find(service, *args)
        return dataclasses.replace(recheck(device, bridge), recheck=recheck)

    async def _run(
        self, bound: _Bound, msg: Message, caller: Caller
    ) -> tuple[Message, FdReply | None]:
        if msg.signature != bound.in_signature:
            raise InvalidArgument(
                f"{msg.member} takes arguments of type ({bound.in_signature}), "
                f"not ({msg.signature})."
            )
        declaration = bound.declaration
        args = [
            check(unwrap(arg)) for check, arg in zip(declaration.parsers, msg.body, strict=True)
        ]
        rule = declaration.action
        needed: Authorization | None = None
        if not isinstance(rule, Public):
            if isinstance(rule, Action):
                needed = Authorization(rule)
            else:
                needed = self._decide(rule, caller, args)
                if needed.action not in rule.actions:
                    raise TypeError(f"{msg.member} chose {needed.action}, not declared for it")
            action = needed.action
            interactive = bool(int(msg.flags) & int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION))
            decision = await self._authority.check(
                caller, action, interactive=interactive, details=needed.details
            )
            if decision is not Decision.YES:
                hint = (
                    ""
                    if interactive or decision is Decision.NO
                    else (
                        " Authentication is required; call again allowing interactive "
                        "authorization."
                    )
                )
                reason = needed.details.get(REASON)
                why = f" ({reason})" if reason else ""
                raise NotAuthorized(f"You are not allowed to {ACTION_TEXT[action]}{why}.{hint}")
        if bound.wants_authorization:
            # The handler acts on exactly what polkit was asked about.
            assert needed is not None, f"{msg.member} is public but asks what was authorized"
            body = await bound.handler(caller, *args, authorized=needed)
        else:
            body = await bound.handler(caller, *args)
        if isinstance(body, MarshalledBody):
            if body.signature != bound.out_signature:
                raise TypeError(
                    f"{msg.member} returns ({bound.out_signature}), not ({body.signature})"
                )
            return MarshalledReply(msg, body), None
        if isinstance(body, FdReply):
            reply = Message.new_method_return(msg, bound.out_signature, body.body, body.fds)
            return reply, body
        return Message.new_method_return(msg, bound.out_signature, body), None
