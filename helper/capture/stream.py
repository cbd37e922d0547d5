"""What every capture has: the stream only its caller holds, its counters, its end.

Each capture owns one end of a ``SOCK_SEQPACKET`` socket pair; the caller
gets the other end, and only that, over D-Bus fd passing, and walks the
packets itself, unprivileged.  The stream's buffer is fixed: a message the
reader is too slow for is dropped and its packets counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence

from tungui_contract.capture import CAPTURE_HEADER, CAPTURE_RATE

from .tpacket import BLOCK_SIZE, BLOCKS

log = logging.getLogger(__name__)

SO_SNDBUFFORCE = 32
#: Room in the stream for all blocks of the ring.
BUFFER = (BLOCK_SIZE + 64) * BLOCKS
_U32 = 0xFFFFFFFF


class Capture:
    """The base of both capture sources.

    Args:
        device: the interface name.
        client: the caller's unique bus name.
        on_end: called once when the capture ends.
    """

    def __init__(self, device: str, client: str, on_end: Callable[[Capture], None]) -> None:
        self.device = device
        self.client = client
        self._on_end = on_end
        #: Packets lost so far (kernel, or a reader too slow).
        self.dropped = 0
        #: Packets left out by sampling so far.
        self.sampled = 0
        #: Packets sent on the stream.
        self.sent = 0
        self._ended = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The helper is root: past net.core.wmem_max, so the stream holds
        # as much as the ring.
        try:
            self._ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, BUFFER)
        except OSError:
            self._ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        self._ours.setblocking(False)

    def start(self) -> None:
        """Begin streaming (after the caller has its end)."""
        self._loop = asyncio.get_running_loop()
        # Readable at the end of the stream (the reader closed its end), or
        # when the reader asks for another rate (CAPTURE_RATE).
        self._loop.add_reader(self._ours.fileno(), self._from_reader)
        self._begin()

    def stop(self) -> None:
        """End the capture and free everything it holds."""
        if self._ended:
            return
        self._ended = True
        if self._loop is not None:
            self._loop.remove_reader(self._ours.fileno())
        self._end()
        self._ours.close()
        self.theirs.close()
        self._on_end(self)

    def _begin(self) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

    def _from_reader(self) -> None:
        try:
            data = self._ours.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.debug("capture of %s for %s: reader closed", self.device, self.client)
            self.stop()
        elif len(data) == CAPTURE_RATE.size:
            (max_rate,) = CAPTURE_RATE.unpack(data)
            log.debug("capture of %s: at most %s packets/s", self.device, max_rate or "all")
            self.set_max_rate(max_rate)
        # Anything else the reader writes means nothing: it is let go.

    def set_max_rate(self, max_rate: int) -> None:
        """Sample above ``max_rate`` packets a second from now on (0: every packet)."""
        raise NotImplementedError

    def _header(self, kind: int) -> bytes:
        return CAPTURE_HEADER.pack(min(self.dropped, _U32), min(self.sampled, _U32), kind, 0)

    def _send(self, buffers: Sequence[bytes | memoryview], packets: int) -> bool:
        """Send one message; False when the stream is gone."""
        try:
            self._ours.sendmsg(buffers)
        except BlockingIOError:
            self.dropped += packets  # the reader is behind: drop, count, go on
        except OSError:
            return False
        else:
            self.sent += packets
        return True
