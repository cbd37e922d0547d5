"""The real helper, as root, inside the test's network namespace."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .buscall import name_has_owner, name_owner_pid
from .environment import base_env
from .errors import StackError
from .names import HELPER_BUS_NAME, REPO_ROOT
from .netns import Netns
from .processes import die_with_parent, terminate
from .waiting import DEFAULT_TIMEOUT, wait_until


class HelperProcess:
    """The real helper: ``ip netns exec NS python -m tungui_helper`` as root.

    ``ip netns exec`` execs the command, so :attr:`pid` is the helper's own
    pid, and the bus reports it as the owner of the name.
    """

    def __init__(
        self,
        bus_address: str,
        netns: Netns,
        directory: Path,
        *,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        pythonpath: str | None = None,
    ) -> None:
        self.bus_address = bus_address
        self.netns = netns
        self.python = python
        self.extra_args = list(extra_args)
        self.stderr_path = directory / "helper-stderr.log"
        self.pythonpath = pythonpath
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stderr_offset = 0

    @property
    def argv(self) -> list[str]:
        return self.netns.exec_argv(
            self.python, "-m", "tungui_helper", "--idle-timeout", "0", *self.extra_args
        )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise StackError("the helper is not running")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fd_count(self) -> int:
        """How many file descriptors the helper has open."""
        return len(list(Path(f"/proc/{self.pid}/fd").iterdir()))

    def exited_unexpectedly(self) -> int | None:
        """The exit status if the helper died without :meth:`stop`, else None."""
        if self.proc is None:
            return None
        return self.proc.poll()

    def start(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start it and wait until it owns its bus name."""
        if self.running:
            raise StackError(f"the helper is already running (pid {self.pid})")
        if name_has_owner(self.bus_address, HELPER_BUS_NAME):
            raise StackError(f"{HELPER_BUS_NAME} already has an owner on the test bus")
        self._stderr_offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        self.starts += 1
        with self.stderr_path.open("ab") as err:
            err.write(f"===== helper start #{self.starts}: {' '.join(self.argv)}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=base_env(self.bus_address, self.pythonpath),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        proc = self.proc
        try:
            wait_until(
                lambda: name_owner_pid(self.bus_address, HELPER_BUS_NAME) == proc.pid,
                timeout=timeout,
                what=f"the helper (pid {proc.pid}) to own {HELPER_BUS_NAME}",
                abort=lambda: (
                    None
                    if proc.poll() is None
                    else f"the helper exited {proc.returncode}:\n{self.stderr_text()}"
                ),
            )
        except BaseException:
            terminate(proc)
            self.proc = None
            raise

    def stop(
        self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = DEFAULT_TIMEOUT
    ) -> int:
        """Send ``sig`` (SIGTERM), wait for the exit and for the name to be released.

        Returns the exit status (negative for a signal).  Raises if the
        process does not exit within ``timeout`` (it is then killed).
        """
        proc = self.proc
        if proc is None:
            raise StackError("the helper is not running")
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            terminate(proc, timeout=1.0)
            self.proc = None
            raise StackError(
                f"the helper did not exit within {timeout:g} s of {sig.name}; killed it:\n"
                + self.stderr_text()
            ) from None
        self.proc = None
        wait_until(
            lambda: not name_has_owner(self.bus_address, HELPER_BUS_NAME),
            timeout=timeout,
            what=f"{HELPER_BUS_NAME} to lose its owner",
        )
        return proc.returncode

    def kill(self) -> None:
        """Best-effort end, for teardown: never raises about the process."""
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None

    def stderr_text(self, *, all_runs: bool = False) -> str:
        """What the helper wrote to stderr (and stdout) since its last start."""
        try:
            with self.stderr_path.open("rb") as f:
                if not all_runs:
                    f.seek(self._stderr_offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_size(self) -> int:
        return self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
