"""TUN/TAP devices through ``/dev/net/tun``.

pyroute2 can create tun/tap devices but closes their file descriptor and
ignores TUN_EXCL and TUNSETQUEUE, so the helper talks to the character
device itself (see Documentation/networking/tuntap.rst in the kernel).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Protocol

from tungui_contract.errors import Exists, Failed, InvalidArgument, NotFound
from tungui_contract.limits import Framing

TUN_DEVICE = "/dev/net/tun"

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE

IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000

_IFREQ = struct.Struct("16sH22x")


class Shape(Protocol):
    """What TUNSETIFF is told of a device: a request to make one, or a link as it is."""

    @property
    def framing(self) -> Framing: ...

    @property
    def multi_queue(self) -> bool: ...


def iff_flags(shape: Shape) -> int:
    """The TUNSETIFF flags for a device of this shape (the one place they are built)."""
    framing = shape.framing
    flags = IFF_TUN if framing.mode == "tun" else IFF_TAP
    if not framing.pi:
        flags |= IFF_NO_PI
    if framing.vnet_hdr:
        flags |= IFF_VNET_HDR
    if shape.multi_queue:
        flags |= IFF_MULTI_QUEUE
    return flags


@dataclass
class TunHandle:
    """The open queues of one TUN/TAP device."""

    name: str
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Close every queue; a device without persist then disappears."""
        while self.fds:
            os.close(self.fds.pop())

    def set_persist(self, persist: bool) -> None:
        """Make the device outlive its queues, or not."""
        self._ioctl(TUNSETPERSIST, int(persist), "set persist on")

    def set_owner(self, uid: int) -> None:
        """Let a user open the device without CAP_NET_ADMIN."""
        self._ioctl(TUNSETOWNER, uid, "set the owner of")

    def set_group(self, gid: int) -> None:
        """Let a group open the device without CAP_NET_ADMIN."""
        self._ioctl(TUNSETGROUP, gid, "set the group of")

    def _ioctl(self, request: int, arg: int, what: str) -> None:
        try:
            fcntl.ioctl(self.fds[0], request, arg)
        except OSError as exc:
            raise Failed(f"Could not {what} {self.name}: {os.strerror(exc.errno or 0)}.") from None


def _open_queue(name: str, flags: int) -> tuple[int, str]:
    fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        result = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
    except BaseException:
        os.close(fd)
        raise
    return fd, _IFREQ.unpack(result)[0].rstrip(b"\0").decode("utf-8", "surrogateescape")


def create(name: str, flags: int, queues: int = 1) -> TunHandle:
    """Create a new device (never attach to an existing one).

    Args:
        name: a name or a template such as ``tap%d``.
        flags: TUNSETIFF flags from :func:`iff_flags`.
        queues: how many queues to open (more than one needs IFF_MULTI_QUEUE).

    Returns:
        The handle holding the device's queues; closing it removes the
        device unless persist was set.
    """
    try:
        fd, actual = _open_queue(name, flags | IFF_TUN_EXCL)
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.EEXIST):
            raise Exists(f"A device named {name} already exists.") from None
        if exc.errno == errno.ENFILE:
            raise Failed(f"No free name matches the template {name}.") from None
        if exc.errno == errno.EINVAL:
            raise InvalidArgument(f"The kernel refused the name or options of {name}.") from None
        if exc.errno == errno.ENOENT:
            raise Failed(f"{TUN_DEVICE} is missing; is the tun module loaded?") from None
        raise Failed(f"Could not create {name}: {os.strerror(exc.errno or 0)}.") from None
    handle = TunHandle(actual, [fd])
    try:
        for _ in range(queues - 1):
            handle.fds.append(_open_queue(actual, flags)[0])
    except OSError as exc:
        handle.close()
        raise Failed(
            f"Could not open {queues} queues on {actual}: {os.strerror(exc.errno or 0)}."
        ) from None
    return handle


def attach(name: str, flags: int) -> TunHandle:
    """Open a queue of an existing device, to change its owner, group or persist.

    Args:
        name: the device's name.
        flags: its TUNSETIFF flags (mode and multi-queue must match the device's).
    """
    try:
        fd, actual = _open_queue(name, flags)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Failed(
                f"{name} is held by another program; its owner, group and persist "
                "can only be changed while no program holds it."
            ) from None
        if exc.errno == errno.ENODEV:
            raise NotFound(f"There is no device named {name}.") from None
        raise Failed(f"Could not open {name}: {os.strerror(exc.errno or 0)}.") from None
    return TunHandle(actual, [fd])


def index_of(name: str) -> int | None:
    """The interface index of a name now (None: no such device)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None
