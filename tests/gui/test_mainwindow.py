"""The main window remembers itself; its shortcuts are the ones documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence

from tungui.devicemodel import DeviceTableModel
from tungui.mainwindow import MainWindow


def test_size_columns_and_sort_are_remembered(qtbot: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(DeviceTableModel(), settings)
    qtbot.addWidget(window)
    window.show()
    window.resize(760, 557)
    window.table.sortByColumn(7, Qt.SortOrder.DescendingOrder)
    window.table.setColumnWidth(0, 211)
    window.close()

    again = MainWindow(DeviceTableModel(), settings)
    qtbot.addWidget(again)
    again.show()
    header = again.table.horizontalHeader()
    assert (again.width(), again.height()) == (760, 557)
    assert header.sortIndicatorSection() == 7
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert again.table.columnWidth(0) == 211


def test_shortcuts(qtbot: Any, tmp_path: Path) -> None:
    window = MainWindow(
        DeviceTableModel(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    )
    qtbot.addWidget(window)
    keys = {
        window.new_tun_action: "Ctrl+N",
        window.delete_action: "Del",
        window.properties_action: "F2",
        window.filter_action: "Ctrl+F",
        window.quit_action: "Ctrl+Q",
    }
    for action, key in keys.items():
        assert action.shortcut() == QKeySequence(key), action.text()
    window.show()
    qtbot.waitExposed(window)
    window.filter_action.trigger()
    assert window.focusWidget() is window.filter
