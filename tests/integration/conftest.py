"""Fixtures that bring up the real stack (see tests/support and /work/shared/TESTING.md).

Session-scoped: ``stack_dir``, ``bus``, ``polkit``, ``netns``, ``helper_process``.
Function-scoped: ``clean_netns``, ``helper``, ``grant``, ``ip``, ``ip_json``,
``run_as_nobody``, ``nobody_python``, ``spawn_nobody_python``.

Only the standard library and dbus-fast are imported here, never tungui or
tungui_helper, so collecting these tests does not depend on that code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support import environment, nobody
from tests.support.bus import DBusDaemon
from tests.support.errors import StackError
from tests.support.helper import HelperProcess
from tests.support.names import NETNS_PREFIX
from tests.support.netns import Netns, remove_stale_netns
from tests.support.nobody import NobodyPython, RunAsNobody, SpawnNobodyPython, run_as_user
from tests.support.polkit import Grant, PolkitDaemon, remove_stale_rules
from tests.support.polkitagent import PolkitAgents
from tests.support.processes import make_shared_tmpdir, missing_requirements, terminate

_MISSING = missing_requirements()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every integration test, with the reason, where the stack cannot run."""
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason="real stack unavailable: " + "; ".join(_MISSING))
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(skip)


def _require_stack() -> None:
    if _MISSING:
        pytest.skip("real stack unavailable: " + "; ".join(_MISSING))


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    """A 0755 directory under /tmp for sockets, configs and logs of the session.

    Kept when TUNGUI_TEST_KEEP_TMP=1 (its path is printed).
    """
    _require_stack()
    path = make_shared_tmpdir()
    yield path
    if os.environ.get("TUNGUI_TEST_KEEP_TMP") == "1":
        print(f"\ntungui test stack files kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bus(stack_dir: Path) -> Iterator[DBusDaemon]:
    """The private system bus; sets DBUS_SYSTEM_BUS_ADDRESS for the session."""
    daemon = DBusDaemon(stack_dir)
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        daemon.start()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = daemon.address
        yield daemon
    finally:
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old
        daemon.stop()


@pytest.fixture(scope="session")
def polkit(bus: DBusDaemon, stack_dir: Path) -> Iterator[PolkitDaemon]:
    """The real polkitd on the private bus, with the project's actions installed."""
    remove_stale_rules()
    daemon = PolkitDaemon(bus.address, stack_dir)
    try:
        daemon.start()
        yield daemon
    finally:
        try:
            daemon.stop()
        except StackError as exc:
            print(f"\npolkitd log:\n{daemon.log_text()}")
            raise exc from None


@pytest.fixture
def grant(polkit: PolkitDaemon) -> Grant:
    """``with grant(action_id, user="nobody", result="YES"): ...`` — see PolkitDaemon.grant."""
    return polkit.grant


@pytest.fixture(scope="session")
def netns() -> Iterator[Netns]:
    """A network namespace for the session, named tungui-test-<pid>, deleted afterwards."""
    _require_stack()
    remove_stale_netns()
    ns = Netns(f"{NETNS_PREFIX}{os.getpid()}")
    try:
        ns.create()
        yield ns
    finally:
        ns.delete()


@pytest.fixture
def clean_netns(netns: Netns) -> Iterator[Netns]:
    """The session namespace, emptied of every link but the initial ones
    (``lo``) before and after the test."""
    netns.clean()
    yield netns
    netns.clean()


@pytest.fixture
def ip(netns: Netns) -> Callable[..., str]:
    """``ip("link", "show")`` runs ``ip -n NS link show`` and returns stdout."""
    return netns.ip


@pytest.fixture
def ip_json(netns: Netns) -> Callable[..., list[dict[str, Any]]]:
    """``ip_json("link", "show")`` runs ``ip -n NS -j -d link show``, parsed."""
    return netns.ip_json


@pytest.fixture(scope="session")
def python_path(stack_dir: Path) -> str:
    """PYTHONPATH under which tungui and tungui_helper import from this repo."""
    return environment.python_path(stack_dir / "pythonpath")


@pytest.fixture(scope="session")
def helper_process(
    bus: DBusDaemon, polkit: PolkitDaemon, netns: Netns, stack_dir: Path, python_path: str
) -> Iterator[HelperProcess]:
    """The helper as root in ``netns``, started once for the session."""
    proc = HelperProcess(bus.address, netns, stack_dir, pythonpath=python_path)
    proc.start()
    try:
        yield proc
    finally:
        died = proc.exited_unexpectedly()
        try:
            if proc.running:
                status = proc.stop()
                if status not in (0, -15):
                    died = status
        except StackError:
            proc.kill()
            died = -1
        if died is not None:
            print(f"\nhelper stderr (all runs):\n{proc.stderr_text(all_runs=True)}")
            pytest.fail(f"the helper ended badly (status {died})", pytrace=False)


@pytest.fixture
def helper(
    helper_process: HelperProcess, clean_netns: Netns, request: pytest.FixtureRequest
) -> Iterator[HelperProcess]:
    """The session's helper, running when the test starts, in a clean namespace.

    A test may ``stop()`` and ``start()`` it; if it leaves it stopped, the
    next test gets it started again.  If the helper dies on its own during
    the test, the test errors with the helper's stderr.  What the helper
    wrote during the test is attached to the report ("helper stderr").
    """
    if not helper_process.running:
        helper_process.start()
    offset = helper_process.stderr_size()
    starts = helper_process.starts
    yield helper_process
    with helper_process.stderr_path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", errors="replace")
    if text:
        request.node.add_report_section("teardown", "helper stderr", text)
    died = helper_process.exited_unexpectedly()
    if died is not None and helper_process.starts == starts:
        helper_process.proc = None
        pytest.fail(f"the helper died during the test (status {died}):\n{text}", pytrace=False)


@pytest.fixture
def run_as_nobody(bus: DBusDaemon) -> RunAsNobody:
    """``run_as_nobody(argv, *, user="nobody", env=None, input=None, timeout=30,
    check=False, cwd=None)``: run a command as nobody against the private bus."""

    def run(
        argv: Sequence[str],
        *,
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 30.0,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_as_user(
            argv,
            user=user,
            bus_address=bus.address,
            env=env,
            input=input,
            timeout=timeout,
            check=check,
            cwd=cwd,
        )

    return run


@pytest.fixture
def nobody_python(bus: DBusDaemon, python_path: str) -> NobodyPython:
    """``nobody_python(code, *, preimport=(), user="nobody", env=None, input=None,
    timeout=30, check=False, cwd=None)``: run Python code as nobody; the
    imports (defaults plus ``preimport``) happen as root first."""

    def run(
        code: str,
        *,
        preimport: Sequence[str] = (),
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 30.0,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return nobody.nobody_python(
            code,
            bus_address=bus.address,
            preimport=preimport,
            user=user,
            pythonpath=python_path,
            env=env,
            input=input,
            timeout=timeout,
            check=check,
            cwd=cwd,
        )

    return run


@pytest.fixture
def spawn_nobody_python(bus: DBusDaemon, python_path: str) -> Iterator[SpawnNobodyPython]:
    """Like nobody_python but returns the Popen (text pipes on stdin, stdout,
    stderr) at once; every process it started is killed after the test."""
    procs: list[subprocess.Popen[str]] = []

    def spawn(
        code: str,
        *,
        preimport: Sequence[str] = (),
        user: str = "nobody",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[str]:
        proc = nobody.spawn_nobody_python(
            code,
            bus_address=bus.address,
            preimport=preimport,
            user=user,
            pythonpath=python_path,
            env=env,
            cwd=cwd,
        )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        terminate(proc)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def polkit_agent(polkit: PolkitDaemon, bus: DBusDaemon, python_path: str) -> Iterator[PolkitAgents]:
    """Real polkit authentication agents run by the test (see polkitagent.py):
    ``with polkit_agent.for_process(caller.pid) as agent: ...`` and
    ``polkit_agent.spawn_caller()``.  Afterwards every agent is unregistered,
    its open prompts cancelled, and every caller ended, which ends the
    authorizations polkit kept for it (auth_admin_keep)."""
    agents = PolkitAgents(bus, pythonpath=python_path)
    try:
        yield agents
    finally:
        agents.close()
