"""The main window: the device list, its actions, and the message bars.

A view: it shows what the model and the controller give it and emits its
actions; what they do is the controller's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QItemSelection, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QSplitter,
    QTableView,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tungui_contract.device import Device

from . import icons
from .actions import ACTIONS, DEVICE_ACTIONS, MENUS, TOOLBAR, Act, Layout, make_action
from .devices.model import NAME_COLUMN, DeviceFilterModel, DeviceTableModel
from .messagebar import MessageBar

if TYPE_CHECKING:
    from .devices.rategraph import RateGraph


#: How long after the window is made the graph loads (after the first paint).
GRAPH_DELAY_MS = 300

#: Columns hidden until a person shows them (header context menu).
DEFAULT_HIDDEN = ("Group", "RX bytes", "TX bytes")


class MainWindow(QMainWindow):
    """The device list and what can be done with it.

    Args:
        model: the devices.
        settings: where size, columns and sort are remembered.
    """

    #: The selection changed (the controller updates the actions).
    selectionChanged = Signal()
    #: The graph was made (the controller then feeds it).
    graphReady = Signal()

    def __init__(
        self, model: DeviceTableModel, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self.setWindowTitle("tungui")
        self.setWindowIcon(icons.app_icon())
        self.model = model
        self.proxy = DeviceFilterModel(self)
        self.proxy.setSourceModel(model)

        self._make_actions()
        self._make_menus()
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)

        self.banner = MessageBar("warning", closable=False, name="Helper status", parent=central)
        self.banner.set_action("&Retry", "view-refresh")
        layout.addWidget(self.banner)
        self.notice = MessageBar("error", closable=True, name="Last error", parent=central)
        layout.addWidget(self.notice)

        self.filter = QLineEdit(central)
        self.filter.setPlaceholderText("Filter devices (name, kind, address, owner…)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setAccessibleName("Filter devices")
        find = self.filter.addAction(
            icons.icon("edit-find"), QLineEdit.ActionPosition.LeadingPosition
        )
        find.setText("Filter")
        # Qt's own clear button: give it a name assistive technology can read.
        clear = self.filter.findChild(QAction, "_q_qlineeditclearaction")
        if clear is not None:
            clear.setText("Clear the filter")
        self.filter.textChanged.connect(self.proxy.set_filter)
        layout.addWidget(self.filter)

        self.table = QTableView(central)
        self.table.setAccessibleName("Devices")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(NAME_COLUMN, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setAccessibleName("Device columns")
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._columns_menu)
        header.setSectionsMovable(True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setHighlightSections(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        # Enter or a double click on a row: its properties.
        self.table.activated.connect(lambda _index: self.action(Act.PROPERTIES).trigger())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        # The table above, the selected device's traffic below.
        self.splitter = QSplitter(Qt.Orientation.Vertical, central)
        self.splitter.setObjectName("DeviceSplitter")
        self.splitter.addWidget(self.table)
        # The graph (pyqtgraph and numpy) loads once the window is on screen:
        # importing them would double the time to the first paint.
        self.graph: RateGraph | None = None
        self._graph_pane = QWidget(self.splitter)
        self._graph_pane.setMinimumHeight(160)
        QVBoxLayout(self._graph_pane).setContentsMargins(0, 0, 0, 0)
        self.splitter.addWidget(self._graph_pane)
        QTimer.singleShot(GRAPH_DELAY_MS, self._load_graph)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.count_label = QLabel(self)
        self.count_label.setAccessibleName("Device count")
        self.permission_label = QLabel(self)
        self.permission_label.setAccessibleName("Permissions")
        self.statusBar().addWidget(self.count_label)
        self.statusBar().addPermanentWidget(self.permission_label)
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal.connect(self._update_count)
        self._select_when_listed: str | None = None
        model.rowsInserted.connect(self._listed)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self._update_count()
        self.resize(980, 520)
        self._header_restored = False
        self._restore()
        model.modelReset.connect(self._fit_columns)

    # ------------------------------------------------------------ actions

    def _make_actions(self) -> None:
        self.actions_by_name = {spec.act: make_action(spec, self) for spec in ACTIONS}
        self.action(Act.FILTER).triggered.connect(self._focus_filter)
        self.action(Act.QUIT).triggered.connect(self.close)

        toolbar = QToolBar("Main toolbar", self)
        toolbar.setObjectName("MainToolbar")
        toolbar.setAccessibleName("Main toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        self._fill(toolbar, TOOLBAR)
        self.addToolBar(toolbar)
        self.toolbar = toolbar
        # The ">>" button that shows what does not fit.
        extension = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
        if extension is not None:
            extension.setAccessibleName("More actions")

    def _make_menus(self) -> None:
        for title, layout in MENUS:
            menu = self.menuBar().addMenu(title)
            self._fill(menu, layout)
            if layout is DEVICE_ACTIONS:
                self.device_menu = menu

    def _fill(self, target: QMenu | QToolBar, layout: Layout) -> None:
        for act in layout:
            if act is None:
                target.addSeparator()
            else:
                target.addAction(self.action(act))

    def action(self, act: Act) -> QAction:
        """The window's QAction for an action of :mod:`.actions`."""
        return self.actions_by_name[act]

    def _context_menu(self, pos: QPoint) -> None:
        if not self.table.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        menu.setAccessibleName("Device menu")
        self._fill(menu, DEVICE_ACTIONS)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _focus_filter(self) -> None:
        self.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter.selectAll()

    # ------------------------------------------------------------ state

    def selected_device(self) -> Device | None:
        """The device of the selected row."""
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.device(rows[0].row()) if rows else None

    def select(self, name: str) -> None:
        """Select the device of that name, now or as soon as it is listed."""
        row = self.model.row_of(name)
        if row is None:
            # The helper's reply can come before the signal that lists it.
            self._select_when_listed = name
            return
        self._select_when_listed = None
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    def _load_graph(self) -> None:
        from .devices.rategraph import RateGraph

        self.graph = RateGraph(self._graph_pane)
        layout = self._graph_pane.layout()
        assert layout is not None
        layout.addWidget(self.graph)
        self.graphReady.emit()

    def _fit_columns(self) -> None:
        # Once, on the first list, unless the person's own layout was restored.
        if not self._header_restored and self.model.rowCount():
            self._header_restored = True
            self.table.resizeColumnsToContents()
            header = self.table.horizontalHeader()
            titles = [
                str(self.model.headerData(i, Qt.Orientation.Horizontal))
                for i in range(self.model.columnCount())
            ]
            # The rates next to the state; the rarer columns hidden (the
            # header's context menu shows them).
            for offset, title in enumerate(("RX rate", "TX rate")):
                header.moveSection(
                    header.visualIndex(titles.index(title)),
                    header.visualIndex(titles.index("State")) + 1 + offset,
                )
            for title in DEFAULT_HIDDEN:
                header.hideSection(titles.index(title))

    def _columns_menu(self, pos: QPoint) -> None:
        header = self.table.horizontalHeader()
        menu = QMenu(self)
        menu.setAccessibleName("Columns menu")
        for logical in range(self.model.columnCount()):
            title = str(self.model.headerData(logical, Qt.Orientation.Horizontal))
            action = menu.addAction(title)
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(logical))
            action.setEnabled(logical != NAME_COLUMN)
            action.toggled.connect(
                lambda shown, section=logical: header.setSectionHidden(section, not shown)
            )
        menu.popup(header.mapToGlobal(pos))

    def set_available(self, available: bool, reason: str) -> None:
        """Show whether the helper is there; the list is greyed while it is not."""
        if available:
            self.banner.hide()
        else:
            self.banner.show_message(reason)
        self.table.setEnabled(available)

    def _listed(self) -> None:
        if self._select_when_listed is not None:
            self.select(self._select_when_listed)

    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.selectionChanged.emit()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        noun = "device" if total == 1 else "devices"
        self.count_label.setText(
            f"{total} {noun}" if shown == total else f"{shown} of {total} {noun} shown"
        )

    def show_error(self, text: str) -> None:
        """Tell a person an action failed, in a plain sentence."""
        self.notice.show_message(text)

    def show_status(self, text: str) -> None:
        """A passing message in the status bar."""
        self.statusBar().showMessage(text, 5000)

    # ------------------------------------------------------------ settings

    def _restore(self) -> None:
        geometry = self._settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        splitter = self._settings.value("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        header = self._settings.value("window/header")
        if isinstance(header, QByteArray):
            self._header_restored = self.table.horizontalHeader().restoreState(header)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/header", self.table.horizontalHeader().saveState())
        self._settings.setValue("window/splitter", self.splitter.saveState())
        self._settings.sync()
        super().closeEvent(event)
