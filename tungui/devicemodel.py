"""The devices as a Qt table model, and the proxy that filters and sorts them.

Rows are the device dicts the helper reports (docs/dbus.md), keyed by
interface index so a rename stays one row.  An update of one device costs
one ``dataChanged``; only new and removed devices change the row set.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QFont, QIcon

from . import icons

Device = dict[str, Any]
AnyIndex = QModelIndex | QPersistentModelIndex

#: Role holding the value columns sort by (numbers sort as numbers).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: Role holding the whole device dict.
DEVICE_ROLE = Qt.ItemDataRole.UserRole + 2


@cache
def user_name(uid: int) -> str:
    """A uid as a user name where one exists; "" for none (-1)."""
    if uid < 0:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@cache
def group_name(gid: int) -> str:
    """A gid as a group name where one exists; "" for none (-1)."""
    if gid < 0:
        return ""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def kind_text(device: Device) -> str:
    """TUN, TAP or Bridge."""
    return {"tun": "TUN", "tap": "TAP", "bridge": "Bridge"}.get(device.get("kind", ""), "")


def state_text(device: Device) -> str:
    """What a person wants to know about the link state."""
    if not device.get("up"):
        return "down"
    operstate = str(device.get("operstate", ""))
    if operstate in ("up", "unknown"):
        return "up"
    if operstate in ("down", "lowerlayerdown", "notpresent"):
        # A TUN/TAP device nobody holds, a bridge with no port up.
        return "up, no carrier"
    return f"up, {operstate}"


def flags_text(device: Device) -> str:
    """The TUN/TAP flags that are set, comma-separated."""
    names = (
        ("persist", "persist"),
        ("pi", "pi"),
        ("vnet_hdr", "vnet_hdr"),
        ("multi_queue", "multi-queue"),
    )
    return ", ".join(label for key, label in names if device.get(key))


def held_text(device: Device) -> str:
    """Who holds a TUN/TAP device open."""
    if device.get("kind") == "bridge":
        return ""
    if device.get("transient"):
        return "tungui"
    if device.get("held"):
        queues = int(device.get("queues_attached", 1))
        return "a program" if queues <= 1 else f"{queues} queues"
    return "no"


@dataclass(frozen=True)
class Column:
    """One column: its header, its text and its sort key."""

    title: str
    text: Callable[[Device], str]
    sort: Callable[[Device], Any] | None = None
    tip: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("Name", lambda d: str(d.get("name", ""))),
    Column("Kind", kind_text),
    Column("State", state_text),
    Column(
        "Flags",
        flags_text,
        tip="TUN/TAP options: persist, packet information, virtio-net header, multi-queue",
    ),
    Column("Owner", lambda d: user_name(int(d.get("owner", -1)))),
    Column("Group", lambda d: group_name(int(d.get("group", -1)))),
    Column("Held by", held_text, tip="Whether a program has the device open"),
    Column("MTU", lambda d: str(d.get("mtu", "")), sort=lambda d: int(d.get("mtu", 0))),
    Column("MAC", lambda d: str(d.get("mac", ""))),
    Column("Addresses", lambda d: ", ".join(d.get("addresses", []))),
    Column("Bridge", lambda d: str(d.get("master", ""))),
)
NAME_COLUMN = 0


class DeviceTableModel(QAbstractTableModel):
    """Every device the helper lists, one row each."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._devices: list[Device] = []
        self._rows: dict[int, int] = {}  # interface index -> row

    # --------------------------------------------------------------- feeding

    def reset(self, devices: Iterable[Device]) -> None:
        """Replace every row (after connecting to the helper)."""
        self.beginResetModel()
        self._devices = list(devices)
        self._reindex()
        self.endResetModel()

    def apply(self, updated: Iterable[Device], removed: Iterable[str]) -> None:
        """Apply one DevicesChanged: changed rows in place, new rows at the end."""
        gone = {name for name in removed}
        new: list[Device] = []
        last = len(COLUMNS) - 1
        for device in updated:
            row = self._rows.get(int(device.get("index", -1)))
            if row is None:
                new.append(device)
                continue
            self._devices[row] = device
            gone.discard(str(device.get("name")))
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        if new:
            first = len(self._devices)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._devices.extend(new)
            for offset, device in enumerate(new):
                self._rows[int(device.get("index", -1))] = first + offset
            self.endInsertRows()
        if gone:
            doomed = sorted(
                (row for row, d in enumerate(self._devices) if d.get("name") in gone),
                reverse=True,
            )
            for row in doomed:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._devices[row]
                self.endRemoveRows()
            if doomed:
                self._reindex()

    def _reindex(self) -> None:
        self._rows = {int(d.get("index", -1)): row for row, d in enumerate(self._devices)}

    # --------------------------------------------------------------- reading

    def device(self, row: int) -> Device:
        """The device dict of a row."""
        return self._devices[row]

    def devices(self) -> list[Device]:
        """Every device, in row order."""
        return list(self._devices)

    def bridges(self) -> list[str]:
        """The names of the bridges."""
        return sorted(str(d["name"]) for d in self._devices if d.get("kind") == "bridge")

    def row_of(self, name: str) -> int | None:
        """The row of the device of that name."""
        for row, device in enumerate(self._devices):
            if device.get("name") == name:
                return row
        return None

    # --------------------------------------------------------------- the model

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._devices)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tip or None
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        device = self._devices[index.row()]
        column = COLUMNS[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return column.text(device)
        if role == SORT_ROLE:
            return column.sort(device) if column.sort else column.text(device).lower()
        if role == DEVICE_ROLE:
            return device
        managed = bool(device.get("managed"))
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.column() == NAME_COLUMN and not managed:
                return (
                    f"{device.get('name')} was not created by tungui; changing it asks for "
                    "administrator authentication every time."
                )
            return column.text(device) or None
        if role == Qt.ItemDataRole.DecorationRole and index.column() == NAME_COLUMN:
            return device_icon(device)
        if role == Qt.ItemDataRole.FontRole and not managed:
            font = QFont()
            font.setItalic(True)
            return font
        return None


def device_icon(device: Device) -> QIcon:
    """The icon of a device's kind."""
    return icons.icon(
        {"tun": "network-vpn", "tap": "network-wired", "bridge": "network-workgroup"}.get(
            str(device.get("kind")), "network-wired"
        )
    )


class DeviceFilterModel(QSortFilterProxyModel):
    """Filters on any column's text, case-insensitively; sorts numbers as numbers."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setSortRole(SORT_ROLE)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def device(self, proxy_row: int) -> Device:
        """The device dict of a row of this proxy."""
        return dict(self.index(proxy_row, 0).data(DEVICE_ROLE))
