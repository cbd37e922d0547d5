"""Bring up the real tungui stack for integration tests.

Plain, typed building blocks; ``conftest.py`` turns them into fixtures:

- :class:`DBusDaemon`: a private ``dbus-daemon`` configured as a system bus
  whose only rules for tungui come from the shipped
  ``resources/dbus/io.github.tungui.Helper1.conf``.
- :class:`PolkitDaemon`: the real ``polkitd`` on that bus, with the shipped
  ``resources/polkit/io.github.tungui.policy`` installed, and
  :meth:`PolkitDaemon.grant` to allow an action to a user for a while.
- :class:`Netns`: a network namespace made for the test session.
- :class:`HelperProcess`: the real helper, as root, inside that namespace.
- :func:`run_as_user` and :func:`nobody_python`: run clients as a real
  unprivileged user.

Everything here uses the standard library and dbus-fast only, never the
project's own Python API, so it keeps working while that code changes.
See /work/shared/TESTING.md for the facts this relies on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import importlib.util
import itertools
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from xml.etree import ElementTree

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

T = TypeVar("T")

# --------------------------------------------------------------------------
# Names and paths

REPO_ROOT = Path(__file__).resolve().parents[2]
DBUS_POLICY_FILE = REPO_ROOT / "resources" / "dbus" / "io.github.tungui.Helper1.conf"
POLKIT_POLICY_FILE = REPO_ROOT / "resources" / "polkit" / "io.github.tungui.policy"
HELPER_SOURCE_DIR = REPO_ROOT / "helper"  # the package tungui_helper (see pyproject.toml)

HELPER_BUS_NAME = "io.github.tungui.Helper1"
HELPER_OBJECT_PATH = "/io/github/tungui/Helper1"
HELPER_INTERFACE = "io.github.tungui.Helper1"

ACTION_MANAGE = "io.github.tungui.manage"
ACTION_MANAGE_FOREIGN = "io.github.tungui.manage-foreign"
ACTION_CAPTURE = "io.github.tungui.capture"
ACTIONS = (ACTION_MANAGE, ACTION_MANAGE_FOREIGN, ACTION_CAPTURE)

DBUS_NAME = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
POLKIT_BUS_NAME = "org.freedesktop.PolicyKit1"
POLKIT_PATH = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_INTERFACE = "org.freedesktop.PolicyKit1.Authority"

DBUS_DAEMON = "dbus-daemon"
POLKITD = Path("/usr/lib/polkit-1/polkitd")
POLKIT_ACTIONS_DIR = Path("/usr/share/polkit-1/actions")
POLKIT_RULES_DIR = Path("/etc/polkit-1/rules.d")

#: RequestName flag and replies (D-Bus specification).
DBUS_NAME_FLAG_DO_NOT_QUEUE = 4
DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER = 1

#: Prefixes of what a test session leaves on the machine; the pid of the
#: pytest process follows, so leftovers of a killed session can be found.
NETNS_PREFIX = "tungui-test-"
RULES_PREFIX = "49-tungui-test-"

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# Small tools


class StackError(Exception):
    """Something in the test stack did not come up or go down as it should."""


class CommandError(StackError):
    """A command exited non-zero; the message carries its output."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"{' '.join(argv)} exited {returncode}\n"
            f"--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        )


