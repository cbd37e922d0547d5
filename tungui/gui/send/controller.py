"""Send Packet: the dialog that builds a packet, and the call that injects it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from tungui.gui.requests import Requests
from tungui_contract.device import Device

# The dialog (and dpkt) load when first used.
if TYPE_CHECKING:
    from .dialog import SendDialog


class SendController(QObject):
    """Opens the Send Packet dialog for a device; injects what it builds.

    Args:
        requests: how calls reach the helper.
        parent: the window the dialogs belong to.
    """

    def __init__(self, requests: Requests, parent: QWidget) -> None:
        super().__init__(parent)
        self._requests = requests
        self._parent = parent

    def open(self, device: Device) -> SendDialog:
        """Open the dialog for ``device`` (a TUN or TAP); send the packet when accepted."""
        from .dialog import SendDialog

        name = device.name
        dialog = SendDialog(device, self._parent)

        def accepted() -> None:
            packet = dialog.packet()
            if packet is not None:
                self._requests.submit(
                    lambda c: c.inject_packet(name, packet),
                    what=f"Sending into {name}…",
                    done=lambda _: f"Sent {len(packet)} bytes into {name}",
                )

        dialog.accepted.connect(accepted)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog
