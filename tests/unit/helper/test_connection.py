"""The helper's bus connection closes the fds messages bring and waits out a full socket.

The connection's socket here is one end of a socketpair (the other end plays
the bus daemon), so the tests run on dbus-fast 1.84 and 5.x alike without a
bus; tests/integration proves the same against the real dbus-daemon.
"""

from __future__ import annotations

import array
import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType

from tungui_helper.connection import HelperBus


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[str]:
    """A bus address something listens on (dbus-fast 1.84 connects in its constructor)."""
    path = tmp_path / "bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    yield f"unix:path={path}"
    server.close()


def _on_socketpair(address: str, sndbuf: int = 4096) -> tuple[HelperBus, socket.socket]:
    """A connected-looking HelperBus whose socket's peer is returned."""
    bus = HelperBus(address, negotiate_unix_fd=True)
    ours, daemon = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    daemon.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    ours.setblocking(False)
    if bus._sock is not None:
        bus._sock.close()
    bus._sock = ours
    bus._fd = ours.fileno()
    bus.unique_name = ":1.1"
    return bus, daemon


def _open_fds(count: int) -> list[int]:
    return [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_fds_of_every_message_are_closed_once_it_is_handled(listening: str) -> None:
    async def scenario() -> None:
        bus, daemon = _on_socketpair(listening)
        seen: list[Any] = []

        def handler(msg: Message) -> bool:
            seen.append(msg.message_type)
            return False

        def reply_callback(reply: Message | None, err: Exception | None) -> None:
            seen.append(("reply", None if reply is None else reply.body))

        bus.add_message_handler(handler)
        # A reply to one of the helper's own calls goes to its callback.
        bus._method_return_handlers[41] = reply_callback
        kinds = [
            Message(
                message_type=MessageType.METHOD_RETURN,
                reply_serial=41,
                signature="s",
                body=["yes"],
                sender=":1.2",
            ),
            Message(message_type=MessageType.SIGNAL, path="/", interface="a.b", member="C"),
            Message(path="/elsewhere", interface="a.b", member="C", sender=":1.3", serial=5),
            Message(
                message_type=MessageType.ERROR,
                reply_serial=99,
                error_name="a.b.Error",
                sender=":1.2",
            ),
        ]
        for msg in kinds:
            fds = _open_fds(3)
            msg.unix_fds = fds
            bus._process_message(msg)
            assert not any(_is_open(fd) for fd in fds), msg.message_type
            assert msg.unix_fds == []
        assert ("reply", ["yes"]) in seen
        bus.disconnect()
        daemon.close()

    asyncio.run(scenario())


def test_a_full_socket_waits_and_keeps_the_order(listening: str) -> None:
    async def scenario() -> None:
        bus, daemon = _on_socketpair(listening)
        # Far more than the socket holds: dbus-fast alone would drop the
        # connection at the first EAGAIN.
        sent = [
            bus.send(Message.new_signal("/", "a.b", "C", "s", [f"{n:04d}" + "x" * 20_000]))
            for n in range(40)
        ]
        # One with fds while others wait: its fds go with its own bytes.
        (fd,) = _open_fds(1)
        sent.append(bus.send(Message.new_signal("/", "a.b", "D", "h", [0], unix_fds=[fd])))
        await asyncio.sleep(0.05)
        assert bus.connected
        assert bus.backlog > 0
        assert not all(s.done() for s in sent)
        received = bytearray()
        passed: list[int] = []
        daemon.setblocking(False)
        while True:
            try:
                data, ancillary, _flags, _addr = daemon.recvmsg(1 << 16, socket.CMSG_SPACE(64))
            except BlockingIOError:
                if all(s.done() for s in sent):
                    break  # all written, all read
                await asyncio.sleep(0.001)
                continue
            received += data
            for _level, _type, fds in ancillary:
                passed.extend(array.array("i", fds))
        assert bus.connected and bus.backlog == 0
        at = [received.find(f"{n:04d}".encode() + b"x" * 16) for n in range(40)]
        assert -1 not in at and at == sorted(at), "every message, in the order sent"
        assert len(passed) == 1
        for received_fd in passed:
            os.close(received_fd)
        os.close(fd)
        bus.disconnect()
        daemon.close()

    asyncio.run(scenario())


def test_it_says_when_the_socket_has_taken_every_message(listening: str) -> None:
    async def scenario() -> None:
        bus, daemon = _on_socketpair(listening)
        assert not bus.when_written(lambda: None), "nothing waits: no call back"
        sent = [
            bus.send(Message.new_signal("/", "a.b", "C", "s", ["x" * 20_000])) for _ in range(20)
        ]
        written: list[bool] = []
        assert bus.when_written(lambda: written.append(all(s.done() for s in sent)))
        await asyncio.sleep(0.05)
        assert not written, "the socket is full"
        daemon.setblocking(False)
        while not written:
            try:
                daemon.recv(1 << 16)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert written == [True], "called back once, when the last was written"
        assert not bus.when_written(lambda: None)
        bus.disconnect()
        daemon.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("flags", [3, 5, 6, 7, 0x80, 0xFF])
def test_a_message_with_several_flags_is_read(flags: int) -> None:
    # dbus-fast 1.84 raised KeyError for any flags byte but the single
    # flags, and a reader that raises ends the helper's connection.
    import io

    from dbus_fast import Message, MessageFlag
    from dbus_fast._private.unmarshaller import Unmarshaller

    import tungui_helper.connection  # noqa: F401  (fills dbus-fast's table)

    sent = Message(
        destination="io.github.tungui.Helper1",
        path="/io/github/tungui/Helper1",
        interface="io.github.tungui.Helper1",
        member="ListDevices",
        serial=1,
    )
    data = bytearray(sent._marshall(False))
    data[2] = flags  # the flags byte of the fixed header
    reader = Unmarshaller(io.BytesIO(bytes(data)))  # type: ignore[arg-type]
    received = reader.unmarshall()
    assert received is not None
    assert int(received.flags) == flags
    assert received.flags & MessageFlag.NO_REPLY_EXPECTED == flags & 1