class DBusCallError(StackError):
    """A D-Bus call was answered with an error."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")


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


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    what: str = "condition",
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy; return that.

    Raises :class:`TimeoutError` after ``timeout`` seconds, naming ``what``
    and the last value or exception seen.  ``abort`` is asked before each
    try; when it returns a message (say, the process we wait for has died),
    waiting stops at once with a :class:`StackError` carrying it.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if abort is not None:
            reason = abort()
            if reason is not None:
                raise StackError(f"gave up waiting for {what}: {reason}")
        try:
            value = predicate()
        except Exception as exc:  # remembered and reported on timeout
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s (last: {last!r})")
        time.sleep(interval)


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


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> User:
        entry = pwd.getpwnam(name)
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


# --------------------------------------------------------------------------
# D-Bus, synchronously (the fixtures and most tests are not async)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, even when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _call(
    address: str,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str,
    body: Sequence[Any],
    timeout: float,
) -> list[Any]:
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    try:
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination=destination,
                    path=path,
                    interface=interface,
                    member=member,
                    signature=signature,
                    body=list(body),
                )
            ),
            timeout,
        )
    finally:
        bus.disconnect()
        # Collect the reader's end-of-stream, or asyncio logs it as a
        # "Future exception was never retrieved" at exit.
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        message = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusCallError(reply.error_name or "(no error name)", message)
    return list(reply.body)


def bus_call(
    address: str,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
    *,
    timeout: float = 5.0,
) -> list[Any]:
    """One method call on its own connection (as the calling process's user).

    Returns the reply's body; raises :class:`DBusCallError` for an error reply.
    """
    return run_coroutine(
        _call(address, destination, path, interface, member, signature, body, timeout)
    )


def dbus_daemon_call(address: str, member: str, signature: str = "", *body: Any) -> list[Any]:
    """Call a method of the bus daemon itself (org.freedesktop.DBus)."""
    return bus_call(address, DBUS_NAME, DBUS_PATH, DBUS_NAME, member, signature, body)


def name_has_owner(address: str, name: str) -> bool:
    return bool(dbus_daemon_call(address, "NameHasOwner", "s", name)[0])


def name_owner_pid(address: str, name: str) -> int | None:
    """The pid of the process that owns ``name``, or None when nobody does."""
    try:
        return int(dbus_daemon_call(address, "GetConnectionUnixProcessID", "s", name)[0])
    except DBusCallError as exc:
        if exc.name == "org.freedesktop.DBus.Error.NameHasNoOwner":
            return None
        raise


# --------------------------------------------------------------------------
# The private system bus


BUS_CONFIG_TEMPLATE = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="method_return"/>
    <allow receive_type="error"/> <allow receive_type="signal"/>
  </policy>
  <policy user="root"><allow own="*"/><allow send_type="method_call"/></policy>
  <policy user="polkitd"><allow own="org.freedesktop.PolicyKit1"/></policy>
  <include>{include}</include>{extra}
</busconfig>
"""


class DBusDaemon:
    """A private ``dbus-daemon`` that behaves like a system bus.

    Its only rules for tungui are the project's own D-Bus policy file,
    included by absolute path, so tests prove the shipped file.
    """

    def __init__(
        self,
        directory: Path,
        policy_file: Path = DBUS_POLICY_FILE,
        *,
        servicedir: Path | None = None,
    ) -> None:
        if not policy_file.is_file():
            raise StackError(f"the D-Bus policy file {policy_file} does not exist")
        self.directory = directory
        self.policy_file = policy_file.resolve()
        self.socket_path = directory / "system_bus_socket"
        self.config_path = directory / "system-bus.conf"
        self.log_path = directory / "dbus-daemon.log"
        self._address_path = directory / "dbus-daemon.address"
        self.address = f"unix:path={self.socket_path}"
        self.proc: subprocess.Popen[bytes] | None = None
        #: Where D-Bus activation files are looked up (none by default).
        self.servicedir = servicedir

    def start(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config_path.write_text(
            BUS_CONFIG_TEMPLATE.format(
                socket=self.socket_path,
                include=self.policy_file,
                extra=(
                    f"\n  <servicedir>{self.servicedir}</servicedir>" if self.servicedir else ""
                ),
            ),
            "utf-8",
        )
        with self._address_path.open("wb") as out, self.log_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    DBUS_DAEMON,
                    f"--config-file={self.config_path}",
                    "--nofork",
                    "--print-address",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        proc = self.proc
        # --print-address writes once the socket listens.
        wait_until(
            lambda: self._address_path.read_text("utf-8").strip(),
            timeout=timeout,
            what="dbus-daemon to listen",
            abort=lambda: (
                None
                if proc.poll() is None
                else f"dbus-daemon exited {proc.returncode}:\n{tail(self.log_path)}"
            ),
        )
        wait_until(lambda: dbus_daemon_call(self.address, "GetId"), what="dbus-daemon to answer")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """Stop it; raise with its log if it had died on its own."""
        if self.proc is None:
            return
        died = self.proc.poll()
        terminate(self.proc)
        self.proc = None
        if died is not None:
            raise StackError(f"dbus-daemon had died ({died}):\n{tail(self.log_path)}")

    def log_text(self) -> str:
        return tail(self.log_path)


# --------------------------------------------------------------------------
# polkit


@dataclass(frozen=True)
class AuthResult:
    """polkit's answer: ``(is_authorized, is_challenge, details)``."""

    authorized: bool
    challenge: bool
    details: dict[str, str] = field(default_factory=dict)


def process_subject(pid: int) -> tuple[str, dict[str, Variant]]:
    """A polkit ``unix-process`` subject (polkit looks the start time up)."""
    return ("unix-process", {"pid": Variant("u", pid), "start-time": Variant("t", 0)})


def bus_name_subject(unique_name: str) -> tuple[str, dict[str, Variant]]:
    """A polkit ``system-bus-name`` subject: what the helper checks with."""
    return ("system-bus-name", {"name": Variant("s", unique_name)})


#: polkit.Result values a rules file may return, and what CheckAuthorization
#: answers for each (authorized, challenge), without an authentication agent.
RULE_RESULTS: dict[str, tuple[bool, bool]] = {
    "YES": (True, False),
    "NO": (False, False),
    "AUTH_SELF": (False, True),
    "AUTH_SELF_KEEP": (False, True),
    "AUTH_ADMIN": (False, True),
    "AUTH_ADMIN_KEEP": (False, True),
}


class PolkitDaemon:
    """The real ``polkitd`` on a private bus, with our actions installed.

    ``start`` copies the project's ``.policy`` into polkit's actions
    directory (keeping any file that was there, and putting it back on
    ``stop``); ``grant`` writes a rules file for the time of a ``with``.
    """

    def __init__(
        self,
        bus_address: str,
        directory: Path,
        policy_file: Path = POLKIT_POLICY_FILE,
        *,
        actions_dir: Path = POLKIT_ACTIONS_DIR,
        rules_dir: Path = POLKIT_RULES_DIR,
    ) -> None:
        if not policy_file.is_file():
            raise StackError(f"the polkit policy file {policy_file} does not exist")
        self.bus_address = bus_address
        self.policy_file = policy_file
        self.installed_policy = actions_dir / policy_file.name
        self.rules_dir = rules_dir
        self.log_path = directory / "polkitd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._saved_policy: bytes | None = None
        self._installed = False
        self._rules: set[Path] = set()
        self._probes: dict[str, subprocess.Popen[bytes]] = {}

    # -- life

    def start(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._install_policy()
        env = {"PATH": SAFE_PATH, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(POLKITD), "--no-debug"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        wait_until(
            lambda: name_has_owner(self.bus_address, POLKIT_BUS_NAME),
            timeout=timeout,
            what=f"polkitd to own {POLKIT_BUS_NAME}",
            abort=self._died,
        )
        wanted = set(self.action_ids_in_policy())
        wait_until(
            lambda: wanted <= self.known_actions(),
            timeout=timeout,
            what=f"polkitd to know the actions {sorted(wanted)}",
            abort=self._died,
        )

    def _died(self) -> str | None:
        proc = self.proc
        if proc is None or proc.poll() is None:
            return None
        return f"polkitd exited {proc.returncode}:\n{tail(self.log_path)}"

    def stop(self) -> None:
        """Stop polkitd, remove rules and probes, restore the actions directory."""
        errors: list[str] = []
        for path in list(self._rules):
            path.unlink(missing_ok=True)
            self._rules.discard(path)
        for probe in self._probes.values():
            if probe.stdin is not None:
                probe.stdin.close()
            terminate(probe)
        self._probes.clear()
        if self.proc is not None:
            died = self._died()
            if died is not None:
                errors.append(died)
            terminate(self.proc)
            self.proc = None
        self._restore_policy()
        if errors:
            raise StackError("\n".join(errors))

    def _install_policy(self) -> None:
        if self.installed_policy.exists():
            self._saved_policy = self.installed_policy.read_bytes()
        shutil.copyfile(self.policy_file, self.installed_policy)
        self.installed_policy.chmod(0o644)
        self._installed = True

    def _restore_policy(self) -> None:
        if not self._installed:
            return
        if self._saved_policy is None:
            self.installed_policy.unlink(missing_ok=True)
        else:
            self.installed_policy.write_bytes(self._saved_policy)
        self._installed = False

    def log_text(self) -> str:
        return tail(self.log_path)

    # -- asking

    def action_ids_in_policy(self) -> list[str]:
        root = ElementTree.parse(self.policy_file).getroot()  # our own, trusted file
        return [a.attrib["id"] for a in root.iter("action")]

    def known_actions(self) -> set[str]:
        (descriptions,) = bus_call(
            self.bus_address,
            POLKIT_BUS_NAME,
            POLKIT_PATH,
            POLKIT_INTERFACE,
            "EnumerateActions",
            "s",
            [""],
        )
        return {str(d[0]) for d in descriptions}

    def check(
        self,
        action_id: str,
        subject: tuple[str, dict[str, Variant]],
        *,
        details: Mapping[str, str] | None = None,
        allow_user_interaction: bool = False,
    ) -> AuthResult:
        """polkit's CheckAuthorization, asked by this (root) process."""
        (result,) = bus_call(
            self.bus_address,
            POLKIT_BUS_NAME,
            POLKIT_PATH,
            POLKIT_INTERFACE,
            "CheckAuthorization",
            "(sa{sv})sa{ss}us",
            [list(subject), action_id, dict(details or {}), int(allow_user_interaction), ""],
        )
        authorized, challenge, result_details = result
        return AuthResult(bool(authorized), bool(challenge), dict(result_details))

    def check_user(self, action_id: str, user: str = "nobody") -> AuthResult:
        """Would a process of ``user`` be authorized for ``action_id`` now?

        polkit refuses ``unix-user`` subjects in CheckAuthorization, so this
        asks about a long-lived process of that user (a "probe").
        """
        return self.check(action_id, process_subject(self._probe(user)))

    def _probe(self, user: str) -> int:
        probe = self._probes.get(user)
        if probe is not None and probe.poll() is None:
            return probe.pid
        account = User.named(user)
        # ``cat`` on a pipe from us: it exits when we close the pipe, or when
        # pytest dies (a signal on parent death would not survive setpriv).
        probe = subprocess.Popen(
            [*setpriv_argv(account), "cat"],
            env={"PATH": SAFE_PATH},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._probes[user] = probe

        def changed_user() -> bool:
            # polkit must not see the process while it is still root.
            status = Path(f"/proc/{probe.pid}/status").read_text("utf-8")
            uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
            exe = str(Path(f"/proc/{probe.pid}/exe").readlink())
            return all(int(u) == account.uid for u in uids.split()[1:]) and exe.endswith("/cat")

        wait_until(changed_user, what=f"the {user} probe process to drop privileges")
        return probe.pid

    # -- granting

    @contextlib.contextmanager
    def grant(
        self,
        action_id: str,
        user: str = "nobody",
        *,
        result: str = "YES",
        timeout: float = 5.0,
    ) -> Iterator[Path]:
        """For the ``with`` block, polkit answers ``result`` for ``action_id``
        and ``user`` (``polkit.Result.YES`` by default).

        Returns only once polkitd applies the new rule, and on leaving only
        once it applies the rules as they were before.  Yields the rules file.
        """
        if result not in RULE_RESULTS:
            raise ValueError(f"unknown polkit result {result!r}")
        User.named(user)  # fail early on a misspelt user
        before = self.check_user(action_id, user)
        expected = RULE_RESULTS[result]
        rule = textwrap.dedent(
            f"""\
            // Written by tungui's integration tests (pid {os.getpid()}); safe to delete.
            polkit.addRule(function(action, subject) {{
                if (action.id == {json.dumps(action_id)} && subject.user == {json.dumps(user)}) {{
                    return polkit.Result.{result};
                }}
            }});
            """
        )
        path = self.rules_dir / f"{RULES_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.rules"
        # polkitd watches the directory: write elsewhere, then rename into
        # place, so it never reads half a file.
        partial = path.with_suffix(".partial")
        partial.write_text(rule, "utf-8")
        partial.chmod(0o644)
        self._rules.add(path)
        body_failed = True
        try:
            partial.rename(path)

            def applied() -> bool:
                now = self.check_user(action_id, user)
                return (now.authorized, now.challenge) == expected

            wait_until(
                applied, timeout=timeout, what=f"polkitd to apply {path.name}", abort=self._died
            )
            yield path
            body_failed = False
        finally:
            partial.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            self._rules.discard(path)

            def reverted() -> bool:
                now = self.check_user(action_id, user)
                return (now.authorized, now.challenge) == (before.authorized, before.challenge)

            # Wait even when the block failed, so the next test starts clean;
            # but never hide the block's own exception behind ours.
            try:
                wait_until(
                    reverted,
                    timeout=timeout,
                    what=f"polkitd to forget {path.name}",
                    abort=self._died,
                )
            except (TimeoutError, StackError):
                if not body_failed:
                    raise


def remove_stale_rules(rules_dir: Path = POLKIT_RULES_DIR) -> list[Path]:
    """Remove rules files left by test sessions that died (their pid is gone)."""
    removed: list[Path] = []
    for path in rules_dir.glob(f"{RULES_PREFIX}*"):
        pid_text = path.name.removeprefix(RULES_PREFIX).split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# --------------------------------------------------------------------------
# Network namespace


class Netns:
    """A network namespace made by and for the test session.

    Never touches the machine's own interfaces: every ``ip`` command runs
    with ``-n NAME``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.baseline: frozenset[str] = frozenset()
        self.created = False

    def create(self) -> None:
        run(["ip", "netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")
        # A new namespace may hold fallback devices (sit0, gre0, … when those
        # modules are loaded) that cannot be deleted: they stay.
        self.baseline = frozenset(self.link_names())

    def delete(self) -> None:
        if self.created:
            run(["ip", "netns", "del", self.name])
            self.created = False

    def exec_argv(self, *argv: str) -> list[str]:
        """The argv that runs ``argv`` inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def ip_run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """``ip -n NAME ARGS``, returning the CompletedProcess (no check by default)."""
        return run(["ip", "-n", self.name, *args], check=check)

    def ip(self, *args: str) -> str:
        """``ip -n NAME ARGS``; returns stdout, raises CommandError on failure."""
        return self.ip_run(*args, check=True).stdout

    def ip_json(self, *args: str) -> list[dict[str, Any]]:
        """``ip -n NAME -j -d ARGS``, parsed."""
        out = self.ip("-j", "-d", *args).strip()
        if not out:
            return []
        data = json.loads(out)
        assert isinstance(data, list)
        return data

    def link_names(self) -> list[str]:
        return [str(link["ifname"]) for link in self.ip_json("link", "show")]

    def link(self, name: str) -> dict[str, Any] | None:
        """The ``ip -j -d link show NAME`` entry, or None if there is no such link."""
        proc = self.ip_run("-j", "-d", "link", "show", "dev", name)
        if proc.returncode != 0:
            return None
        links = json.loads(proc.stdout)
        return links[0] if links else None

    def clean(self, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """Delete every link that was not there when the namespace was made.

        Returns the names deleted.  Uses one ``ip -batch`` per round (deleting
        one end of a veth pair removes the other, so errors are ignored and
        the list is read again).
        """
        deleted: list[str] = []

        def extra() -> list[str]:
            return [n for n in self.link_names() if n not in self.baseline]

        def gone() -> bool:
            names = extra()
            if not names:
                return True
            deleted.extend(n for n in names if n not in deleted)
            batch = "".join(f"link del dev {n}\n" for n in names)
            run(["ip", "-n", self.name, "-force", "-batch", "-"], input=batch, check=False)
            return not extra()

        wait_until(gone, timeout=timeout, interval=0.05, what=f"links in {self.name} deleted")
        return deleted


def remove_stale_netns() -> list[str]:
    """Delete namespaces left by test sessions that died (their pid is gone)."""
    removed: list[str] = []
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        pid_text = name.removeprefix(NETNS_PREFIX)
        if name.startswith(NETNS_PREFIX) and pid_text.isdigit() and not pid_alive(int(pid_text)):
            run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    return removed


# --------------------------------------------------------------------------
# Python environment for the helper and for nobody's clients


def python_path(shim_dir: Path) -> str:
    """PYTHONPATH under which ``tungui`` and ``tungui_helper`` import.

    ``tungui`` lives at the repo root.  ``tungui_helper`` is the directory
    ``helper/`` (pyproject's package-dir); when it is not installed (say,
    with ``pip install -e .``) a symlink to it is made in ``shim_dir``.
    """
    entries = [str(REPO_ROOT)]
    if importlib.util.find_spec("tungui_helper") is None:
        shim_dir.mkdir(parents=True, exist_ok=True)
        link = shim_dir / "tungui_helper"
        if not link.is_symlink():
            link.symlink_to(HELPER_SOURCE_DIR, target_is_directory=True)
        entries.insert(0, str(shim_dir))
    return os.pathsep.join(entries)


def base_env(bus_address: str, pythonpath: str | None = None) -> dict[str, str]:
    """A clean environment that points at the private bus only."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "DBUS_SYSTEM_BUS_ADDRESS": bus_address,
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


# --------------------------------------------------------------------------
# The helper


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


# --------------------------------------------------------------------------
# Running things as an unprivileged user


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


class Grant(Protocol):
    """The ``grant`` fixture: :meth:`PolkitDaemon.grant`."""

    def __call__(
        self, action_id: str, user: str = "nobody", *, result: str = "YES", timeout: float = 5.0
    ) -> contextlib.AbstractContextManager[Path]: ...
