"""A real polkit authentication agent, run by the tests.

polkit sends a password prompt (``BeginAuthentication``) to the agent
registered for the caller's process; this module is such an agent, run as
root by the test process, so a test sees exactly what a user would be shown
(action, message, polkit's details, the identities offered) and holds the
prompt open until it answers: :meth:`Prompt.authenticate` (polkit then
counts the caller as authenticated) or :meth:`Prompt.cancel` (the user
dismissed it).  Meanwhile the helper is waiting for polkit, which is how a
test makes a race deterministic.

The caller it answers for is a long-lived process of ``nobody``
(polkitcaller.py) calling with ALLOW_INTERACTIVE_AUTHORIZATION, without
which the helper never lets polkit prompt.

Facts from polkit 122 (polkitbackendinteractiveauthority.c), checked here:

- polkitd may call an agent only where polkit's own D-Bus policy file is
  in force, as on a system bus: :func:`let_polkit_call_agents`.

- polkit looks up the agent for a ``system-bus-name`` subject by the
  caller's process (pid and start time) before its session; root may
  register an agent for another user's process.
- The details a mechanism passes to CheckAuthorization never reach the
  agent: ``details`` holds only ``polkit.caller-pid`` and
  ``polkit.subject-pid``.  They reach the message: polkit expands
  ``$(key)`` in the action's message, or in a ``polkit.message`` detail,
  with the details' values; and rules files see them (``action.lookup``).
- AuthenticationAgentResponse2 is accepted from uid 0 only.
- With no admin in Debian's ``unix-group:sudo``, polkit offers uid 0.
- A "keep" (``auth_admin_keep``) authorization belongs to the caller's
  process (pid, start time, uid) for five minutes.  No one can revoke it
  over D-Bus without a logind session (Revoke* ask for the caller's
  session), so it ends with the process: the fixture ends its callers.

Standard library and dbus-fast only, never the project's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from .bus import DBusDaemon
from .buscall import dbus_daemon_call
from .errors import DBusCallError, StackError
from .names import DBUS_NAME, DBUS_PATH, POLKIT_BUS_NAME, POLKIT_INTERFACE, POLKIT_PATH
from .polkitcaller import Caller, spawn_caller
from .waiting import DEFAULT_TIMEOUT

T = TypeVar("T")

AGENT_INTERFACE = "org.freedesktop.PolicyKit1.AuthenticationAgent"
#: The error that tells polkit the user dismissed the prompt.
CANCELLED = "org.freedesktop.PolicyKit1.Error.Cancelled"
#: The details polkit itself adds to every prompt.
SUBJECT_PID = "polkit.subject-pid"
CALLER_PID = "polkit.caller-pid"
#: polkit's own D-Bus policy: it lets polkitd call agents on a real system bus.
POLKIT_BUS_POLICY = Path("/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf")


def let_polkit_call_agents(bus: DBusDaemon) -> None:
    """Include polkit's D-Bus policy in the test bus's configuration, as a
    system bus does; without it polkitd may not call BeginAuthentication."""
    include = f"<include>{POLKIT_BUS_POLICY}</include>"
    config = bus.config_path.read_text("utf-8")
    if include in config:
        return
    if not POLKIT_BUS_POLICY.is_file():
        raise StackError(f"{POLKIT_BUS_POLICY} is missing (Debian package polkitd)")
    bus.config_path.write_text(config.replace("</busconfig>", f"  {include}\n</busconfig>"))
    dbus_daemon_call(bus.address, "ReloadConfig")  # answered once reloaded


def process_subject(pid: int) -> tuple[str, dict[str, Variant]]:
    """The exact ``unix-process`` subject of ``pid``: polkit keys agents by pid
    and start time, so an agent never answers for a process reusing the pid."""
    stat = Path(f"/proc/{pid}/stat").read_text("utf-8")
    start_time = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, starttime
    return ("unix-process", {"pid": Variant("u", pid), "start-time": Variant("t", start_time)})


class _Loop:
    """An asyncio loop on a thread of its own, for the tests' synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Prompt:
    """One password prompt polkit asked the agent to show.

    Attributes are what polkit sent: ``action_id``, ``message`` (as the
    user reads it), ``icon_name``, ``details`` (polkit's own: see the
    module's docstring), ``cookie`` and ``identities`` (who may
    authenticate, as ``(kind, {key: Variant})``).
    """

    def __init__(self, agent: Agent, msg: Message) -> None:
        self._agent = agent
        self._msg = msg
        action_id, message, icon_name, details, cookie, identities = msg.body
        self.action_id: str = action_id
        self.message: str = message
        self.icon_name: str = icon_name
        self.details: dict[str, str] = dict(details)
        self.cookie: str = cookie
        self.identities: list[tuple[str, dict[str, Variant]]] = [
            (str(kind), dict(values)) for kind, values in identities
        ]
        #: How the prompt ended: "authenticated", "cancelled", or
        #: "withdrawn" when polkit called it off (the caller left, say).
        self.outcome: str | None = None
        self.ended = threading.Event()

    @property
    def subject_pid(self) -> int:
        """The pid of the process polkit asks about (the caller)."""
        return int(self.details[SUBJECT_PID])

    def authenticate(self, identity: tuple[str, dict[str, Variant]] | None = None) -> None:
        """Answer as if the user typed the right password for ``identity``
        (the first offered by default); returns once polkit took it."""
        self._agent.loop.run(self._agent.authenticate(self, identity or self.identities[0]))

    def cancel(self) -> None:
        """Answer as if the user dismissed the prompt."""
        self._agent.loop.run(self._agent.cancel(self))

    def _end(self, outcome: str, reply: Message) -> None:
        """Called in the agent's loop: answer BeginAuthentication, once."""
        if self.outcome is not None:
            raise StackError(f"the prompt {self.cookie} was already {self.outcome}")
        self.outcome = outcome
        self._agent.bus.send(reply)
        self.ended.set()

    def _reply(self) -> Message:
        return Message.new_method_return(self._msg)

    def _refusal(self, text: str) -> Message:
        return Message.new_error(self._msg, CANCELLED, text)


