"""The devices as a Qt table model, and the proxy that filters and sorts them.

Rows are the devices the helper reports (Device records), keyed by
interface index so a rename stays one row.  An update of one device costs
one ``dataChanged``; only new and removed devices change the row set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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

from tungui.accounts import group_name, user_name
from tungui.gui import icons
from tungui_contract.device import Device

AnyIndex = QModelIndex | QPersistentModelIndex

#: Role holding the value columns sort by (numbers sort as numbers).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: Role holding the whole Device record.
DEVICE_ROLE = Qt.ItemDataRole.UserRole + 2


def kind_text(device: Device) -> str:
    """TUN, TAP or Bridge."""
    return {"tun": "TUN", "tap": "TAP", "bridge": "Bridge"}.get(device.kind, "")


def state_text(device: Device) -> str:
    """What a person wants to know about the link state."""
    if not device.up:
        return "down"
    operstate = device.operstate
    if operstate in ("up", "unknown"):
        return "up"
    if operstate in ("down", "lowerlayerdown", "notpresent"):
        # A TUN/TAP device nobody holds, a bridge with no port up.
        return "up, no carrier"
    return f"up, {operstate}"


def flags_text(device: Device) -> str:
    """The TUN/TAP flags that are set, comma-separated."""
    flags = (
        (device.persist, "persist"),
        (device.pi, "pi"),
        (device.vnet_hdr, "vnet_hdr"),
        (device.multi_queue, "multi-queue"),
    )
    return ", ".join(label for on, label in flags if on)


def held_text(device: Device) -> str:
    """Who holds a TUN/TAP device open."""
    if device.kind == "bridge":
        return ""
    if device.transient:
        return "tungui"
    if device.held:
        queues = device.queues_attached
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
    Column("Name", lambda d: d.name),
    Column("Kind", kind_text),
    Column("State", state_text),
    Column(
        "Flags",
        flags_text,
        tip="TUN/TAP options: persist, packet information, virtio-net header, multi-queue",
    ),
    Column("Owner", lambda d: user_name(d.owner)),
    Column("Group", lambda d: group_name(d.group)),
    Column("Held by", held_text, tip="Whether a program has the device open"),
    Column("MTU", lambda d: str(d.mtu), sort=lambda d: d.mtu),
    Column("MAC", lambda d: d.mac),
    Column("Addresses", lambda d: ", ".join(d.addresses)),
    Column("Bridge", lambda d: d.master),
)
NAME_COLUMN = 0

#: One device's counters: rx packets, rx bytes, rx dropped, rx errors,
#: tx packets, tx bytes, tx dropped, tx errors.
Counters = tuple[int, ...]


def count_text(value: int) -> str:
    """A counter with thousands separators."""
    return f"{value:,}"


def bytes_text(value: float) -> str:
    """Bytes in the units a person reads (kB = 1000 B)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def rate_text(bits_per_second: float) -> str:
    """A bit rate in bit/s, kbit/s, Mbit/s or Gbit/s."""
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if bits_per_second < 1000 or unit == "Gbit/s":
            return (
                f"{bits_per_second:.0f} {unit}"
                if unit == "bit/s"
                else (f"{bits_per_second:.1f} {unit}")
            )
        bits_per_second /= 1000
    return ""


@dataclass(frozen=True)
class StatColumn:
    """A column of live counters: its header, its value, and how to show it."""

    title: str
    value: Callable[[Counters, tuple[float, float, float, float]], float]
    text: Callable[[float], str]
    tip: str = ""


STAT_COLUMNS: tuple[StatColumn, ...] = (
    StatColumn(
        "RX packets", lambda c, r: c[0], lambda v: count_text(int(v)), "Packets the device received"
    ),
    StatColumn(
        "TX packets", lambda c, r: c[4], lambda v: count_text(int(v)), "Packets the device sent"
    ),
    StatColumn("RX bytes", lambda c, r: c[1], bytes_text),
    StatColumn("TX bytes", lambda c, r: c[5], bytes_text),
    StatColumn(
        "Drops",
        lambda c, r: c[2] + c[6],
        lambda v: count_text(int(v)),
        "Packets dropped, received and sent",
    ),
    StatColumn(
        "Errors",
        lambda c, r: c[3] + c[7],
        lambda v: count_text(int(v)),
        "Receive and transmit errors",
    ),
    StatColumn("RX rate", lambda c, r: r[0], rate_text, "Received, bits per second"),
    StatColumn("TX rate", lambda c, r: r[1], rate_text, "Sent, bits per second"),
)
FIRST_STAT_COLUMN = len(COLUMNS)
ALL_COLUMNS = len(COLUMNS) + len(STAT_COLUMNS)
_NO_RATES = (0.0, 0.0, 0.0, 0.0)


