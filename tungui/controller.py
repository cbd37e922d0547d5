"""Turns what a person does in the window into calls to the helper.

Every call a person started allows interactive authorization, so polkit can
show the desktop's password dialog; the window goes on while it waits.  A
refusal or a failure is shown as the helper's sentence, never an error name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from tungui_contract.bus import Action

from .bridge import HelperBridge
from .commands import ip_commands
from .devicemodel import DeviceTableModel
from .mainwindow import MainWindow

# The dialogs and the packet window load when first used (dpkt, pyqtgraph and
# the dialogs' widgets would otherwise double the time to the first paint).
if TYPE_CHECKING:
    from .devicedialog import DeviceDialog
    from .senddialog import SendDialog

Device = dict[str, Any]

MANAGE = Action.MANAGE
MANAGE_FOREIGN = Action.MANAGE_FOREIGN


@dataclass
class _Pending:
    what: str
    done: str
    then: Callable[[Any], None] | None = None


class Controller(QObject):
    """Wires the bridge, the model and the window together.

    Args:
        bridge: the helper.
        model: the devices.
        window: the main window.
    """

    def __init__(self, bridge: HelperBridge, model: DeviceTableModel, window: MainWindow) -> None:
        super().__init__(window)
        self.bridge = bridge
        self.model = model
        self.window = window
        self._pending: dict[int, _Pending] = {}
        self._available = False

        bridge.devicesReset.connect(model.reset)
        bridge.devicesChanged.connect(model.apply)
        bridge.statistics.connect(self._statistics)
        bridge.availabilityChanged.connect(self._availability)
        bridge.permissionsChanged.connect(self._set_permissions)
        bridge.finished.connect(self._finished)
        bridge.failed.connect(self._failed)
        window.banner.actionTriggered.connect(bridge.retry)

        window.new_tun_action.triggered.connect(lambda: self.new_device("tun"))
        window.new_tap_action.triggered.connect(lambda: self.new_device("tap"))
        window.new_bridge_action.triggered.connect(self.new_bridge)
        window.delete_action.triggered.connect(self.delete_selected)
        window.up_action.triggered.connect(self.toggle_up)
        window.properties_action.triggered.connect(self.edit_selected)
        window.copy_action.triggered.connect(self.copy_selected)
        window.watch_action.triggered.connect(self.watch_selected)
        window.send_action.triggered.connect(self.send_to_selected)
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
        for action in (
            self.window.new_tun_action,
            self.window.new_tap_action,
            self.window.new_bridge_action,
        ):
            action.setEnabled(available)
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
        """Enable what makes sense for the selection while the helper is there."""
        device = self.window.selected_device()
        name = None if device is None else str(device["name"])
        graph = self.window.graph
        if graph is not None and name != graph.device():
            graph.set_device(name)
        usable = self._available and device is not None
        for action in (
            self.window.delete_action,
            self.window.up_action,
            self.window.properties_action,
            self.window.watch_action,
        ):
            action.setEnabled(usable)
        self.window.send_action.setEnabled(
            usable and device is not None and device.get("kind") in ("tun", "tap")
        )
        self.window.copy_action.setEnabled(device is not None)
        if device is not None:
            up = bool(device.get("up"))
            self.window.up_action.setText("Bring &Down" if up else "Bring &Up")
            self.window.up_action.setIconText("Bring Down" if up else "Bring Up")
            self.window.up_action.setToolTip(
                "Bring the device down" if up else "Bring the device up"
            )
            foreign = not device.get("managed")
            note = " (not created by tungui: asks for administrator authentication)"
            self.window.delete_action.setToolTip("Remove the device" + (note if foreign else ""))

    # ------------------------------------------------------------ calls

    def _request(
        self,
        method: str,
        *args: Any,
        what: str,
        done: str,
        then: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> int:
        request_id = self.bridge.request(method, *args, interactive=True, **kwargs)
        self._pending[request_id] = _Pending(what, done, then)
        self.window.show_status(what)
        return request_id

    def _finished(self, request_id: int, result: object) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        self.window.notice.hide()
        self.window.show_status(pending.done.format(result=result))
        if pending.then is not None:
            pending.then(result)

    def _failed(self, request_id: int, _error: str, message: str) -> None:
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        self.window.statusBar().clearMessage()
        self.window.show_error(message)

    # ------------------------------------------------------------ user actions

    def new_device(self, mode: str) -> DeviceDialog:
        """Open the New TUN/TAP dialog; create the device when it is accepted."""
        from .devicedialog import DeviceDialog

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
        self._request(
            "create_device",
            spec,
            what=f"Creating a {kind} device…",
            done="Created {result}",
            then=lambda name: self.window.select(str(name)),
        )

    def new_bridge(self) -> QInputDialog:
        """Ask for a bridge's name, then create it, up."""
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("New Bridge")
        dialog.setLabelText("&Name of the bridge:")
        dialog.setTextValue("br%d")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.setOkButtonText("Create")
        dialog.textValueSelected.connect(
            lambda name: self._request(
                "create_bridge",
                {"name": name.strip() or "br%d", "up": True},
                what="Creating a bridge…",
                done="Created {result}",
                then=lambda created: self.window.select(str(created)),
            )
        )
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def delete_selected(self) -> QMessageBox | None:
        """Ask, then remove the selected device."""
        device = self.window.selected_device()
        if device is None or not self._available:
            return None
        name = str(device["name"])
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Delete Device")
        box.setText(f"Delete {name}?")
        detail = "Programs using it lose it at once."
        if not device.get("managed"):
            detail += " tungui did not create it; this asks for administrator authentication."
        box.setInformativeText(detail)
        delete = box.addButton("&Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered() -> None:
            if box.clickedButton() is delete:
                self._request(
                    "delete_device", name, what=f"Deleting {name}…", done=f"Deleted {name}"
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
        name = str(device["name"])
        up = not device.get("up")
        self._request(
            "configure_device",
            name,
            {"up": up},
            what=f"Bringing {name} {'up' if up else 'down'}…",
            done=f"{name} is {'up' if up else 'down'}",
        )

    def edit_selected(self) -> DeviceDialog | None:
        """Open the Properties dialog of the selected device; apply what changed."""
        device = self.window.selected_device()
        if device is None or not self._available or device.get("kind") not in ("tun", "tap"):
            if device is not None and device.get("kind") == "bridge":
                self.window.show_status("Bridges have no properties to edit here yet.")
            return None
        from .devicedialog import DeviceDialog

        name = str(device["name"])
        bridges = [b for b in self.model.bridges() if b != name]
        dialog = DeviceDialog(str(device.get("kind")), self.window, device=device, bridges=bridges)

        def accepted() -> None:
            changes = dialog.spec()
            if changes:
                self._request(
                    "configure_device",
                    name,
                    changes,
                    what=f"Changing {name}…",
                    done=f"Changed {name}",
                )

        dialog.accepted.connect(accepted)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def watch_selected(self) -> None:
        """Open a packet window for the selected device (capture is authorized by polkit)."""
        device = self.window.selected_device()
        if device is None or not self._available:
            return
        name = str(device["name"])

        from .packetview import LIVE_RATE

        def opened(stream: object) -> None:
            from .packetview import PacketWindow

            window = PacketWindow(device, stream, self.window)  # type: ignore[arg-type]
            window.setWindowFlag(Qt.WindowType.Window)
            window.show()

        self._request(
            "start_capture",
            name,
            max_rate=LIVE_RATE,
            what=f"Starting to capture on {name}…",
            done=f"Capturing on {name}",
            then=opened,
        )

    def send_to_selected(self) -> SendDialog | None:
        """Open the Send Packet dialog; inject the packet when it is accepted."""
        device = self.window.selected_device()
        if device is None or not self._available or device.get("kind") not in ("tun", "tap"):
            return None
        from .senddialog import SendDialog

        name = str(device["name"])
        dialog = SendDialog(device, self.window)

        def accepted() -> None:
            packet = dialog.packet()
            if packet is not None:
                self._request(
                    "inject_packet",
                    name,
                    packet,
                    what=f"Sending into {name}…",
                    done=f"Sent {len(packet)} bytes into {name}",
                )

        dialog.accepted.connect(accepted)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def copy_selected(self) -> str | None:
        """Put the ip commands that make the selected device on the clipboard."""
        device = self.window.selected_device()
        if device is None:
            return None
        text = ip_commands(device)
        QGuiApplication.clipboard().setText(text)
        self.window.show_status(f"Copied the commands for {device['name']}")
        return text
