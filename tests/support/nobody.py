"""Running things as a real unprivileged user (``nobody`` by default): commands,
and Python code whose imports happen as root before the drop.
"""

from __future__ import annotations

import itertools
import pwd
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .environment import base_env
from .processes import run


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> User:
        entry = pwd.getpwnam(name)
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def setpriv_argv(user: User) -> list[str]:
    return [
        "setpriv",
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--",
    ]


def run_as_user(
    argv: Sequence[str],
    *,
    user: str = "nobody",
    bus_address: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = False,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``user`` (no supplementary groups) with a clean env
    pointing at the private bus.  ``env`` adds or overrides variables."""
    account = User.named(user)
    full_env = base_env(bus_address)
    full_env["HOME"] = "/nonexistent"
    full_env.update(env or {})
    return run(
        [*setpriv_argv(account), *argv],
        env=full_env,
        input=input,
        timeout=timeout,
        check=check,
        cwd=cwd or Path("/"),
    )


#: Modules every nobody_python process imports while it is still root.
DEFAULT_PREIMPORTS = (
    "asyncio",
    "concurrent.futures.thread",  # loop.run_in_executor
    "json",
    "os",
    "signal",
    "socket",
    "subprocess",
    "sys",
    "time",
    "traceback",
    "dbus_fast",
    "dbus_fast.aio",
    "dbus_fast.introspection",
)

# Runs as root: import what the code needs (the interpreter and the venv
# live where the unprivileged user cannot read), drop to the user, run the
# code.  argv: uid gid module,module,... code
NOBODY_PRELUDE = """\
import importlib, os, sys
_uid, _gid, _mods, _code = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
for _m in filter(None, _mods.split(",")):
    importlib.import_module(_m)
os.setgroups([])
os.setgid(_gid)
os.setuid(_uid)
if os.getuid() != _uid or os.geteuid() != _uid or os.getgid() != _gid or os.getgroups():
    sys.exit("tungui tests: could not drop privileges")
class _NotPreimported:
    # Last on sys.meta_path: reached only when no finder could load a module,
    # which after the drop usually means it lives where the user cannot read.
    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ModuleNotFoundError(
            f"No module named {name!r} (after dropping to uid {_uid}: modules must be "
            f"imported before, pass preimport=[{name!r}])", name=name)
sys.meta_path.append(_NotPreimported)
del sys.argv[1:5]
exec(compile(_code, "<nobody_python>", "exec"), {"__name__": "__main__"})
"""


def nobody_python_argv(
    code: str, *, user: User, preimport: Sequence[str] = (), python: str = sys.executable
) -> list[str]:
    modules = list(dict.fromkeys(itertools.chain(DEFAULT_PREIMPORTS, preimport)))
    for module in modules:
        if not module or "," in module:
            raise ValueError(f"bad module name {module!r}")
    return [
        python,
        "-c",
        NOBODY_PRELUDE,
        str(user.uid),
        str(user.gid),
        ",".join(modules),
        textwrap.dedent(code),
    ]


def nobody_python_env(
    bus_address: str, pythonpath: str | None, env: Mapping[str, str] | None
) -> dict[str, str]:
    full_env = base_env(bus_address, pythonpath)
    full_env["HOME"] = "/nonexistent"
    full_env.update(env or {})
    return full_env


def nobody_python(
    code: str,
    *,
    bus_address: str,
    preimport: Sequence[str] = (),
    user: str = "nobody",
    pythonpath: str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = False,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` as ``user`` (default nobody) and wait for it.

    The interpreter starts as root, imports :data:`DEFAULT_PREIMPORTS` and
    ``preimport`` (modules that cannot be read after dropping privileges:
    anything the code imports must be in one of them), then drops to the
    user and runs ``code`` (dedented) as ``__main__``.  Its D-Bus
    connections authenticate as that user.
    """
    return run(
        nobody_python_argv(code, user=User.named(user), preimport=preimport),
        env=nobody_python_env(bus_address, pythonpath, env),
        input=input,
        timeout=timeout,
        check=check,
        cwd=cwd or Path("/"),
    )


def spawn_nobody_python(
    code: str,
    *,
    bus_address: str,
    preimport: Sequence[str] = (),
    user: str = "nobody",
    pythonpath: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    """Like :func:`nobody_python` but returns at once (pipes on stdin/out/err),
    for clients that must stay alive (e.g. to hold a device) or be killed."""
    return subprocess.Popen(
        nobody_python_argv(code, user=User.named(user), preimport=preimport),
        env=nobody_python_env(bus_address, pythonpath, env),
        cwd=cwd or Path("/"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


# --------------------------------------------------------------------------
# Types of the callables the fixtures hand out


class RunAsNobody(Protocol):
    """The ``run_as_nobody`` fixture: :func:`run_as_user` bound to the test bus."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 30.0,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


class NobodyPython(Protocol):
    """The ``nobody_python`` fixture: :func:`nobody_python` bound to the test bus."""

    def __call__(
        self,
        code: str,
        *,
        preimport: Sequence[str] = (),
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 30.0,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


class SpawnNobodyPython(Protocol):
    """The ``spawn_nobody_python`` fixture: :func:`spawn_nobody_python` bound to the test bus."""

    def __call__(
        self,
        code: str,
        *,
        preimport: Sequence[str] = (),
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[str]: ...