class DeviceTableModel(QAbstractTableModel):
    """Every device the helper lists, one row each."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._devices: list[Device] = []
        self._rows: dict[int, int] = {}  # interface index -> row
        self._counters: dict[str, tuple[int, Counters]] = {}  # name -> (time ns, counters)
        # name -> (rx bit/s, tx bit/s, rx packets/s, tx packets/s)
        self._rates: dict[str, tuple[float, float, float, float]] = {}

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
            row = self._rows.get(device.index)
            if row is None:
                new.append(device)
                continue
            self._devices[row] = device
            gone.discard(device.name)
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))
        if new:
            first = len(self._devices)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._devices.extend(new)
            for offset, device in enumerate(new):
                self._rows[device.index] = first + offset
            self.endInsertRows()
        if gone:
            doomed = sorted(
                (row for row, d in enumerate(self._devices) if d.name in gone),
                reverse=True,
            )
            for row in doomed:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._devices[row]
                self.endRemoveRows()
            if doomed:
                self._reindex()

    def apply_statistics(self, timestamp_ns: int, counters: Mapping[str, Counters]) -> None:
        """Take one Statistics tick: new counters, and rates since the last one."""
        for name, values in counters.items():
            previous = self._counters.get(name)
            if previous is not None and timestamp_ns > previous[0]:
                seconds = (timestamp_ns - previous[0]) / 1e9
                old = previous[1]
                self._rates[name] = (
                    max(values[1] - old[1], 0) * 8 / seconds,
                    max(values[5] - old[5], 0) * 8 / seconds,
                    max(values[0] - old[0], 0) / seconds,
                    max(values[4] - old[4], 0) / seconds,
                )
            self._counters[name] = (timestamp_ns, values)
        if self._devices:
            # One signal for the whole block of counter columns.
            self.dataChanged.emit(
                self.index(0, FIRST_STAT_COLUMN),
                self.index(len(self._devices) - 1, ALL_COLUMNS - 1),
                [Qt.ItemDataRole.DisplayRole],
            )

    def counters(self, name: str) -> Counters | None:
        """A device's last counters."""
        entry = self._counters.get(name)
        return None if entry is None else entry[1]

    def rates(self, name: str) -> tuple[float, float, float, float]:
        """A device's rates: rx and tx bit/s, rx and tx packets/s."""
        return self._rates.get(name, _NO_RATES)

    def _reindex(self) -> None:
        self._rows = {d.index: row for row, d in enumerate(self._devices)}

    # --------------------------------------------------------------- reading

    def device(self, row: int) -> Device:
        """The device of a row."""
        return self._devices[row]

    def devices(self) -> list[Device]:
        """Every device, in row order."""
        return list(self._devices)

    def bridges(self) -> list[str]:
        """The names of the bridges."""
        return sorted(d.name for d in self._devices if d.kind == "bridge")

    def row_of(self, name: str) -> int | None:
        """The row of the device of that name."""
        for row, device in enumerate(self._devices):
            if device.name == name:
                return row
        return None

    # --------------------------------------------------------------- the model

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._devices)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else ALL_COLUMNS

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < ALL_COLUMNS:
            return None
        column: Column | StatColumn = (
            COLUMNS[section]
            if section < FIRST_STAT_COLUMN
            else STAT_COLUMNS[section - FIRST_STAT_COLUMN]
        )
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tip or None
        if role == Qt.ItemDataRole.TextAlignmentRole and section >= FIRST_STAT_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        device = self._devices[index.row()]
        if index.column() >= FIRST_STAT_COLUMN:
            return self._stat_data(device, STAT_COLUMNS[index.column() - FIRST_STAT_COLUMN], role)
        column = COLUMNS[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return column.text(device)
        if role == SORT_ROLE:
            return column.sort(device) if column.sort else column.text(device).lower()
        if role == DEVICE_ROLE:
            return device
        managed = device.managed
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.column() == NAME_COLUMN and not managed:
                return (
                    f"{device.name} was not created by tungui; changing it asks for "
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

    def _stat_data(self, device: Device, column: StatColumn, role: int) -> Any:
        name = device.name
        entry = self._counters.get(name)
        if entry is None:
            return None
        value = column.value(entry[1], self._rates.get(name, _NO_RATES))
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return column.text(value)
        if role == SORT_ROLE:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def device_icon(device: Device) -> QIcon:
    """The icon of a device's kind."""
    return icons.icon(
        {"tun": "network-vpn", "tap": "network-wired", "bridge": "network-workgroup"}.get(
            device.kind, "network-wired"
        )
    )


#: Qt 6.9 has beginFilterChange()/endFilterChange() and deprecates
#: invalidateFilter(); Debian 13's Qt is 6.8.
FILTER_CHANGE = hasattr(QSortFilterProxyModel, "beginFilterChange")


class DeviceFilterModel(QSortFilterProxyModel):
    """Filters on the descriptive columns' text, case-insensitively; sorts numbers as numbers.

    The live counters are left out of the filter: they change several times
    a second, and a row should not blink in and out as they do.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self.setSortRole(SORT_ROLE)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_filter(self, text: str) -> None:
        """Show only rows where some descriptive column contains ``text``."""
        if not FILTER_CHANGE:
            self._needle = text.strip().lower()
            self.invalidateFilter()
            return
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        if not isinstance(model, DeviceTableModel):
            return True
        device = model.device(source_row)
        return any(self._needle in column.text(device).lower() for column in COLUMNS)

    def device(self, proxy_row: int) -> Device:
        """The device of a row of this proxy."""
        device = self.index(proxy_row, 0).data(DEVICE_ROLE)
        assert isinstance(device, Device)
        return device