class Agent:
    """An authentication agent registered for one process; see :meth:`PolkitAgents.for_process`."""

    _paths = itertools.count(1)

    def __init__(self, loop: _Loop, bus_address: str, pid: int) -> None:
        self.loop = loop
        self.bus_address = bus_address
        self.pid = pid
        self.subject = process_subject(pid)
        self.object_path = f"/io/github/tungui/test/PolkitAgent{next(self._paths)}"
        self.prompts_seen = 0
        self._prompts: queue.Queue[Prompt] = queue.Queue()
        self._open: dict[str, Prompt] = {}
        self._bus: MessageBus | None = None
        self._polkit = ""
        self._registered = False

    @property
    def bus(self) -> MessageBus:
        if self._bus is None:
            raise StackError("the agent is not connected")
        return self._bus

    def wait_for_prompt(self, timeout: float = DEFAULT_TIMEOUT) -> Prompt:
        """The next prompt polkit sent (in order); TimeoutError if none comes."""
        try:
            return self._prompts.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no polkit prompt for pid {self.pid} within {timeout:g} s"
            ) from None

    def unanswered(self) -> list[Prompt]:
        """Prompts polkit still waits on (received, not yet ended)."""
        return [p for p in list(self._open.values()) if p.outcome is None]

    # -- in the agent's loop

    async def _authority(self, member: str, signature: str, body: list[Any]) -> list[Any]:
        reply = await self.bus.call(
            Message(
                destination=POLKIT_BUS_NAME,
                path=POLKIT_PATH,
                interface=POLKIT_INTERFACE,
                member=member,
                signature=signature,
                body=body,
            )
        )
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise DBusCallError(reply.error_name or "", str(reply.body[0] if reply.body else ""))
        return list(reply.body)

    async def register(self) -> None:
        self._bus = await MessageBus(
            bus_address=self.bus_address, bus_type=BusType.SYSTEM
        ).connect()
        self._bus.add_message_handler(self._on_message)
        (self._polkit,) = await self._dbus("GetNameOwner", "s", [POLKIT_BUS_NAME])
        await self._authority(
            "RegisterAuthenticationAgent", "(sa{sv})ss", [list(self.subject), "C", self.object_path]
        )
        self._registered = True

    async def _dbus(self, member: str, signature: str, body: list[Any]) -> list[Any]:
        msg = Message(
            destination=DBUS_NAME,
            path=DBUS_PATH,
            interface=DBUS_NAME,
            member=member,
            signature=signature,
            body=body,
        )
        reply = await self.bus.call(msg)
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
        return list(reply.body)

    async def unregister(self) -> None:
        """Cancel what is still open, unregister, disconnect."""
        if self._bus is None:
            return
        for prompt in self.unanswered():
            prompt._end("cancelled", prompt._refusal("The test ended the agent."))
        try:
            if self._registered:
                self._registered = False
                await self._authority(
                    "UnregisterAuthenticationAgent",
                    "(sa{sv})s",
                    [list(self.subject), self.object_path],
                )
        finally:
            self._bus.disconnect()
            with contextlib.suppress(Exception):
                await self._bus.wait_for_disconnect()
            self._bus = None

    async def authenticate(self, prompt: Prompt, identity: tuple[str, dict[str, Variant]]) -> None:
        if prompt.outcome is not None:
            raise StackError(f"the prompt {prompt.cookie} was already {prompt.outcome}")
        # polkit marks the session authenticated, then reads our reply.
        await self._authority(
            "AuthenticationAgentResponse2", "us(sa{sv})", [0, prompt.cookie, list(identity)]
        )
        prompt._end("authenticated", prompt._reply())

    async def cancel(self, prompt: Prompt) -> None:
        prompt._end("cancelled", prompt._refusal("The test dismissed the prompt."))

    def _on_message(self, msg: Message) -> Message | bool:
        if (
            msg.message_type != MessageType.METHOD_CALL
            or msg.path != self.object_path
            or msg.interface != AGENT_INTERFACE
        ):
            return False
        if msg.sender != self._polkit:
            return Message.new_error(msg, "org.freedesktop.DBus.Error.AccessDenied", "not polkit")
        if msg.member == "BeginAuthentication" and msg.signature == "sssa{ss}sa(sa{sv})":
            prompt = Prompt(self, msg)
            self._open[prompt.cookie] = prompt
            self.prompts_seen += 1
            self._prompts.put(prompt)
            return True  # answered later, by the test
        if msg.member == "CancelAuthentication" and msg.signature == "s":
            cancelled = self._open.get(msg.body[0])
            if cancelled is not None and cancelled.outcome is None:
                cancelled._end("withdrawn", cancelled._refusal("polkit withdrew the prompt."))
            return Message.new_method_return(msg)
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", msg.member or "")


