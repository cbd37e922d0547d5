"""Watch Packets: asks the helper for a device's packets and opens a window on them."""

from __future__ import annotations

import socket

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QWidget

from tungui.gui.requests import Requests
from tungui_contract.device import Device


class CaptureController(QObject):
    """Starts captures (polkit authorizes each) and shows their packet windows.

    Args:
        requests: how calls reach the helper.
        parent: the window the packet windows belong to.
    """

    def __init__(self, requests: Requests, parent: QWidget) -> None:
        super().__init__(parent)
        self._requests = requests
        self._parent = parent

    def watch(self, device: Device) -> int:
        """Start a capture of ``device``; its window opens when the helper agrees."""
        # The packet window (and dpkt) load when first used.
        from .window import LIVE_RATE

        name = device.name

        def opened(stream: socket.socket) -> None:
            from .window import PacketWindow

            window = PacketWindow(device, stream, self._parent)
            window.setWindowFlag(Qt.WindowType.Window)
            window.show()

        return self._requests.submit(
            lambda c: c.start_capture(name, max_rate=LIVE_RATE),
            what=f"Starting to capture on {name}…",
            done=lambda _: f"Capturing on {name}",
            then=opened,
        )
