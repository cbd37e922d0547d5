"""Turns what a person does in the main window into calls to the helper.

The window's controller: it feeds the device list from the bus thread,
enables each action by its rule (:mod:`tungui.gui.actions`), carries out the
device actions (new, delete, up/down, properties, copy as command) and hands
Watch Packets and Send Packet to their features' controllers.  Calls go
through :class:`~tungui.gui.requests.Requests`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from tungui.gui.actions import ACTIONS, Act, State, enabled
from tungui.gui.busthread import BusThread
from tungui.gui.capture.controller import CaptureController
from tungui.gui.mainwindow import MainWindow
from tungui.gui.requests import Requests
from tungui.gui.send.controller import SendController
from tungui_contract.bus import Action

from .ipcommands import ip_commands
from .model import DeviceTableModel

# The dialogs and the packet window load when first used (dpkt, pyqtgraph and
# the dialogs' widgets would otherwise double the time to the first paint).
if TYPE_CHECKING:
    from tungui.gui.send.dialog import SendDialog

    from .dialog import DeviceDialog

MANAGE = Action.MANAGE
MANAGE_FOREIGN = Action.MANAGE_FOREIGN


class Controller(QObject):
    """Wires the bus thread, the model and the window together.

    Args:
        helper: the helper, on its bus thread.
        model: the devices.
        window: the main window.
    """

    def __init__(self, helper: BusThread, model: DeviceTableModel, window: MainWindow) -> None:
        super().__init__(window)
        self.helper = helper
        self.model = model
        self.window = window
        self._available = False
        self.requests = Requests(helper, window)
        self.capture = CaptureController(self.requests, window)
        self.send = SendController(self.requests, window)

        helper.devicesReset.connect(model.reset)
        helper.devicesChanged.connect(model.apply)
        helper.statistics.connect(self._statistics)
        helper.availabilityChanged.connect(self._availability)
        helper.permissionsChanged.connect(self._set_permissions)
        window.banner.actionTriggered.connect(helper.retry)

        handlers: dict[Act, Callable[[], object]] = {
            Act.NEW_TUN: lambda: self.new_device("tun"),
            Act.NEW_TAP: lambda: self.new_device("tap"),
            Act.NEW_BRIDGE: self.new_bridge,
            Act.DELETE: self.delete_selected,
            Act.UP: self.toggle_up,
            Act.PROPERTIES: self.edit_selected,
            Act.COPY: self.copy_selected,
            Act.WATCH: self.watch_selected,
            Act.SEND: self.send_to_selected,
        }
        for act, handler in handlers.items():
            window.action(act).triggered.connect(lambda _checked=False, h=handler: h())
        window.selectionChanged.connect(self.update_actions)
        window.graphReady.connect(self.update_actions)
        model.dataChanged.connect(lambda *_: self.update_actions())
        model.modelReset.connect(self.update_actions)
        model.rowsRemoved.connect(lambda *_: self.update_actions())
        self._availability(False, "Connecting to the tungui helper…")

    # ------------------------------------------------------------ state

    def _availability(self, available: bool, reason: str) -> None:
        self._available = available
        self.window.set_available(available, reason)
        self.update_actions()

    def _set_permissions(self, permissions: dict[str, str]) -> None:
        manage = permissions.get(MANAGE, "")
        text = {
            "yes": "",
            "auth": "Changes ask for an administrator password",
            "no": "You may look but not change devices",
        }.get(manage, "")
        self.window.permission_label.setText(text)
        self.window.permission_label.setToolTip(
            "\n".join(f"{action}: {answer}" for action, answer in sorted(permissions.items()))
        )

    def _statistics(self, timestamp_ns: int, counters: dict[str, tuple[int, ...]]) -> None:
        self.model.apply_statistics(timestamp_ns, counters)
        graph = self.window.graph
        name = None if graph is None else graph.device()
        if graph is not None and name is not None and name in counters:
            rx, tx, _rx_packets, _tx_packets = self.model.rates(name)
            graph.add_sample(timestamp_ns, rx, tx)

    def update_actions(self) -> None:
        """Enable each action by its rule (:mod:`tungui.gui.actions`) for the selection."""
        device = self.window.selected_device()
        name = None if device is None else device.name
        graph = self.window.graph
        if graph is not None and name != graph.device():
            graph.set_device(name)
        state = State(helper=self._available, device=device)
        for spec in ACTIONS:
            self.window.action(spec.act).setEnabled(enabled(spec, state))
        if device is not None:
            up_action = self.window.action(Act.UP)
            up_action.setText("Bring &Down" if device.up else "Bring &Up")
            up_action.setIconText("Bring Down" if device.up else "Bring Up")
            up_action.setToolTip("Bring the device down" if device.up else "Bring the device up")
            note = " (not created by tungui: asks for administrator authentication)"
            self.window.action(Act.DELETE).setToolTip(
                "Remove the device" + ("" if device.managed else note)
            )

    # ------------------------------------------------------------ user actions

    def new_device(self, mode: str) -> DeviceDialog:
        """Open the New TUN/TAP dialog; create the device when it is accepted."""
        from .dialog import DeviceDialog

        dialog = DeviceDialog(mode, self.window, bridges=self.model.bridges())
        dialog.accepted.connect(lambda: self._create(dialog))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _create(self, dialog: DeviceDialog) -> None:
        spec = dialog.spec()
        if spec is None:
            return
        kind = "TUN" if spec.get("mode") == "tun" else "TAP"
        self.requests.submit(
            lambda c: c.create_device(spec),
            what=f"Creating a {kind} device…",
            done=lambda name: f"Created {name}",
            then=self.window.select,
        )

    def new_bridge(self) -> QInputDialog:
        """Ask for a bridge's name, then create it, up."""
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("New Bridge")
        dialog.setLabelText("&Name of the bridge:")
        dialog.setTextValue("br%d")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.setOkButtonText("Create")

        def chosen(name: str) -> None:
            spec = {"name": name.strip() or "br%d", "up": True}
            self.requests.submit(
                lambda c: c.create_bridge(spec),
                what="Creating a bridge…",
                done=lambda created: f"Created {created}",
                then=self.window.select,
            )

        dialog.textValueSelected.connect(chosen)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def delete_selected(self) -> QMessageBox | None:
        """Ask, then remove the selected device."""
        device = self.window.selected_device()
        if device is None or not self._available:
            return None
        name = device.name
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Delete Device")
        box.setText(f"Delete {name}?")
        detail = "Programs using it lose it at once."
        if not device.managed:
            detail += " tungui did not create it; this asks for administrator authentication."
        box.setInformativeText(detail)
        delete = box.addButton("&Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered() -> None:
            if box.clickedButton() is delete:
                self.requests.submit(
                    lambda c: c.delete_device(name),
                    what=f"Deleting {name}…",
                    done=lambda _: f"Deleted {name}",
                )

        box.finished.connect(answered)
        box.finished.connect(box.deleteLater)
        box.open()
        return box

    def toggle_up(self) -> None:
        """Bring the selected device up, or down."""
        device = self.window.selected_device()
        if device is None or not self._available:
            return
        name = device.name
        up = not device.up
        self.requests.submit(
            lambda c: c.configure_device(name, {"up": up}),
            what=f"Bringing {name} {'up' if up else 'down'}…",
            done=lambda _: f"{name} is {'up' if up else 'down'}",
        )

    def edit_selected(self) -> DeviceDialog | None:
        """Open the Properties dialog of the selected device; apply what changed."""
        device = self.window.selected_device()
        if device is None or not self._available or not device.is_tuntap:
            if device is not None and device.kind == "bridge":
                self.window.show_status("Bridges have no properties to edit here yet.")
            return None
        from .dialog import DeviceDialog

        name = device.name
        bridges = [b for b in self.model.bridges() if b != name]
        dialog = DeviceDialog(device.kind, self.window, device=device, bridges=bridges)

        def accepted() -> None:
            changes = dialog.spec()
            if changes:
                self.requests.submit(
                    lambda c: c.configure_device(name, changes),
                    what=f"Changing {name}…",
                    done=lambda _: f"Changed {name}",
                )

        dialog.accepted.connect(accepted)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def watch_selected(self) -> None:
        """Open a packet window for the selected device (capture is authorized by polkit)."""
        device = self.window.selected_device()
        if device is not None and self._available:
            self.capture.watch(device)

    def send_to_selected(self) -> SendDialog | None:
        """Open the Send Packet dialog; inject the packet when it is accepted."""
        device = self.window.selected_device()
        if device is None or not self._available or not device.is_tuntap:
            return None
        return self.send.open(device)

    def copy_selected(self) -> str | None:
        """Put the ip commands that make the selected device on the clipboard."""
        device = self.window.selected_device()
        if device is None:
            return None
        text = ip_commands(device)
        QGuiApplication.clipboard().setText(text)
        self.window.show_status(f"Copied the commands for {device.name}")
        return text
