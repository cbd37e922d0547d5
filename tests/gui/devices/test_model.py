"""The device table model and its filter/sort proxy."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester

import tungui.gui.devices.model as model_module
from tests.support.devicedicts import listed_tap
from tungui.gui.devices.ipcommands import ip_commands
from tungui.gui.devices.model import COLUMNS, DEVICE_ROLE, DeviceFilterModel, DeviceTableModel
from tungui_contract.device import Device


def tap(index: int, name: str, **values: Any) -> Device:
    """A listed TAP device, as the client library hands it over."""
    return Device.from_wire(listed_tap(index, name, **values))


def column(title: str) -> int:
    return [c.title for c in COLUMNS].index(title)


def test_model_is_a_well_behaved_qt_model() -> None:
    model = DeviceTableModel()
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.reset([tap(2, "tap0"), tap(3, "tap1")])
    model.apply([tap(3, "tap1", mtu=9000), tap(4, "tap2")], ["tap0"])
    model.apply([], ["tap2", "nosuch"])
    assert [d.name for d in model.devices()] == ["tap1"]


def test_an_update_changes_one_row_and_keeps_a_renamed_device_as_one_row() -> None:
    model = DeviceTableModel()
    model.reset([tap(2, "tap0"), tap(3, "tap1")])
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, *_: changed.append((a.row(), b.row())))
    model.apply([tap(3, "lab1", up=True, operstate="unknown")], [])
    assert changed == [(1, 1)]
    assert model.rowCount() == 2
    assert model.index(1, column("Name")).data() == "lab1"
    assert model.index(1, column("State")).data() == "up"


def test_display_texts() -> None:
    model = DeviceTableModel()
    model.reset(
        [
            tap(
                2,
                "tap0",
                owner=0,
                group=0,
                vnet_hdr=True,
                persist=True,
                held=True,
                queues_attached=1,
                addresses=["192.0.2.1/24"],
                master="br0",
                managed=False,
            )
        ]
    )
    row = {c.title: model.index(0, i).data() for i, c in enumerate(COLUMNS)}
    assert row["Owner"] == "root" and row["Group"] == "root"
    assert row["Flags"] == "persist, vnet_hdr"
    assert row["Held by"] == "a program"
    assert row["Addresses"] == "192.0.2.1/24" and row["Bridge"] == "br0"
    name = model.index(0, 0)
    assert name.data(Qt.ItemDataRole.FontRole).italic(), "foreign devices are marked"
    assert "not created by tungui" in name.data(Qt.ItemDataRole.ToolTipRole)


@pytest.mark.parametrize("filter_change", [True, False], ids=["qt6.9", "qt6.8"])
# Qt 6.8's way, deprecated in the Qt that runs the tests here.
@pytest.mark.filterwarnings("ignore:Function.*invalidateFilter:DeprecationWarning")
def test_filter_and_numeric_sort(filter_change: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Qt 6.8 (Debian 13) has no beginFilterChange(): the filter must work there too.
    monkeypatch.setattr(model_module, "FILTER_CHANGE", filter_change)
    model = DeviceTableModel()
    model.reset(
        [
            tap(2, "tap0", mtu=9000),
            tap(3, "vpn0", kind="tun", mtu=1400),
            tap(4, "tap1", mtu=65535, addresses=["198.51.100.1/24"]),
        ]
    )
    proxy = DeviceFilterModel()
    proxy.setSourceModel(model)
    proxy.sort(column("MTU"), Qt.SortOrder.AscendingOrder)
    assert [proxy.index(r, 0).data() for r in range(3)] == ["vpn0", "tap0", "tap1"]
    proxy.set_filter("198.51")
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == ["tap1"]
    proxy.set_filter("TUN")
    assert proxy.rowCount() == 1 and proxy.device(0).name == "vpn0"
    assert proxy.index(0, 0).data(DEVICE_ROLE).index == 3
    assert not proxy.index(0, 0).parent().isValid()
    assert proxy.rowCount(QModelIndex()) == 1


def test_copy_as_command() -> None:
    device = tap(
        2,
        "lab0",
        owner=0,
        vnet_hdr=True,
        mtu=9000,
        mac="02:00:5e:00:00:01",
        master="br0",
        addresses=["192.0.2.1/24"],
        up=True,
    )
    assert ip_commands(device) == (
        "ip tuntap add dev lab0 mode tap user root vnet_hdr\n"
        "ip link set dev lab0 mtu 9000 address 02:00:5e:00:00:01\n"
        "ip link set dev lab0 master br0\n"
        "ip address add 192.0.2.1/24 dev lab0\n"
        "ip link set dev lab0 up\n"
    )
    transient = ip_commands(tap(3, "tmp0", persist=False, mtu=0))
    assert transient.startswith("# tungui holds this device only while it runs")
    bridge = ip_commands(
        Device.from_wire(
            {
                "name": "br0",
                "kind": "bridge",
                "mtu": 1500,
                "mac": "02:00:00:00:00:09",
                "up": True,
                "addresses": [],
            }
        )
    )
    assert bridge.splitlines()[0] == "ip link add name br0 type bridge"


def test_statistics_columns_and_rates() -> None:
    from tungui.gui.devices.model import FIRST_STAT_COLUMN, STAT_COLUMNS

    model = DeviceTableModel()
    model.reset([tap(2, "tap0"), tap(3, "tap1")])
    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, *_: changes.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.apply_statistics(1_000_000_000, {"tap0": (10, 1000, 1, 0, 20, 2000, 0, 2)})
    model.apply_statistics(2_000_000_000, {"tap0": (110, 126_000, 1, 0, 20, 2000, 0, 2)})
    last = FIRST_STAT_COLUMN + len(STAT_COLUMNS) - 1
    assert changes == [(0, FIRST_STAT_COLUMN, 1, last)] * 2, "one signal per tick"
    titles = [c.title for c in STAT_COLUMNS]
    text = {t: model.index(0, FIRST_STAT_COLUMN + i).data() for i, t in enumerate(titles)}
    assert text["RX packets"] == "110" and text["TX packets"] == "20"
    assert text["RX bytes"] == "126.0 kB" and text["Drops"] == "1" and text["Errors"] == "2"
    assert text["RX rate"] == "1.0 Mbit/s"  # 125,000 bytes in one second
    assert text["TX rate"] == "0 bit/s"
    assert model.index(1, FIRST_STAT_COLUMN).data() is None, "no counters yet for tap1"
    assert model.rates("tap0")[2] == 100.0  # packets per second
