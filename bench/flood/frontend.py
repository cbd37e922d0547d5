"""The front end: the real window in a process of its own, and what this side sees of it."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.support.environment import base_env
from tests.support.errors import StackError
from tests.support.names import REPO_ROOT
from tests.support.processes import die_with_parent, tail, terminate

from .vm import DEVICE

#: How often the window's event loop is asked to tick, to see how late it runs.
HEARTBEAT_S = 0.05


def front_end(address: str, device: str, settings_path: str) -> int:
    """The window watching ``device``, as a person would open it; reports on stdout.

    What the window got is read from the outside where it can be: the
    packets its capture thread parsed (``parse_message`` in
    ``tungui.gui.capture.reader``, wrapped here to count them and to note the
    helper's dropped and sampled-out figures that each packet carries), the
    packets that went into the list (its rows and those let go), and what
    the packet window itself counts (``skipped``, ``not_shown``).  The rest
    is queued between the capture thread and the GUI thread.
    """
    from PySide6.QtCore import QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    import tungui.gui.capture.reader as capture_reader
    import tungui.gui.capture.window as packetview
    from tungui.gui.actions import Act
    from tungui.gui.app import App
    from tungui.packets.stream import Packet

    def say(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    # The capture thread calls the name parse_message of its reader's module:
    # wrap what that name holds, before any packet window exists.
    parsed = dropped = sampled = 0
    parse: Callable[[bytes], list[Packet]] = vars(capture_reader)["parse_message"]

    def counted(message: bytes) -> list[Packet]:  # on the capture thread
        nonlocal parsed, dropped, sampled
        packets = parse(message)
        parsed += len(packets)
        if packets:
            # The helper's counts so far, as of this message (the list may lag behind).
            dropped = packets[-1].dropped
            sampled = getattr(packets[-1], "sampled", 0)
        return packets

    vars(capture_reader)["parse_message"] = counted
    tungui = App(address, QSettings(settings_path, QSettings.Format.IniFormat))

    class Probe(QObject):
        """Triggers Watch Packets once the device is listed; reports what arrives."""

        def __init__(self) -> None:
            super().__init__()
            self.packets: packetview.PacketWindow | None = None
            self.asked = False
            self.last_beat = time.monotonic()
            self.late = 0.0
            #: Rows added to the packet list, one batch at a time.
            self.updates = 0

        def maybe_watch(self, *_args: object) -> None:
            window = tungui.window
            if self.asked or not tungui.helper.available or window.graph is None:
                return
            if tungui.model.row_of(device) is None:
                return
            window.select(device)
            if window.action(Act.WATCH).isEnabled():
                self.asked = True
                # The controller's path: StartCapture, PacketWindow.
                window.action(Act.WATCH).trigger()

        def finished(self, _request: int, _result: object) -> None:
            # Connected after the controller's slot: the packet window exists now.
            found = tungui.window.findChildren(packetview.PacketWindow)
            if self.packets is not None or not found:
                return
            self.packets = found[0]
            self.packets.model.rowsInserted.connect(self.updated)
            threads = {t.name: t.native_id for t in threading.enumerate()}
            say(
                event="watching",
                gui=threading.get_native_id(),
                reader=threads.get("tungui-capture"),
                bus=threads.get("tungui-bus"),
            )
            threading.Thread(target=self.report, name="flood-report", daemon=True).start()

        def failed(self, _request: int, error: str, message: str) -> None:
            say(event="failed", error=error, message=message)
            app.exit(1)

        def beat(self) -> None:
            now = time.monotonic()
            self.late = max(self.late, now - self.last_beat - HEARTBEAT_S)
            self.last_beat = now

        def updated(self, *_args: object) -> None:
            self.updates += 1

        def report(self) -> None:  # on a thread of its own, so a busy GUI thread cannot delay it
            window = self.packets
            assert window is not None
            while True:
                time.sleep(0.5)
                late = max(self.late, time.monotonic() - self.last_beat - HEARTBEAT_S)
                self.late = 0.0
                rows = window.model.rowCount()
                listed = rows + window.model.pushed_out
                skipped = int(getattr(window, "skipped", 0))
                say(
                    event="stats",
                    parsed=parsed,
                    listed=listed,
                    rows=rows,
                    pushed_out=window.model.pushed_out,
                    skipped=skipped,
                    queued=parsed - listed - skipped - window.not_shown,
                    dropped=dropped,
                    sampled=sampled,
                    late_ms=max(late, 0.0) * 1000,
                    updates=self.updates,
                )

    probe = Probe()
    tungui.helper.availabilityChanged.connect(probe.maybe_watch)
    tungui.model.modelReset.connect(probe.maybe_watch)
    tungui.model.rowsInserted.connect(probe.maybe_watch)
    tungui.window.graphReady.connect(probe.maybe_watch)
    tungui.helper.finished.connect(probe.finished)
    tungui.helper.failed.connect(probe.failed)
    heartbeat = QTimer()
    heartbeat.timeout.connect(probe.beat)
    heartbeat.start(int(HEARTBEAT_S * 1000))
    tungui.start()
    return app.exec()


class FrontEnd:
    """The window's process, seen from here: its announcements and latest counts."""

    def __init__(self, address: str, directory: Path, pythonpath: str) -> None:
        env = base_env(address, pythonpath)
        runtime = directory / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env.update(QT_QPA_PLATFORM="offscreen", HOME=str(directory), XDG_RUNTIME_DIR=str(runtime))
        self.stderr_path = directory / "front-end-stderr.log"
        argv = [
            sys.executable,
            "-m",
            "bench.flood",
            "--front-end",
            address,
            DEVICE,
            str(directory / "ini"),
        ]
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stats: dict[str, Any] = {}
        self.stats_seen = 0
        self.threads: dict[str, int] = {}
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            message = json.loads(line)
            if message.get("event") == "stats":
                self.stats = message
                self.stats_seen += 1
            else:
                self.events.put(message)
        self.events.put({"event": "exited"})

    def wait_watching(self, timeout: float = 60.0) -> None:
        """Until the packet window is up; raise with the process's stderr if it is not."""
        try:
            message = self.events.get(timeout=timeout)
        except queue.Empty:
            message = {"event": f"nothing within {timeout:g} s"}
        if message.get("event") != "watching":
            raise StackError(
                f"the window did not start watching ({message}):\n{tail(self.stderr_path)}"
            )
        self.threads = {k: int(message[k]) for k in ("gui", "reader", "bus") if message.get(k)}

    def stop(self) -> None:
        terminate(self.proc)
