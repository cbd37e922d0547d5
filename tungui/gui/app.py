"""``tungui``: the window."""

from __future__ import annotations

import argparse
import signal
import sys

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from tungui import __version__
from tungui_contract.bus import APP_ID

from . import icons
from .busthread import BusThread
from .devices.controller import Controller
from .devices.model import DeviceTableModel
from .mainwindow import MainWindow


class App:
    """The window and what feeds it.

    Args:
        address: the D-Bus address of the system bus (tests); the system bus when None.
        settings: where the window remembers itself; the user's config when None.
    """

    def __init__(self, address: str | None = None, settings: QSettings | None = None) -> None:
        self.settings = settings or QSettings("tungui", "tungui")
        self.helper = BusThread(address)
        self.model = DeviceTableModel()
        self.window = MainWindow(self.model, self.settings)
        self.controller = Controller(self.helper, self.model, self.window)

    def start(self) -> None:
        """Show the window and connect to the helper."""
        self.window.show()
        self.helper.start()

    def stop(self) -> None:
        """Leave the bus; devices made "only while tungui runs" go with it."""
        self.helper.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tungui``."""
    args = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog="tungui", description="Manage TUN/TAP devices.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.parse_known_args(args[1:])
    app = QApplication(args)
    app.setApplicationName("tungui")
    app.setApplicationDisplayName("tungui")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("tungui")
    # Lets the desktop match the window to its .desktop file and icon (Wayland).
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(icons.app_icon())
    tungui = App()
    tungui.start()
    # Ctrl+C in the terminal quits cleanly: Python handles signals only when
    # it runs, so let it run now and then.
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    ticker = QTimer()
    ticker.start(250)
    ticker.timeout.connect(lambda: None)
    try:
        return app.exec()
    finally:
        tungui.stop()
