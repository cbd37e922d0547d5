"""The real ``polkitd`` on the private bus, with our actions installed, and rules
files that grant an action to a user for the time of a ``with``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree

from dbus_fast import Variant

from .buscall import bus_call, name_has_owner
from .errors import StackError
from .names import (
    POLKIT_ACTIONS_DIR,
    POLKIT_BUS_NAME,
    POLKIT_INTERFACE,
    POLKIT_PATH,
    POLKIT_POLICY_FILE,
    POLKIT_RULES_DIR,
    POLKITD,
    RULES_PREFIX,
)
from .nobody import User, setpriv_argv
from .processes import SAFE_PATH, die_with_parent, pid_alive, tail, terminate
from .waiting import DEFAULT_TIMEOUT, wait_until


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


class Grant(Protocol):
    """The ``grant`` fixture: :meth:`PolkitDaemon.grant`."""

    def __call__(
        self, action_id: str, user: str = "nobody", *, result: str = "YES", timeout: float = 5.0
    ) -> contextlib.AbstractContextManager[Path]: ...
