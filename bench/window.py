"""Window benchmarks: cold start to the first painted window, and the model's cost per update.

    .venv/bin/python -m bench.window [--platform offscreen|xcb] [--devices 1000]

1. Cold start: a fresh process runs ``tungui``'s window (no helper is needed
   for the first paint: the window shows "Connecting…") and reports when the
   main window is first painted; beside it, the same for a bare PySide6
   QMainWindow, so the figure says what tungui adds to Qt's own start.
   Measured from before the interpreter starts to the paint event, over
   several runs.  Target: under 1 s.
2. Model update: a DeviceTableModel with N devices behind the window's own
   filter/sort proxy and a QTableView, then one DevicesChanged carrying one
   changed device, repeated; beside it, a full reset of the same N devices.
   Target: under 5 ms per update with 1,000 devices.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import textwrap
import time

from tests.support.devicedicts import listed_tap
from tungui_contract.device import Device

CHILD_TUNGUI = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv)
    from tungui.gui.app import App
    tungui = App(settings=QSettings("/dev/null", QSettings.Format.IniFormat))

    class Painted(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                print(time.time(), flush=True)
                QTimer.singleShot(0, app.quit)
            return False

    watcher = Painted()
    tungui.window.installEventFilter(watcher)
    tungui.window.show()
    app.exec()
    """
)

CHILD_BARE = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow, QTableView
    app = QApplication(sys.argv)
    window = QMainWindow()
    window.setCentralWidget(QTableView())

    class Painted(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                print(time.time(), flush=True)
                QTimer.singleShot(0, app.quit)
            return False

    watcher = Painted()
    window.installEventFilter(watcher)
    window.show()
    app.exec()
    """
)


def cold_start(code: str, platform: str, runs: int) -> list[float]:
    """Seconds from spawning a Python process to its first painted window."""
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    # No helper is wanted: point the bus at nothing, so the window paints
    # "Connecting…" without waiting for anything.
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/tungui-bench"
    times = []
    for _ in range(runs):
        start = time.time()
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        lines = [line for line in result.stdout.split() if line.strip()]
        if result.returncode != 0 or not lines:
            raise SystemExit(f"child failed:\n{result.stderr}")
        times.append(float(lines[0]) - start)
    return times


def device(index: int) -> Device:
    return Device.from_wire(
        listed_tap(
            index,
            f"tap{index}",
            mac=f"02:00:00:00:{index // 256 % 256:02x}:{index % 256:02x}",
            addresses=[f"192.0.2.{index % 250 + 1}/24"],
            owner=0,
        )
    )


def model_updates(count: int, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Milliseconds per one-device update, per full reset, and per Statistics tick."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from tungui.gui.devices.model import DeviceTableModel
    from tungui.gui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    model = DeviceTableModel()
    window = MainWindow(model, QSettings("/dev/null", QSettings.Format.IniFormat))
    window.show()
    devices = [device(i) for i in range(2, count + 2)]
    model.reset(devices)
    app.processEvents()
    updates = []
    for n in range(repeat):
        changed = dataclasses.replace(devices[n % count], mtu=1400 + n % 100, up=bool(n % 2))
        start = time.perf_counter()
        model.apply([changed], [])
        app.processEvents()
        updates.append((time.perf_counter() - start) * 1e3)
    ticks = []
    for n in range(max(20, repeat // 10)):
        counters = {d.name: (n * 10, n * 1000, 0, 0, n * 20, n * 2000, 0, 0) for d in devices}
        start = time.perf_counter()
        model.apply_statistics((n + 1) * 250_000_000, counters)
        app.processEvents()
        ticks.append((time.perf_counter() - start) * 1e3)
    resets = []
    for _ in range(max(5, repeat // 50)):
        start = time.perf_counter()
        model.reset(devices)
        app.processEvents()
        resets.append((time.perf_counter() - start) * 1e3)
    window.close()
    return updates, resets, ticks


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(len(ordered) * 0.9) - 1] if len(ordered) > 1 else ordered[0]
    return f"median {statistics.median(values):.3g} (p90 {p90:.3g})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--platform", default="offscreen", help="Qt platform (offscreen, xcb)")
    parser.add_argument("--runs", type=int, default=5, help="cold starts of each")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=500, help="updates to time")
    args = parser.parse_args()

    from PySide6 import __version__ as pyside

    print(f"Python {sys.version.split()[0]}, PySide6 {pyside}, Qt platform {args.platform}")
    tungui = cold_start(CHILD_TUNGUI, args.platform, args.runs)
    bare = cold_start(CHILD_BARE, args.platform, args.runs)
    verdict = "met" if statistics.median(tungui) < 1.0 else "MISSED"
    print(
        f"cold start to first paint    tungui {summary(tungui)} s   "
        f"bare PySide6 window {summary(bare)} s   (target < 1 s: {verdict})"
    )
    os.environ["QT_QPA_PLATFORM"] = args.platform
    updates, resets, ticks = model_updates(args.devices, args.repeat)
    verdict = "met" if statistics.median(updates) < 5.0 else "MISSED"
    print(
        f"one-device update, {args.devices} rows   {summary(updates)} ms   "
        f"full reset {summary(resets)} ms   (target < 5 ms: {verdict})"
    )
    print(f"one Statistics tick for all {args.devices} rows, with repaint   {summary(ticks)} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
