"""Commands and processes of the stack: run, end, check, log."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import CommandError, StackError
from .names import DBUS_DAEMON, POLKITD

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing_requirements() -> list[str]:
    """Reasons why the real stack cannot run here; empty when it can."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("needs root (runs dbus-daemon, polkitd and the helper as root)")
    if shutil.which(DBUS_DAEMON) is None:
        missing.append("dbus-daemon is not installed (Debian package dbus-daemon)")
    if not os.access(POLKITD, os.X_OK):
        missing.append(f"{POLKITD} is not installed (Debian package polkitd)")
    for tool, package in (("ip", "iproute2"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} is not installed (Debian package {package})")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        missing.append("there is no user 'nobody'")
    return missing


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output as text; raise CommandError if it fails.

    Bytes that are not UTF-8 (an interface name may hold any) pass both ways
    as surrogate escapes.
    """
    proc = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def terminate(proc: subprocess.Popen[Any], *, timeout: float = 5.0) -> int:
    """SIGTERM ``proc``, SIGKILL it if it lingers; return its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: SIGTERM the child when pytest dies, even by SIGKILL.

    Kept across ``execve`` (``ip netns exec``), dropped by the kernel when
    the child changes its own user (polkitd, setpriv), so it covers the
    root processes: dbus-daemon and the helper.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_shared_tmpdir(prefix: str = "tungui-test-") -> Path:
    """A fresh directory under /tmp that every user can traverse (mode 0755).

    The unprivileged test user and ``polkitd`` must reach the bus socket in
    it, so each parent must be traversable by others too.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            raise StackError(f"{parent} is not traversable by other users")
    return path


def tail(path: Path, limit: int = 20_000) -> str:
    """The end of a log file, or a note that it is missing."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return text if len(text) <= limit else "[…]" + text[-limit:]
