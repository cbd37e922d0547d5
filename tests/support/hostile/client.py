"""A hostile local user's client of the helper, run as ``nobody`` (see processes.py).

Uses dbus-fast and the standard library only, never tungui or
tungui_helper: it is what any local user could write.  It talks to root
over its pipes:

1. stdin, one line: the settings as JSON (:class:`Settings`);
2. it opens its connections and prints ``ready``;
3. stdin, a line ``go``: it runs for ``seconds``, or until stdin closes;
4. it prints one JSON line: what it sent and what came back (:class:`Tally`).

Two modes.  ``soak``: each bus connection walks at random, from the seed,
over well-formed calls, malformed calls, huge arguments, messages carrying
fds and short-lived connections (:mod:`.messages` builds them),
paced to ``rate`` messages a second per process, with one huge message
every ``huge_interval`` seconds at the process's own phase; beside them,
slow readers on plain sockets send bursts of calls and leave the replies
unread for seconds.
``flood``: each connection keeps ``window`` calls to the free methods in
flight, as fast as the bus answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import BusType, Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from .messages import Mischief, Outgoing
from .reader import SlowReader
from .values import Contract, marshals_unicode

#: Calls unanswered this long count as unanswered; so do those pending at the end.
REPLY_TIMEOUT = 10.0
#: Calls one soak connection leaves in flight at most.
MAX_PENDING = 16
#: What a traceback in an error's text looks like: its header, or a frame
#: (dbus-fast 1.84 sends a list of frames, without the header).
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+')
#: Huge messages each process opens with, one per process in turn, at their
#: biggest: a name of control bytes (a repr() of it is 4x bigger than the bus
#: allows), a hundred thousand addresses, a key of control bytes.
OPENING = ("name", "addresses", "unknown-key")
#: Methods of the standard interfaces, counted by name like the helper's own.
STANDARD = ("Introspect", "Get", "GetAll", "Set", "Ping", "GetMachineId")
#: Kinds of traffic drawn at random, and their weights.
WEIGHTS = {"call": 40, "malformed": 35, "fds": 18, "churn": 7}
#: Every kind: huge messages come on a schedule instead.
KINDS = (*WEIGHTS, "huge")


@dataclass
class Settings:
    """What root asks of one hostile process."""

    contract: Contract
    mode: str = "soak"
    seed: int = 0
    process: int = 0
    seconds: float = 10.0
    connections: int = 3
    slow_readers: int = 1
    rate: float = 30.0
    window: int = 8
    huge_bytes: int = 4_000_000
    biggest_bytes: int = 9_500_000
    huge_items: int = 100_000
    huge_interval: float = 2.0
    #: Seconds after "go" before this process's first huge message: processes
    #: take turns, so that two huge messages do not reach the helper together.
    huge_phase: float = 0.0
    kinds: tuple[str, ...] = KINDS

    @classmethod
    def from_json(cls, text: str) -> Settings:
        raw: dict[str, Any] = json.loads(text)
        contract = raw.pop("contract")
        contract["free"] = tuple(contract["free"])
        contract["targets"] = tuple(contract["targets"])
        raw["kinds"] = tuple(raw.get("kinds", KINDS))
        return cls(contract=Contract(**contract), **raw)


@dataclass
class Tally:
    """What a process sent and got back; printed as JSON at the end."""

    process: int
    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    connections: Counter[str] = field(default_factory=Counter)
    fds_sent: int = 0
    longest_error: int = 0
    longest_error_name: str = ""
    tracebacks: int = 0
    unanswered: int = 0
    calls_answered: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: Each huge message: when it was sent (CLOCK_MONOTONIC, which root shares), what it was.
    huge: list[tuple[float, str]] = field(default_factory=list)

    def answer(self, member: str, reply: Message | None, contract: Contract) -> None:
        """Count one reply (closing any fds it carried)."""
        if reply is None:
            return
        for fd in reply.unix_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.calls_answered += 1
        known = member if member in contract.members or member in STANDARD else "(other)"
        if reply.message_type == MessageType.ERROR:
            text = str(reply.body[0]) if reply.body and isinstance(reply.body[0], str) else ""
            if len(text) > self.longest_error:
                self.longest_error = len(text)
                self.longest_error_name = f"{member}: {reply.error_name}"
            self.tracebacks += bool(TRACEBACK.search(text))
            self.answers[f"{known} {reply.error_name}"] += 1
        else:
            self.answers[f"{known} ok"] += 1

    def as_json(self) -> str:
        return json.dumps(vars(self), sort_keys=True)


class Client:
    """One hostile process: its connections, its pace, its tally."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.address = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
        self.tally = Tally(settings.process)
        self.unicode = marshals_unicode()
        self.stop = asyncio.Event()
        self.deadline = 0.0
        self.next_huge = 0.0
        self.opening = OPENING[settings.process % len(OPENING)]

    def mischief(self, name: str) -> Mischief:
        """A connection's message builder, seeded from the run's seed and its own name."""
        s = self.settings
        rng = random.Random(f"{s.seed}/{s.process}/{name}")
        return Mischief(
            rng,
            s.contract,
            unicode=self.unicode,
            huge_bytes=s.huge_bytes,
            biggest_bytes=s.biggest_bytes,
            huge_items=s.huge_items,
        )

    def done(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def huge_due(self) -> bool:
        """Whether this process may send a huge message now: one every
        ``huge_interval``, at its phase, or as soon as it can after."""
        now = time.monotonic()
        if now < self.next_huge:
            return False
        self.next_huge += self.settings.huge_interval
        if self.next_huge <= now:
            self.next_huge = now + self.settings.huge_interval
        return True

    async def connect(self) -> MessageBus:
        bus = MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
        await bus.connect()
        self.tally.connections["opened"] += 1
        return bus

    async def pause(self, rng: random.Random) -> None:
        """Wait so that the process's connections together send ``rate`` messages a second."""
        interval = self.settings.connections / self.settings.rate
        await asyncio.sleep(interval * rng.uniform(0.5, 1.5))

    async def run(self, sessions: list[Session], readers: list[SlowReader]) -> None:
        started = time.monotonic()
        self.deadline = started + self.settings.seconds
        self.next_huge = started + self.settings.huge_phase
        tasks = [asyncio.ensure_future(s.run()) for s in sessions]
        tasks += [asyncio.ensure_future(r.run()) for r in readers]
        await asyncio.gather(*tasks)
        self.tally.seconds = time.monotonic() - started
        times = os.times()
        self.tally.cpu_seconds = times.user + times.system


class Session:
    """One bus connection of the client; a new one is opened when the bus drops it."""

    def __init__(self, client: Client, index: int, bus: MessageBus) -> None:
        self.client = client
        self.index = index
        self.bus: MessageBus | None = bus
        self.mischief = client.mischief(f"session{index}")
        self.pending: set[asyncio.Future[None]] = set()

    async def run(self) -> None:
        try:
            if self.client.settings.mode == "flood":
                await self.flood()
            else:
                await self.soak()
            await self.finish()
        finally:
            if self.bus is not None:
                self.bus.disconnect()

    async def soak(self) -> None:
        """Until the time is up: a huge message when one is due, else a kind at random."""
        client, rng = self.client, self.mischief.rng
        kinds = [k for k in WEIGHTS if k in client.settings.kinds]
        weights = [WEIGHTS[k] for k in kinds]
        huge = "huge" in client.settings.kinds
        while not client.done():
            if huge and client.huge_due():
                await self.send(self.build("huge"))
            elif kinds:
                kind = rng.choices(kinds, weights)[0]
                if kind == "churn":
                    await self.churn()
                else:
                    await self.send(self.build(kind))
            await client.pause(rng)

    def build(self, kind: str) -> Outgoing:
        if kind == "huge":
            if not self.client.opening:
                return self.mischief.huge()
            variant, self.client.opening = self.client.opening, ""
            return self.mischief.huge(variant, biggest=True)
        builders = {
            "call": self.mischief.well_formed,
            "malformed": self.mischief.malformed,
            "fds": self.mischief.with_fds,
        }
        return builders[kind]()

    async def send(self, out: Outgoing) -> None:
        """Send one message; a call's reply is awaited in the background, unless it
        carries fds (ours stay open until then) or wants no reply."""
        tally = self.client.tally
        tally.sent[out.label] += 1
        tally.fds_sent += len(out.fds)
        if out.kind == "huge":
            tally.huge.append((time.monotonic(), f"{out.label} {out.message.member} {out.detail}"))
        bus = await self.connected()
        msg = out.message
        try:
            if msg.message_type != MessageType.METHOD_CALL:
                await bus.send(msg)
            elif out.fds or int(msg.flags) & int(MessageFlag.NO_REPLY_EXPECTED):
                await self.call(bus, msg)
            else:
                if len(self.pending) >= MAX_PENDING:
                    await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.ensure_future(self.call(bus, msg))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        except (OSError, EOFError) as exc:
            await self.lost(bus, exc)
        finally:
            for fd in out.fds:
                os.close(fd)

    async def call(self, bus: MessageBus, msg: Message) -> None:
        member = msg.member or ""
        try:
            reply = await asyncio.wait_for(bus.call(msg), REPLY_TIMEOUT)
        except TimeoutError:
            self.client.tally.answers[f"{member} (no answer in {REPLY_TIMEOUT:g} s)"] += 1
            self.client.tally.unanswered += 1
            return
        except (OSError, EOFError) as exc:
            await self.lost(bus, exc)
            return
        self.client.tally.answer(member, reply, self.client.settings.contract)

    async def lost(self, bus: MessageBus, exc: BaseException) -> None:
        """The bus dropped this connection (a message of ours it refused): note it, go on."""
        if bus is self.bus:
            self.client.tally.connections[f"lost ({type(exc).__name__})"] += 1
            self.bus = None

    async def connected(self) -> MessageBus:
        """This session's connection, a new one if the bus dropped the last."""
        if self.bus is None or not self.bus.connected:
            self.bus = await self.client.connect()
        return self.bus

    async def churn(self) -> None:
        """A connection that asks to be kept informed, starts a call needing polkit, and leaves."""
        client, rng = self.client, self.mischief.rng
        bus = await client.connect()
        contract = client.settings.contract
        for member, signature, body in (
            ("Subscribe", "", []),
            ("WatchStatistics", "u", [rng.choice([0, 100, 1000, 100000])]),
        ):
            if member in contract.members:
                await bus.send(self.mischief.message(member, signature, body))
        if "CreateDevice" in contract.members:
            spec = self.mischief.spec("CreateDevice")
            flags = int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
            await bus.send(self.mischief.message("CreateDevice", "a{sv}", [spec], flags=flags))
        await asyncio.sleep(rng.uniform(0, 0.05))
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
        client.tally.sent["churn/leave"] += 1
        client.tally.connections["left on purpose"] += 1

    async def flood(self) -> None:
        async def worker(mischief: Mischief) -> None:
            while not self.client.done():
                bus = await self.connected()
                out = mischief.free_call()
                self.client.tally.sent[out.label] += 1
                await self.call(bus, out.message)

        workers = [self.client.mischief(f"session{self.index}/{w}") for w in range(self.window)]
        await asyncio.gather(*(worker(m) for m in workers))

    @property
    def window(self) -> int:
        return self.client.settings.window

    async def finish(self) -> None:
        """Give calls still in flight a last chance; count the rest as unanswered."""
        if self.pending:
            _done, late = await asyncio.wait(self.pending, timeout=REPLY_TIMEOUT)
            for task in late:
                task.cancel()
            self.client.tally.unanswered += len(late)
            if late:
                self.client.tally.answers["(unanswered at the end)"] += len(late)


async def amain(settings: Settings) -> Tally:
    client = Client(settings)
    sessions = [Session(client, i, await client.connect()) for i in range(settings.connections)]
    readers = [SlowReader(client, i) for i in range(settings.slow_readers)]
    loop = asyncio.get_running_loop()
    go = asyncio.Event()

    def read_stdin() -> None:
        # A thread of its own, never joined: a line "go", then a line or EOF to stop.
        ready = sys.stdin.readline().strip() == "go"
        loop.call_soon_threadsafe(go.set if ready else client.stop.set)
        sys.stdin.readline()
        loop.call_soon_threadsafe(client.stop.set)

    print("ready", flush=True)
    threading.Thread(target=read_stdin, daemon=True).start()
    await asyncio.wait(
        [asyncio.ensure_future(go.wait()), asyncio.ensure_future(client.stop.wait())],
        return_when=asyncio.FIRST_COMPLETED,
    )
    if go.is_set():
        await client.run(sessions, readers)
    return client.tally


def main() -> None:
    settings = Settings.from_json(sys.stdin.readline())
    tally = asyncio.run(amain(settings))
    print(tally.as_json(), flush=True)


if __name__ == "__main__":
    main()
