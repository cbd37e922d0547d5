"""Watch packets: the live list of a device's packets and the bytes of one.

The helper streams packets to this window alone (StartCapture); a thread
(:mod:`.reader`) reads the stream and hands batches to the GUI thread, which
decodes them for the list (:mod:`.model`), unprivileged.  The list keeps a
bounded number of packets and says how many it did not show (dropped on the
way, or paused, or pushed out).
"""

from __future__ import annotations

import socket
from typing import BinaryIO

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSplitter,
    QTableView,
    QToolBar,
    QWidget,
)

from tungui.gui import icons
from tungui.gui.hexview import HexView
from tungui.packets.pcapng import CaptureWriter
from tungui.packets.stream import write_packets
from tungui_contract.capture import CAPTURE_MAX_SNAPLEN
from tungui_contract.device import Device

from .model import PacketModel
from .reader import StreamReader

#: Packets a second the window asks the helper for while it only shows
#: them (more are sampled out, in the kernel); a capture file gets them all.
LIVE_RATE = 2_000
#: The list takes what arrived at most this often (ms): each update of a
#: view costs about the same whether it brings one packet or hundreds.
TAKE_INTERVAL_MS = 100


class PacketWindow(QMainWindow):
    """The packets of one device, live.

    Args:
        device: the device (its name and kind).
        stream: the capture stream, for this window alone, asked for at
            :data:`LIVE_RATE` packets a second at most; while the window
            captures to a file it asks the helper, on the stream, for all.
    """

    def __init__(
        self, device: Device, stream: socket.socket, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.device_name = device.name
        self.setWindowTitle(f"Packets of {self.device_name}")
        self.setWindowIcon(icons.app_icon())
        # A TUN carries IP packets; TAP devices and bridges, Ethernet frames.
        link = "ip" if device.kind == "tun" else "ethernet"
        self.model = PacketModel(link, parent=self)
        self.paused = False
        self.not_shown = 0
        self._dropped = 0
        self._sampled = 0
        self._written_before_file = 0
        self._file: BinaryIO | None = None
        self._writer: CaptureWriter | None = None
        self._file_interface = 0
        self.file_path = ""

        self.table = QTableView(self)
        self.table.setAccessibleName("Packets")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setAccessibleName("Packet columns")
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.selectionModel().currentRowChanged.connect(self._show_bytes)
        self.hex = HexView(self)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.hex)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)

        toolbar = QToolBar("Capture", self)
        toolbar.setAccessibleName("Capture toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        self.pause_action = QAction("&Pause", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("Space"))
        self.pause_action.setToolTip("Stop adding packets to the list (they are counted)")
        self.pause_action.toggled.connect(self._pause)
        self.clear_action = QAction(icons.icon("edit-delete"), "C&lear", self)
        self.clear_action.triggered.connect(self.model.clear)
        self.save_action = QAction(icons.icon("document-properties"), "&Save…", self)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_action.setToolTip("Save the packets in the list as pcapng, for Wireshark")
        self.save_action.triggered.connect(self.ask_save)
        self.file_action = QAction(icons.icon("document-properties"), "Capture to &File…", self)
        self.file_action.setCheckable(True)
        self.file_action.setToolTip(
            "Write every packet to a pcapng file as it arrives, until unchecked"
        )
        self.file_action.toggled.connect(self._file_toggled)
        self.copy_action = QAction(icons.icon("edit-copy"), "Copy as &Hex", self)
        self.copy_action.triggered.connect(self.hex.copy_as_hex)
        for action in (
            self.pause_action,
            self.clear_action,
            self.save_action,
            self.file_action,
            self.copy_action,
        ):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

        self.status = QLabel(self)
        self.status.setAccessibleName("Capture status")
        self.statusBar().addWidget(self.status)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(250)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start()

        self._take_timer = QTimer(self)
        self._take_timer.setSingleShot(True)
        self._take_timer.setInterval(TAKE_INTERVAL_MS)
        self._take_timer.timeout.connect(self._take)
        self.reader = StreamReader(stream, self)
        self.reader.ready.connect(self._take_soon)
        self.reader.ended.connect(self._ended)
        self.reader.start()
        self.resize(900, 560)
        self._update_status()

    @property
    def file_packets(self) -> int:
        """Packets written to the capture file so far."""
        return self.reader.written - self._written_before_file

    @property
    def skipped(self) -> int:
        """Packets that came faster than the list could take them."""
        return self.reader.skipped

    def _take_soon(self) -> None:
        if not self._take_timer.isActive():
            self._take_timer.start()

    def _take(self) -> None:
        packets = self.reader.take()
        if packets:
            self._dropped = packets[-1].dropped
            self._sampled = packets[-1].sampled
        if self.paused:
            self.not_shown += len(packets)
            return
        follow = self._at_bottom()
        self.model.add(packets)
        if follow:
            self.table.scrollToBottom()

    def _at_bottom(self) -> bool:
        bar = self.table.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    def _pause(self, paused: bool) -> None:
        self.paused = paused
        self.pause_action.setText("&Resume" if paused else "&Pause")

    def _ended(self) -> None:
        self.statusBar().showMessage("The capture ended: the device went away.")
        self._status_timer.stop()
        self._update_status()

    def _update_status(self) -> None:
        parts = [f"{self.model.rowCount():,} packets"]
        if self._writer is not None:
            parts.append(f"{self.file_packets:,} written to {self.file_path}")
        if self._dropped:
            parts.append(f"{self._dropped:,} dropped before reaching tungui")
        if self._sampled:
            parts.append(f"about {self._sampled:,} sampled out (too many a second to show all)")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped (faster than the list)")
        if self.not_shown:
            parts.append(f"{self.not_shown:,} not shown while paused")
        if self.model.pushed_out:
            parts.append(
                f"{self.model.pushed_out:,} older ones let go (the list keeps {self.model.limit:,})"
            )
        self.status.setText(" · ".join(parts))

    def _show_bytes(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.hex.set_data(self.model.row(current.row()).packet.data)

    def ask_save(self) -> QFileDialog:
        """Ask where to save the list as pcapng (non-blocking)."""
        dialog = self._pcapng_dialog(
            f"Save the packets of {self.device_name}", f"{self.device_name}.pcapng"
        )
        dialog.fileSelected.connect(self.save)
        dialog.open()
        return dialog

    def _file_toggled(self, on: bool) -> None:
        if not on:
            self.stop_file()
            return
        if self._writer is not None:
            return
        dialog = self._pcapng_dialog(
            f"Capture {self.device_name} to a file", f"{self.device_name}-capture.pcapng"
        )
        dialog.fileSelected.connect(self.start_file)
        dialog.rejected.connect(lambda: self.file_action.setChecked(False))
        dialog.open()

    def _pcapng_dialog(self, title: str, file_name: str) -> QFileDialog:
        """A Save dialog for a pcapng file (not yet open)."""
        dialog = QFileDialog(self, title)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["pcapng files (*.pcapng)", "All files (*)"])
        dialog.setDefaultSuffix("pcapng")
        dialog.selectFile(file_name)
        return dialog

    def start_file(self, path: str) -> None:
        """Write every packet that arrives from now on to ``path`` (pcapng)."""
        self.stop_file()
        self._file = open(path, "wb")  # noqa: SIM115 - closed by stop_file
        self._writer = CaptureWriter(self._file)
        self._file_interface = self._writer.add_interface(
            self.device_name, self.model.link, CAPTURE_MAX_SNAPLEN
        )
        self.file_path = path
        self._written_before_file = self.reader.written
        self.reader.write_to(self._writer, self._file_interface)
        self.reader.ask_rate(0)  # a file gets every packet
        self.file_action.setChecked(True)
        self._update_status()

    def stop_file(self) -> None:
        """Finish the file being written, if any."""
        if self._writer is not None:
            self.reader.write_to(None)
            self._writer.close()
            self._writer = None
            self.reader.ask_rate(LIVE_RATE)
        if self._file is not None:
            self._file.close()
            self._file = None
            self.statusBar().showMessage(
                f"Wrote {self.file_packets:,} packets to {self.file_path}", 5000
            )
        if self.file_action.isChecked():
            self.file_action.setChecked(False)

    def save(self, path: str) -> int:
        """Write the packets in the list to ``path`` as pcapng; return how many."""
        rows = self.model.rows()
        with open(path, "wb") as file, CaptureWriter(file) as writer:
            interface = writer.add_interface(self.device_name, self.model.link, CAPTURE_MAX_SNAPLEN)
            write_packets(writer, interface, (row.packet for row in rows))
        self.statusBar().showMessage(f"Saved {len(rows):,} packets to {path}", 5000)
        return len(rows)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._status_timer.stop()
        self.reader.stop()
        self.stop_file()
        super().closeEvent(event)
