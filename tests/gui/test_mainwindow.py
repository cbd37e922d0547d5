"""The main window remembers itself; its shortcuts are the ones documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence

from tungui.gui.actions import Act
from tungui.gui.devices.model import DeviceTableModel
from tungui.gui.mainwindow import MainWindow


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
        window.action(Act.NEW_TUN): "Ctrl+N",
        window.action(Act.DELETE): "Del",
        window.action(Act.PROPERTIES): "F2",
        window.action(Act.FILTER): "Ctrl+F",
        window.action(Act.QUIT): "Ctrl+Q",
    }
    for action, key in keys.items():
        assert action.shortcut() == QKeySequence(key), action.text()
    window.show()
    qtbot.waitExposed(window)
    window.action(Act.FILTER).trigger()
    assert window.focusWidget() is window.filter
