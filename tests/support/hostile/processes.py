"""Root's side of nobody's hostile processes: start them, hand them the contract,
collect what they report.

Shared by test_hostile.py (the soak) and bench/hostile.py (the free methods
flooded).  nobody's processes run ``client.py`` (its docstring has
the conversation over their pipes); ``tests/support/probes.py`` measures the helper meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from tungui_contract.keys import SPEC_SIGNATURES

from ..errors import StackError
from ..names import HELPER_BUS_NAME, HELPER_INTERFACE, HELPER_OBJECT_PATH, REPO_ROOT
from ..nobody import User, nobody_python_argv, nobody_python_env
from ..processes import tail, terminate

INTERFACE_XML = REPO_ROOT / "resources" / "dbus" / "io.github.tungui.Helper1.xml"
#: The methods anyone may call (the interface XML says "Free." of each).
FREE_METHODS = (
    "ListDevices",
    "ListDevicesByFileDescriptor",
    "Subscribe",
    "WatchStatistics",
    "UnwatchStatistics",
    "GetPermissions",
)
#: StartCapture's options, as the interface XML documents them.
CAPTURE_OPTIONS = {"snaplen": "u", "max_rate": "u"}
#: The client runs from this tree (``tests.support.hostile.client``), imported as
#: root before the drop.
CLIENT_MODULE = "tests.support.hostile.client"
CLIENT_CODE = f"from {CLIENT_MODULE} import main\nmain()\n"
CLIENT_PATH = str(REPO_ROOT)


def contract(targets: Sequence[str]) -> dict[str, Any]:
    """The contract as client.py takes it: the interface XML's methods and keys."""
    root = ElementTree.parse(INTERFACE_XML).getroot()  # our own, trusted file
    members = {
        m.attrib["name"]: "".join(
            a.attrib["type"] for a in m.iter("arg") if a.attrib.get("direction", "in") == "in"
        )
        for m in root.iter("method")
    }
    missing = [m for m in FREE_METHODS if m not in members]
    if missing:
        raise StackError(f"free methods missing from the interface XML: {missing}")
    dict_keys = {
        member: (CAPTURE_OPTIONS if member == "StartCapture" else dict(SPEC_SIGNATURES))
        for member, signature in members.items()
        if "a{sv}" in signature
    }
    return {
        "bus_name": HELPER_BUS_NAME,
        "path": HELPER_OBJECT_PATH,
        "interface": HELPER_INTERFACE,
        "members": members,
        "free": list(FREE_METHODS),
        "dict_keys": dict_keys,
        "targets": list(targets),
    }


# --------------------------------------------------------------------------
# nobody's processes


class HostileProcess:
    """One client.py as nobody; its stderr goes to ``log``."""

    def __init__(self, bus_address: str, log: Path, settings: dict[str, Any], nice: int) -> None:
        self.log = log
        self.settings = settings
        argv = nobody_python_argv(CLIENT_CODE, user=User.named("nobody"), preimport=[CLIENT_MODULE])
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                argv,
                env=nobody_python_env(bus_address, CLIENT_PATH, None),
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                preexec_fn=lambda: os.nice(nice),
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.tell(json.dumps(settings))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # end of output

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def expect(self, timeout: float) -> str:
        """The next line the process prints; raises with its stderr if none comes."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            terminate(self.proc)
            raise StackError(
                f"hostile client {self.settings['process']} printed nothing "
                f"(exit {self.proc.poll()}):\n{tail(self.log)}"
            )
        return line

    def kill(self) -> None:
        terminate(self.proc)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class HostileClients:
    """nobody's processes, started together, let go together, collected together.

    Args:
        bus_address: the private bus.
        directory: where their logs go.
        settings: one dict of client.Settings per process.
        nice: their niceness, so that they do not starve the processes under test.
    """

    def __init__(
        self,
        bus_address: str,
        directory: Path,
        settings: Sequence[dict[str, Any]],
        *,
        nice: int = 0,
    ) -> None:
        self.bus_address = bus_address
        self.directory = directory
        self.settings = list(settings)
        self.nice = nice
        self.processes: list[HostileProcess] = []
        self.started = 0.0

    def start(self, *, timeout: float = 30.0) -> None:
        """Start them and wait until each has its connections open."""
        for s in self.settings:
            log = self.directory / f"hostile-{s['process']}.log"
            self.processes.append(HostileProcess(self.bus_address, log, s, self.nice))
        for p in self.processes:
            line = p.expect(timeout)
            if line != "ready":
                raise StackError(f"hostile client {p.settings['process']} said {line!r}")

    def go(self) -> None:
        self.started = time.monotonic()
        for p in self.processes:
            p.tell("go")

    def stop(self) -> None:
        """Ask them to stop early."""
        for p in self.processes:
            p.tell("stop")

    def results(self, timeout: float) -> list[dict[str, Any]]:
        """What each reported, once all have ended; raises if one did not end well."""
        deadline = time.monotonic() + timeout
        tallies = []
        for p in self.processes:
            line = p.expect(max(0.1, deadline - time.monotonic()))
            status = p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if status != 0:
                raise StackError(
                    f"hostile client {p.settings['process']} exited {status}:\n{tail(p.log)}"
                )
            tallies.append(json.loads(line))
        return tallies

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.processes]

    def kill(self) -> None:
        for p in self.processes:
            p.kill()


def merge(tallies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The tallies of several processes as one: counters added, longest errors kept."""
    total: dict[str, Any] = {"sent": Counter(), "answers": Counter(), "connections": Counter()}
    for t in tallies:
        for key in ("sent", "answers", "connections"):
            total[key].update(t[key])
        for key in ("fds_sent", "tracebacks", "unanswered", "calls_answered", "cpu_seconds"):
            total[key] = total.get(key, 0) + t[key]
        if t["longest_error"] >= total.get("longest_error", 0):
            total["longest_error"] = t["longest_error"]
            total["longest_error_name"] = t["longest_error_name"]
        total["seconds"] = max(total.get("seconds", 0.0), t["seconds"])
        total.setdefault("huge", []).extend(t["huge"])
        total["huge"].sort()
    return total
