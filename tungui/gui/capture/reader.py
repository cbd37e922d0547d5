"""The capture stream, read on a thread of its own for the packet window.

The helper streams packets to this window alone (StartCapture); the thread
reads the stream and hands batches to the GUI thread when it can take them.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading

from PySide6.QtCore import QObject, Signal

from tungui.packets.pcapng import CaptureWriter
from tungui.packets.stream import MESSAGE_MAX, Packet, ask_rate, parse_message, write_packets


class StreamReader(QObject):
    """Reads a capture stream on a thread; the GUI thread takes packets when it can.

    The thread walks every message and writes every packet to the capture
    file, if there is one; for the list it keeps at most ``pending_max``
    packets waiting, the newest, and counts the ones it let go, so neither
    memory nor the GUI thread's work grows with the packet rate.  Only one
    ``ready`` signal is ever on its way.

    Args:
        stream: the socket StartCapture returned.
        pending_max: packets kept waiting for the GUI thread.
    """

    #: Packets wait to be taken (:meth:`take`).
    ready = Signal()
    #: The stream ended (the helper stopped, or the device went away).
    ended = Signal()

    def __init__(
        self, stream: socket.socket, parent: QObject | None = None, *, pending_max: int = 2_000
    ) -> None:
        super().__init__(parent)
        self._stream = stream
        self._stopping = False
        self._lock = threading.Lock()
        self._pending: collections.deque[Packet] = collections.deque(maxlen=pending_max)
        self._notified = False
        self._writer: tuple[CaptureWriter, int] | None = None
        #: Packets that came faster than the list took them, let go.
        self.skipped = 0
        #: Packets written to the capture file.
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="tungui-capture", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self) -> None:
        """Close the stream (the helper's capture ends with it) and wait."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._stream.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._stream.close()

    def ask_rate(self, max_rate: int) -> None:
        """Ask the helper for at most ``max_rate`` packets a second (0: every packet)."""
        with contextlib.suppress(OSError):  # the stream has ended
            ask_rate(self._stream, max_rate)

    def write_to(self, writer: CaptureWriter | None, interface: int = 0) -> None:
        """Write every packet from now on with ``writer`` (None: stop writing)."""
        with self._lock:
            self._writer = None if writer is None else (writer, interface)

    def take(self) -> list[Packet]:
        """The packets waiting, oldest first (GUI thread)."""
        with self._lock:
            packets = list(self._pending)
            self._pending.clear()
            self._notified = False
        return packets

    def _run(self) -> None:
        self._stream.settimeout(0.2)
        while not self._stopping:
            try:
                message = self._stream.recv(MESSAGE_MAX)
            except TimeoutError:
                continue
            except OSError:
                break
            if not message:
                break
            self._arrived(parse_message(message))
        if not self._stopping:
            self.ended.emit()

    def _arrived(self, packets: list[Packet]) -> None:
        if not packets:
            return
        with self._lock:
            if self._writer is not None:
                write_packets(*self._writer, packets)
                self.written += len(packets)
            pending = self._pending
            self.skipped += max(0, len(pending) + len(packets) - (pending.maxlen or 0))
            pending.extend(packets)
            notify, self._notified = not self._notified, True
        if notify:
            self.ready.emit()
