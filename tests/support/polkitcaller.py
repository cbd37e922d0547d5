"""A process of ``nobody`` that calls the helper when the test says so.

polkit asks about the caller's process, so a test that holds a password
prompt open (polkitagent.py) needs a caller that lives on between calls and
whose pid it knows.  :class:`Caller` is such a process: each
:meth:`Caller.call` sends one request (a line of JSON) to it, it makes the
D-Bus call (with ALLOW_INTERACTIVE_AUTHORIZATION unless told not to, so the
helper lets polkit prompt) and answers with a line of JSON when the reply
comes.  Calls run concurrently; :class:`PendingCall` waits for one.

Standard library and dbus-fast only, never the project's own code.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

from dbus_fast import Variant

from .errors import DBusCallError, StackError
from .names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH
from .nobody import spawn_nobody_python
from .processes import terminate
from .waiting import DEFAULT_TIMEOUT


def _to_json(value: Any) -> Any:
    """A D-Bus value as JSON; variants, bytes and dicts tagged."""
    if isinstance(value, Variant):
        return {"variant": [value.signature, _to_json(value.value)]}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {"dict": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    """The inverse of :func:`_to_json`."""
    if isinstance(value, dict):
        ((kind, inner),) = value.items()
        if kind == "variant":
            return Variant(inner[0], _from_json(inner[1]))
        if kind == "bytes":
            return bytes.fromhex(inner)
        return {_from_json(k): _from_json(v) for k, v in inner}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# Runs as nobody (see spawn_nobody_python), with the two functions above.
CALLER_CODE = f"""\
from __future__ import annotations
import asyncio, json, sys
from dbus_fast import BusType, Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

{inspect.getsource(_to_json)}
{inspect.getsource(_from_json)}

def out(answer):
    print(json.dumps(answer), flush=True)

async def one(bus, request):
    try:
        flags = MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION if request["interactive"] else 0
        reply = await bus.call(Message(
            destination=request["destination"], path=request["path"],
            interface=request["interface"], member=request["member"],
            signature=request["signature"], body=_from_json(request["body"]), flags=flags))
    except Exception as exc:
        out({{"id": request["id"], "error": "python." + type(exc).__name__, "message": str(exc)}})
        return
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        out({{"id": request["id"], "error": reply.error_name, "message": text}})
    else:
        out({{"id": request["id"], "body": _to_json(reply.body)}})

async def main():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    out({{"ready": bus.unique_name}})
    loop = asyncio.get_running_loop()
    calls = set()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        call = asyncio.ensure_future(one(bus, json.loads(line)))
        calls.add(call)
        call.add_done_callback(calls.discard)

asyncio.run(main())
"""


class PendingCall:
    """A call the caller made; its reply may wait on a password prompt."""

    def __init__(self, member: str) -> None:
        self.member = member
        self._answer: Future[dict[str, Any]] = Future()

    def answered(self, answer: dict[str, Any]) -> None:
        self._answer.set_result(answer)

    def done(self) -> bool:
        """Whether the reply (or error) has come."""
        return self._answer.done()

    def result(self, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        """The reply's body; :class:`DBusCallError` for an error reply."""
        try:
            answer = self._answer.result(timeout)
        except TimeoutError:
            raise TimeoutError(f"no reply to {self.member} within {timeout:g} s") from None
        if "error" in answer:
            raise DBusCallError(answer["error"], answer["message"])
        return list(_from_json(answer["body"]))

    def error(self, timeout: float = DEFAULT_TIMEOUT) -> DBusCallError:
        """The error the call ended with; AssertionError if it succeeded."""
        try:
            body = self.result(timeout)
        except DBusCallError as exc:
            return exc
        raise AssertionError(f"{self.member} succeeded: {body!r}")


class Caller:
    """A process of a user (nobody) connected to the bus, calling on request.

    ``pid`` is the polkit subject of its calls, ``unique_name`` its bus name.
    A "keep" authorization polkit grants it lasts as long as the process
    (or five minutes): :meth:`close` ends both.
    """

    def __init__(self, proc: subprocess.Popen[str], *, timeout: float = DEFAULT_TIMEOUT):
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.pid = proc.pid
        self._ids = itertools.count(1)
        self._calls: dict[int, PendingCall] = {}
        self._lock = threading.Lock()
        self._ready: Future[str] = Future()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._stderr.extend, args=(proc.stderr,), daemon=True),
            threading.Thread(target=self._read_answers, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            self.unique_name = self._ready.result(timeout)
        except (TimeoutError, StackError):
            self.close()
            raise StackError(f"the caller did not connect:\n{self.stderr_text()}") from None

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            answer = json.loads(line)
            if "ready" in answer:
                self._ready.set_result(answer["ready"])
                continue
            with self._lock:
                call = self._calls.pop(answer["id"])
            call.answered(answer)
        if not self._ready.done():
            self._ready.set_exception(StackError("the caller exited"))
        with self._lock:
            left, self._calls = list(self._calls.values()), {}
        for call in left:
            call.answered({"error": "python.EOFError", "message": "the caller exited"})

    def stderr_text(self) -> str:
        return "".join(self._stderr)

    def call(
        self,
        member: str,
        signature: str = "",
        *body: Any,
        interactive: bool = True,
        destination: str = HELPER_BUS_NAME,
        path: str = HELPER_OBJECT_PATH,
        interface: str = HELPER_INTERFACE,
    ) -> PendingCall:
        """Make the call (the helper's method ``member`` by default, with
        ALLOW_INTERACTIVE_AUTHORIZATION if ``interactive``); returns at once.

        ``body`` holds dbus-fast values (:class:`Variant` for ``v``).
        """
        assert self.proc.stdin is not None
        pending = PendingCall(member)
        with self._lock:
            call_id = next(self._ids)
            self._calls[call_id] = pending
        request = {
            "id": call_id,
            "destination": destination,
            "path": path,
            "interface": interface,
            "member": member,
            "signature": signature,
            "body": _to_json(list(body)),
            "interactive": interactive,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return pending

    def close(self) -> None:
        """End the process, and with it what polkit kept for it."""
        terminate(self.proc)
        for reader in self._readers:
            reader.join(DEFAULT_TIMEOUT)  # both pipes end with the process
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def spawn_caller(bus_address: str, *, pythonpath: str | None, user: str = "nobody") -> Caller:
    """Start a :class:`Caller` as ``user`` and wait until it is on the bus."""
    proc = spawn_nobody_python(
        CALLER_CODE, bus_address=bus_address, user=user, pythonpath=pythonpath
    )
    return Caller(proc)
