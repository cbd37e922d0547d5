"""What the benchmark scripts share: the stack, progress, CPU time, C programs, cleaning up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tests.support.bus import DBusDaemon
from tests.support.environment import python_path
from tests.support.helper import HelperProcess
from tests.support.netns import Netns
from tests.support.polkit import PolkitDaemon
from tests.support.processes import make_shared_tmpdir, pid_alive, run


def log(text: str) -> None:
    """Progress, on stderr; the figures go to stdout."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def cpu_ticks(pid: int, tid: int | None = None) -> int:
    """utime + stime of a process (all its threads), or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text("ascii").rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, in seconds."""
    return cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def compile_c(directory: Path, name: str, source: str) -> str:
    """Compile a C program of a benchmark; the path of the binary."""
    path = directory / f"{name}.c"
    path.write_text(source)
    binary = directory / name
    subprocess.run(["cc", "-O2", "-o", str(binary), str(path)], check=True)
    return str(binary)


def remove_stale_netns(prefix: str) -> None:
    """Delete namespaces ``<prefix><pid>[-…]`` of runs that died without cleaning up."""
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        pid = name.removeprefix(prefix).split("-", 1)[0]
        if name.startswith(prefix) and pid.isdigit() and not pid_alive(int(pid)):
            log(f"removing the namespace {name} of a dead run")
            run(["ip", "netns", "del", name], check=False)


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: clean up as on Ctrl+C."""
    raise KeyboardInterrupt


def teardown(steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
    """Run every step, even when one fails or the user presses Ctrl+C again."""
    for what, step in steps:
        for _attempt in range(3):
            try:
                step()
            except KeyboardInterrupt:
                continue
            except Exception as exc:
                log(f"cleaning up {what} failed: {exc}")
            break


class BenchStack:
    """The integration tests' stack for one benchmark run: a private dbus-daemon,
    polkitd, a network namespace and the helper in it, none started yet.

    Args:
        prefix: names the namespace and the temporary directory; stale ones
            from killed runs are removed first.
        pythonpath: the helper's PYTHONPATH, made in the run's directory
            (default: this tree's code where Python would not find it).
        helper_class: the helper's process class, given ``helper_options``.
    """

    def __init__(
        self,
        prefix: str,
        *,
        pythonpath: Callable[[Path], str] | None = None,
        helper_class: type[HelperProcess] = HelperProcess,
        **helper_options: Any,
    ) -> None:
        remove_stale_netns(prefix)
        self.directory = make_shared_tmpdir(prefix)
        self.pythonpath = (pythonpath or _tree_pythonpath)(self.directory)
        self.bus = DBusDaemon(self.directory)
        self.polkit = PolkitDaemon(self.bus.address, self.directory)
        self.netns = Netns(f"{prefix}{os.getpid()}")
        self.helper = helper_class(
            self.bus.address,
            self.netns,
            self.directory,
            pythonpath=self.pythonpath,
            **helper_options,
        )

    def start(self, *, helper: bool = True) -> None:
        """Start dbus-daemon and polkitd, make the namespace, then (by default) the helper."""
        self.bus.start()
        self.polkit.start()
        self.netns.create()
        if helper:
            self.helper.start()

    def close(self, *first: tuple[str, Callable[[], object]], helper_stderr: bool = False) -> None:
        """Undo everything, after the ``first`` steps; ``helper_stderr``: show what it logged."""
        if helper_stderr:
            text = self.helper.stderr_text(all_runs=True)
            if text.strip():
                print(f"--- helper stderr ---\n{text[-5000:]}", file=sys.stderr)
        teardown(
            [
                *first,
                ("helper", self.helper.kill),
                ("polkitd", self.polkit.stop),
                ("dbus-daemon", self.bus.stop),
                (self.netns.name, self.netns.delete),
                (str(self.directory), lambda: shutil.rmtree(self.directory)),
            ]
        )


def _tree_pythonpath(directory: Path) -> str:
    return python_path(directory / "shim")
