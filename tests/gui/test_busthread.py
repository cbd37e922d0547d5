"""The window's calls to the helper: a typed callable in, its typed result (or
its error) back on the GUI thread, with no method name as a string."""

from __future__ import annotations

import asyncio
from typing import Any

from tungui.client import HelperClient, NotAuthorized, TunguiError
from tungui.gui.busthread import BusThread


class _FakeClient:
    """Stands for HelperClient: the calls the tests make, answered at once."""

    def __init__(self) -> None:
        self.permissions_asked = 0

    async def create_device(self, spec: dict[str, Any]) -> str:
        return str(spec["name"]).replace("%d", "0")

    async def delete_device(self, name: str) -> None:
        raise NotAuthorized(f"You may not delete {name}.")

    async def get_permissions(self) -> dict[str, str]:
        self.permissions_asked += 1
        return {"io.github.tungui.manage": "auth"}


def _run_bus_loop(thread: BusThread) -> None:
    """Run the bus thread's loop here (the thread is not started) until what
    was submitted has run and answered; then close it."""
    loop = thread._loop
    loop.run_until_complete(asyncio.sleep(0))
    while pending := [t for t in asyncio.all_tasks(loop) if not t.done()]:
        loop.run_until_complete(asyncio.wait(pending))
    loop.close()


def _thread_with(client: _FakeClient) -> BusThread:
    thread = BusThread("unix:path=/nonexistent")
    thread._client = client  # type: ignore[assignment]
    thread._available = True
    return thread


def test_a_submitted_call_brings_its_result_back() -> None:
    client = _FakeClient()
    thread = _thread_with(client)
    names: list[str] = []
    errors: list[TunguiError] = []

    def call(c: HelperClient) -> Any:
        return c.create_device({"name": "tap%d"})

    thread.submit(call, names.append, errors.append)
    _run_bus_loop(thread)
    assert names == ["tap0"] and errors == []


def test_a_refusal_comes_back_as_its_exception_and_permissions_are_asked_again() -> None:
    client = _FakeClient()
    thread = _thread_with(client)
    done: list[None] = []
    errors: list[TunguiError] = []
    permissions: list[dict[str, str]] = []
    thread.permissionsChanged.connect(permissions.append)

    thread.submit(lambda c: c.delete_device("eth0"), done.append, errors.append)
    _run_bus_loop(thread)
    assert done == []
    assert len(errors) == 1 and isinstance(errors[0], NotAuthorized)
    assert errors[0].message == "You may not delete eth0."
    assert client.permissions_asked == 1
    assert permissions == [{"io.github.tungui.manage": "auth"}]


def test_without_the_helper_a_call_fails_with_a_sentence() -> None:
    thread = BusThread("unix:path=/nonexistent")
    errors: list[TunguiError] = []
    thread.submit(lambda c: c.delete_device("tap0"), lambda _: None, errors.append)
    _run_bus_loop(thread)
    assert [e.message for e in errors] == ["The tungui helper is not available."]
