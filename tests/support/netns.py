"""A network namespace made by and for a test session or a benchmark."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .names import NETNS_PREFIX
from .processes import pid_alive, run
from .waiting import DEFAULT_TIMEOUT, wait_until


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
