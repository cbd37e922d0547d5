"""D-Bus calls made synchronously, each on its own connection (the fixtures and most
tests are not async).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from .errors import DBusCallError
from .names import DBUS_NAME, DBUS_PATH

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, even when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _call(
    address: str,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str,
    body: Sequence[Any],
    timeout: float,
) -> list[Any]:
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    try:
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination=destination,
                    path=path,
                    interface=interface,
                    member=member,
                    signature=signature,
                    body=list(body),
                )
            ),
            timeout,
        )
    finally:
        bus.disconnect()
        # Collect the reader's end-of-stream, or asyncio logs it as a
        # "Future exception was never retrieved" at exit.
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        message = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusCallError(reply.error_name or "(no error name)", message)
    return list(reply.body)


def bus_call(
    address: str,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
    *,
    timeout: float = 5.0,
) -> list[Any]:
    """One method call on its own connection (as the calling process's user).

    Returns the reply's body; raises :class:`DBusCallError` for an error reply.
    """
    return run_coroutine(
        _call(address, destination, path, interface, member, signature, body, timeout)
    )


def dbus_daemon_call(address: str, member: str, signature: str = "", *body: Any) -> list[Any]:
    """Call a method of the bus daemon itself (org.freedesktop.DBus)."""
    return bus_call(address, DBUS_NAME, DBUS_PATH, DBUS_NAME, member, signature, body)


def name_has_owner(address: str, name: str) -> bool:
    return bool(dbus_daemon_call(address, "NameHasOwner", "s", name)[0])


def name_owner_pid(address: str, name: str) -> int | None:
    """The pid of the process that owns ``name``, or None when nobody does."""
    try:
        return int(dbus_daemon_call(address, "GetConnectionUnixProcessID", "s", name)[0])
    except DBusCallError as exc:
        if exc.name == "org.freedesktop.DBus.Error.NameHasNoOwner":
            return None
        raise