# --------------------------------------------------------------------------
# The fixture's object


class PolkitAgents:
    """What the ``polkit_agent`` fixture hands out: agents and callers,
    all ended by :meth:`close`."""

    def __init__(self, bus: DBusDaemon, *, pythonpath: str | None = None) -> None:
        let_polkit_call_agents(bus)
        self.bus_address = bus.address
        self.pythonpath = pythonpath
        self._loop = _Loop()
        self._agents: list[Agent] = []
        self._callers: list[Caller] = []

    def spawn_caller(self, user: str = "nobody") -> Caller:
        """A new :class:`~.polkitcaller.Caller` of ``user``, on the bus and ready."""
        caller = spawn_caller(self.bus_address, pythonpath=self.pythonpath, user=user)
        self._callers.append(caller)
        return caller

    @contextlib.contextmanager
    def for_process(self, pid: int) -> Iterator[Agent]:
        """An agent registered for process ``pid`` for the ``with`` block;
        prompts still open at the end are cancelled."""
        agent = Agent(self._loop, self.bus_address, pid)
        self._agents.append(agent)
        body_failed = True
        try:
            self._loop.run(agent.register())
            yield agent
            body_failed = False
        finally:
            self._agents.remove(agent)
            try:
                self._loop.run(agent.unregister())
            except Exception:
                if not body_failed:  # never hide the block's own exception
                    raise

    def close(self) -> None:
        """Unregister every agent, end every caller, stop the agents' loop."""
        try:
            for agent in self._agents:
                with contextlib.suppress(Exception):
                    self._loop.run(agent.unregister())
            for caller in self._callers:
                caller.close()
        finally:
            self._loop.close()
