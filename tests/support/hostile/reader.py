"""A slow reader: a connection of nobody's that sends bursts of calls and reads no reply
for seconds (client.py runs a few).

It talks to the bus over a plain socket (authentication, Hello and calls
written by hand, :func:`marshal_call`) so that no library reads the replies
for it: they pile up in dbus-daemon, with the fds of the helper's listings.
dbus-fast and the standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class SlowReader:
    """A connection on a plain socket that sends bursts of calls and reads nothing for seconds."""

    MEMBERS = ("ListDevicesByFileDescriptor", "ListDevices", "Introspect", "GetAll", "Ping")

    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.rng = random.Random(f"{client.settings.seed}/{client.settings.process}/slow{index}")
        self.sock: socket.socket | None = None
        self.serial = 1

    def open(self) -> None:
        """Connect and authenticate; half of them take fds (the helper's listings carry one)."""
        path = self.client.address.split("unix:path=", 1)[1].split(",", 1)[0]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        self.sock = sock
        uid = str(os.getuid()).encode().hex().encode()
        self.say(b"\0AUTH EXTERNAL " + uid, b"OK ")
        if self.rng.random() < 0.5:
            self.say(b"NEGOTIATE_UNIX_FD", b"AGREE_UNIX_FD")
        sock.sendall(b"BEGIN\r\n")
        self.write("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")
        sock.setblocking(False)
        self.client.tally.connections["opened"] += 1

    def say(self, line: bytes, expected: bytes) -> None:
        """One line of the authentication conversation, and the bus's answer."""
        assert self.sock is not None
        self.sock.sendall(line + b"\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("the bus closed the connection while authenticating")
            answer += chunk
        if not answer.startswith(expected):
            raise ConnectionError(f"the bus answered {answer!r} to {line!r}")

    def write(self, destination: str, path: str, interface: str, member: str) -> None:
        assert self.sock is not None
        self.sock.sendall(marshal_call(self.serial, destination, path, interface, member))
        self.serial += 1

    async def run(self) -> None:
        client, rng = self.client, self.rng
        contract = client.settings.contract
        interfaces = {
            "Introspect": "org.freedesktop.DBus.Introspectable",
            "GetAll": "org.freedesktop.DBus.Properties",
            "Ping": "org.freedesktop.DBus.Peer",
        }
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.open)
        assert self.sock is not None
        try:
            # Readers of several processes do not start in step.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.stop.wait(), rng.uniform(0.0, 2.0))
            while not client.done():
                burst = rng.randint(16, 48)
                data = bytearray()
                for _ in range(burst):
                    member = rng.choice(self.MEMBERS)
                    interface = interfaces.get(member, contract.interface)
                    arg = contract.interface if member == "GetAll" else None
                    data += marshal_call(
                        self.serial, contract.bus_name, contract.path, interface, member, arg
                    )
                    self.serial += 1
                    client.tally.sent[f"slow/{member}"] += 1
                await loop.sock_sendall(self.sock, bytes(data))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.stop.wait(), rng.uniform(1.0, 4.0))
                self.drain()
        except OSError as exc:
            client.tally.connections[f"lost ({type(exc).__name__})"] += 1
        finally:
            self.sock.close()

    def drain(self) -> None:
        """Read (and drop) whatever came; fds that came with it are closed by the kernel."""
        assert self.sock is not None
        with contextlib.suppress(BlockingIOError):
            while chunk := self.sock.recv(1 << 20):
                self.client.tally.connections["slow bytes read"] += len(chunk)


def marshal_call(
    serial: int, destination: str, path: str, interface: str, member: str, arg: str | None = None
) -> bytes:
    """A method call as bytes on the wire (little-endian), with no argument or one string.

    For connections that must not read (slow readers): they talk to the bus
    over a plain socket, so no library reads their replies for them.
    """
    body = b"" if arg is None else _string(arg)
    fields: list[tuple[int, str, str]] = [
        (1, "o", path),
        (2, "s", interface),
        (3, "s", member),
        (6, "s", destination),
    ]
    if arg is not None:
        fields.append((8, "g", "s"))
    array = bytearray()
    for code, signature, value in fields:
        array += bytes(-len(array) % 8)  # each field is a struct: 8-aligned
        array += bytes([code, 1]) + signature.encode() + b"\0"
        encoded = value.encode()
        if signature == "g":
            array += bytes([len(encoded)]) + encoded + b"\0"
        else:
            array += bytes(-len(array) % 4) + struct.pack("<I", len(encoded)) + encoded + b"\0"
    # The fixed header is 12 bytes and the array's length 4, so the array
    # starts 8-aligned and the offsets above are right.
    header = b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(array)) + array
    return header + bytes(-len(header) % 8) + body


def _string(text: str) -> bytes:
    encoded = text.encode()
    return struct.pack("<I", len(encoded)) + encoded + b"\0"
