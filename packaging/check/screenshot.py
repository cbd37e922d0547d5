"""Save the X screen as a PNG once it has stopped changing.

Run inside a proof root (packaging/check/installed) with the installed
PySide6, after tungui's window has mapped: the list fills in as the helper
answers, so the screen is grabbed until two grabs a moment apart agree.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtGui import QGuiApplication, QImage


def grab() -> QImage:
    """The whole screen (the X root window)."""
    return QGuiApplication.primaryScreen().grabWindow(0).toImage()


def main() -> int:
    """Grab until stable (at most 20 s), save to argv[1]."""
    app = QGuiApplication(["screenshot", "-platform", "xcb"])
    deadline = time.monotonic() + 20
    previous = grab()
    while True:
        time.sleep(0.5)
        app.processEvents()
        current = grab()
        if current == previous or time.monotonic() > deadline:
            break
        previous = current
    if not current.save(sys.argv[1]):
        print(f"screenshot: cannot write {sys.argv[1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
