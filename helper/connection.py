"""The helper's connection to the system bus, hardened against what callers send.

dbus-fast's :class:`MessageBus` with two changes, made where every message
passes, so no handler can forget them (and, on dbus-fast 1.84, messages
with several flags are read, see :func:`accept_every_flag`):

- **Received file descriptors are closed.**  The connection negotiates fd
  passing (replies carry capture streams and listings), and then any caller
  may attach up to 16 fds to any message: dbus-fast keeps them in
  ``Message.unix_fds`` and never closes them, and no method of the helper
  takes one.  A few dozen such messages would use up the helper's
  descriptors, and ``/dev/net/tun``, capture sockets and memfds would fail
  for everyone.  Every message dbus-fast reads goes through
  ``_process_message``: method calls to any path and interface, signals,
  method returns and errors, including the replies to the helper's own calls
  (dbus-fast hands those to a future from there, sometimes without calling
  the message handlers).  Once a message has been handled, its fds are
  closed.  A message dbus-fast cannot unmarshal ends the connection
  (dbus-fast 1.84 to 5.x), taking its fds with the process.
- **A full socket means "wait until writable".**  dbus-fast's writer (1.84
  to 5.x) takes the ``EAGAIN`` of a full socket for a broken connection and
  drops it.  The bus daemon stops reading a connection whose messages it
  still holds for slow readers (``max_incoming_bytes``), so a burst of
  replies to callers that do not read would cost the helper its connection,
  and with it every user's transient devices and captures.  Here messages
  wait in order until the socket takes them.  What waits is bounded by the
  caps on calls in flight (a call holds its slot until its reply is
  written, see :mod:`.dispatch`) and by sending at most one signal of each
  kind at a time (see :mod:`.service`).  The dispatcher starts no call while
  messages wait here (:meth:`HelperBus.when_written`): a reply queued behind
  others waits for the bus daemon to read them all, so calls wait in their
  users' lines instead, where each keeps its turn.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dbus_fast import BusType, Message, MessageFlag
from dbus_fast.aio import MessageBus
from dbus_fast.constants import MESSAGE_FLAG_MAP

log = logging.getLogger(__name__)


def accept_every_flag() -> None:
    """Let dbus-fast read a message whatever flags it carries.

    dbus-fast before 2.x (Debian 12 has 1.84) looks a message's flags up in
    a table of the single flags, so a call with two of them (no reply
    expected and interactive authorization: 5) raises KeyError in the
    reader, which ends the connection: one such call from anyone would
    take the helper off the bus.  Newer releases fall back to
    ``MessageFlag(value)``; this gives the table every value a flags byte
    can hold, which the specification says to accept (unknown flags are
    ignored).
    """
    for value in range(256):
        MESSAGE_FLAG_MAP.setdefault(value, MessageFlag(value))


accept_every_flag()


@dataclass
class _Outgoing:
    """A marshalled message on its way out."""

    data: memoryview
    #: Sent with the first byte that goes out, then None.
    fds: list[int] | None
    sent: asyncio.Future[None]


class HelperBus(MessageBus):
    """A MessageBus that closes the fds it receives and waits out a full socket."""

    def __init__(
        self,
        bus_address: str | None = None,
        bus_type: BusType = BusType.SYSTEM,
        *,
        negotiate_unix_fd: bool = False,
    ) -> None:
        super().__init__(
            bus_address=bus_address, bus_type=bus_type, negotiate_unix_fd=negotiate_unix_fd
        )
        self._outgoing: deque[_Outgoing] = deque()
        self._waiting_writable = False
        self._when_written: list[Callable[[], None]] = []

    # -------------------------------------------------------------- reading

    def _process_message(self, msg: Message) -> None:
        try:
            super()._process_message(msg)
        finally:
            fds = msg.unix_fds
            if fds:
                # A new list, never .clear(): a Message built without fds
                # shares dbus-fast's default list.
                msg.unix_fds = []
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    # -------------------------------------------------------------- writing

    def when_written(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` once no message waits for the socket.

        Returns:
            False, without calling it, if none waits now.
        """
        if not self._outgoing:
            return False
        self._when_written.append(callback)
        return True

    def _written(self) -> None:
        callbacks, self._when_written = self._when_written, []
        for callback in callbacks:
            callback()

    @property
    def backlog(self) -> int:
        """Bytes waiting for the socket to take them."""
        return sum(len(out.data) for out in self._outgoing)

    # dbus-fast's own send returns this future too; its base class says None.
    def send(self, msg: Message) -> asyncio.Future[None]:  # type: ignore[override]
        """Queue ``msg``; the future is done once the socket has taken all of it.

        Raises nothing for a full socket: the message waits its turn.  The
        future fails if the connection ends first.
        """
        if self.unique_name is None:
            # Still connecting: dbus-fast sends Hello its own way.
            return super().send(msg)
        if not msg.serial:
            msg.serial = self.next_serial()
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[None] = loop.create_future()
        if self._disconnected or self._user_disconnect:
            sent.set_exception(ConnectionError("the bus connection has ended"))
            # Nobody need look at it: the helper learns of the end elsewhere.
            sent.exception()
            return sent
        negotiate = bool(self._negotiate_unix_fd)
        fds = list(msg.unix_fds) if msg.unix_fds and negotiate else None
        self._outgoing.append(_Outgoing(memoryview(msg._marshall(negotiate)), fds, sent))
        if not self._waiting_writable:
            self._write()
        return sent

    def _write(self) -> None:
        sock = self._sock
        assert sock is not None  # connected: send() queues nothing before
        while self._outgoing:
            out = self._outgoing[0]
            try:
                if out.fds:
                    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", out.fds))]
                    written = sock.sendmsg([out.data], ancillary)
                else:
                    written = sock.send(out.data)
            except (BlockingIOError, InterruptedError):
                self._wait_writable()
                return
            except OSError as exc:
                self._finalize(exc)
                return
            out.fds = None  # they went with the first byte
            if written < len(out.data):
                out.data = out.data[written:]
                self._wait_writable()
                return
            self._outgoing.popleft()
            if not out.sent.done():
                out.sent.set_result(None)
        if self._waiting_writable:
            self._waiting_writable = False
            self._loop.remove_writer(self._socket_fd)
            log.debug("the bus socket takes messages again")
        self._written()

    def _wait_writable(self) -> None:
        if not self._waiting_writable:
            self._waiting_writable = True
            self._loop.add_writer(self._socket_fd, self._write)
            log.debug("the bus socket is full; %d bytes wait", self.backlog)

    @property
    def _socket_fd(self) -> int:
        fd = self._fd
        assert isinstance(fd, int)
        return fd

    async def wait_for_disconnect(self) -> None:
        """Return when the connection has ended (raise if it broke); typed for the callers."""
        await super().wait_for_disconnect()  # type: ignore[no-untyped-call]

    def _finalize(self, err: Exception | None = None) -> None:
        super()._finalize(err)
        self._waiting_writable = False
        while self._outgoing:
            sent = self._outgoing.popleft().sent
            if sent.done():
                continue
            if err is None or self._user_disconnect:
                sent.set_result(None)
            else:
                sent.set_exception(err)
                sent.exception()  # retrieved: the end is reported once, elsewhere
        self._written()
