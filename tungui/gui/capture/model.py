"""The packet list's model: the packets kept, decoded once, for the packet window.

It keeps at most ``limit`` packets; older ones make room and are counted,
so memory stays bounded whatever the traffic.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from tungui.packets.decode import decode
from tungui.packets.stream import Packet

AnyIndex = QModelIndex | QPersistentModelIndex

#: Packets the list keeps; older ones make room (and are counted).
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True)
class Row:
    """One packet as the list shows it."""

    number: int
    packet: Packet
    protocol: str
    summary: str


class PacketModel(QAbstractTableModel):
    """The captured packets, newest last, at most ``limit`` of them.

    Args:
        link: "ethernet" for TAP, "ip" for TUN (what the capture carries).
        limit: how many packets to keep.
    """

    HEADERS = ("No.", "Time", "Direction", "Length", "Protocol", "Summary")

    def __init__(
        self, link: str, limit: int = DEFAULT_LIMIT, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.link = link
        self.limit = limit
        self._rows: collections.deque[Row] = collections.deque()
        self._count = 0
        self._first_ns: int | None = None
        #: Packets pushed out of the list to keep it bounded.
        self.pushed_out = 0

    def add(self, packets: Iterable[Packet]) -> None:
        """Append packets, decoding them; drop the oldest beyond the limit."""
        new = []
        for packet in packets:
            self._count += 1
            if self._first_ns is None:
                self._first_ns = packet.timestamp_ns
            decoded = decode(packet.data, link=self.link)
            new.append(Row(self._count, packet, decoded.protocol, decoded.summary))
        if not new:
            return
        if len(new) > self.limit:
            self.pushed_out += len(new) - self.limit
            new = new[-self.limit :]
        overflow = len(self._rows) + len(new) - self.limit
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            for _ in range(overflow):
                self._rows.popleft()
            self.endRemoveRows()
            self.pushed_out += overflow
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self._rows.extend(new)
        self.endInsertRows()

    def clear(self) -> None:
        """Forget every packet."""
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def row(self, index: int) -> Row:
        """One row."""
        return self._rows[index]

    def rows(self) -> list[Row]:
        """Every row kept, oldest first."""
        return list(self._rows)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            return None
        row = self._rows[index.row()]
        first = self._first_ns or row.packet.timestamp_ns
        return (
            str(row.number),
            f"{(row.packet.timestamp_ns - first) / 1e9:.6f}",
            "sent" if row.packet.outgoing else "received",
            str(row.packet.original_length),
            row.protocol,
            row.summary,
        )[index.column()]
