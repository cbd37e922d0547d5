"""CreateDevice and ConfigureDevice undo every step when a later one fails.

The device manager runs on a kernel in memory (fakekernel.py) that refuses
the Nth change it is asked for; each test fails its transaction at every
step in turn and checks that nothing is left: no device, no address, the
bridge as it was, the MTU, MAC, owner, persist and bridge of a changed
device restored, no queue left open, nothing held.  The integration tests
(test_devices.py) run the same calls on the real kernel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Callable

import pytest

from tungui_contract.bus import Action
from tungui_contract.errors import Failed, NotAuthorized
from tungui_helper.authorize import Authorization
from tungui_helper.devices import DeviceManager
from tungui_helper.netlink import MANAGED_ALIAS
from tungui_helper.validate import Changes, DeviceSpec

from .fakekernel import Device, FakeKernel

ADDRESSES = (ipaddress.ip_interface("198.51.100.1/24"), ipaddress.ip_interface("2001:db8::1/64"))


def _kernel() -> FakeKernel:
    kernel = FakeKernel()
    kernel.add(Device(1, "br0", "bridge", mtu=1400, mac="02:bb:00:00:00:09", alias=MANAGED_ALIAS))
    return kernel


def _manager(kernel: FakeKernel) -> DeviceManager:
    manager = DeviceManager(lambda delta: None, links=kernel, kernel=kernel)
    manager.table.reset(kernel.dump())  # the mirror's dump at start, without its event socket
    return manager


def _grant(bridge: int | None = None, index: int | None = None) -> Authorization:
    """``manage`` granted; asked again under the lock, the rule still says ``manage``."""
    granted = Authorization(Action.MANAGE, {"device": "tap0"}, index=index, bridge=bridge)
    return dataclasses.replace(granted, recheck=lambda _link, _bridge: granted)


def _create(kernel: FakeKernel, spec: DeviceSpec) -> DeviceManager:
    manager = _manager(kernel)
    granted = _grant(bridge=1 if spec.master else None)
    asyncio.run(manager.create(spec, ":1.5", 1000, granted))
    return manager


def _steps(run: Callable[[FakeKernel], object]) -> int:
    """How many changes the transaction makes when nothing fails."""
    kernel = _kernel()
    run(kernel)
    assert kernel.changes > 3
    return kernel.changes


TRANSIENT_IN_BRIDGE = DeviceSpec(
    mode="tap", name="tap0", owner=1000, group=100, mtu=None, addresses=ADDRESSES, up=True,
    master="br0",
)  # fmt: skip
PERSISTENT = DeviceSpec(
    mode="tap", name="tap0", persist=True, owner=1000, mtu=1280, mac="02:00:00:00:00:07",
    addresses=ADDRESSES, up=True,
)  # fmt: skip


@pytest.mark.parametrize("spec", [TRANSIENT_IN_BRIDGE, PERSISTENT], ids=["transient", "persist"])
def test_a_created_device_is_whole_when_nothing_fails(spec: DeviceSpec) -> None:
    kernel = _kernel()
    manager = _create(kernel, spec)
    device = kernel.by_name("tap0")
    assert device is not None and device.alias == MANAGED_ALIAS and device.up
    assert device.addresses == {str(a) for a in ADDRESSES}
    if spec.master:
        # libvirt's order: the bridge's MTU, a MAC starting 0xFE, then enslaved.
        assert (device.master, device.mtu, device.mac[:2]) == (1, 1400, "fe")
        assert manager.holdings()[0].client == ":1.5"
    else:
        assert device.persist and not kernel.open_queues and not manager.holdings()


@pytest.mark.parametrize("spec", [TRANSIENT_IN_BRIDGE, PERSISTENT], ids=["transient", "persist"])
def test_a_create_failing_at_any_step_leaves_nothing(spec: DeviceSpec) -> None:
    steps = _steps(lambda kernel: _create(kernel, spec))
    for step in range(1, steps + 1):
        kernel = _kernel()
        before = kernel.snapshot()
        kernel.fail_at = step
        manager = _manager(kernel)
        granted = _grant(bridge=1 if spec.master else None)
        with pytest.raises(Failed, match="refused by the test"):
            asyncio.run(manager.create(spec, ":1.5", 1000, granted))
        assert kernel.by_name("tap0") is None, f"step {step}: the device is left"
        assert kernel.snapshot() == before, f"step {step}: the bridge changed"
        assert not kernel.open_queues, f"step {step}: a queue is left open"
        assert not manager.holdings(), f"step {step}: something is held"


def test_a_persistent_device_whose_persist_sticks_is_still_removed() -> None:
    """Clearing persist fails too: closing the queues leaves the device, so it is deleted."""
    steps = _steps(lambda kernel: _create(kernel, PERSISTENT))
    for step in range(4, steps + 1):  # after persist was set (create, owner, persist)
        kernel = _kernel()
        kernel.fail_at, kernel.then_refuse = step, {"persist"}
        manager = _manager(kernel)
        with pytest.raises(Failed, match="refused by the test"):
            asyncio.run(manager.create(PERSISTENT, ":1.5", 1000, _grant()))
        assert kernel.by_name("tap0") is None, f"step {step}: the device is left"
        assert not kernel.open_queues


def _device(kernel: FakeKernel, **values: object) -> Device:
    device = Device(
        5, "tap0", "tap", mtu=1500, mac="02:00:00:00:00:05", alias=MANAGED_ALIAS,
        addresses={"203.0.113.1/24", "2001:db8::5/64"}, persist=True, owner=500, group=600,
    )  # fmt: skip
    for key, value in values.items():
        setattr(device, key, value)
    return kernel.add(device)


#: Every key at once: through a queue (owner, group, persist), then netlink.
EVERYTHING = Changes(
    mtu=1400, mac="02:00:00:00:00:99", up=True, addresses=ADDRESSES, owner=1000, group=100,
    persist=False, master="br0",
    given=frozenset({"mtu", "mac", "up", "addresses", "owner", "group", "persist", "master"}),
)  # fmt: skip
#: Out of its bridge, down, persist kept.
LEAVING = Changes(
    mtu=9000, up=False, addresses=(), master="",
    given=frozenset({"mtu", "up", "addresses", "master"}),
)  # fmt: skip


def _configure(kernel: FakeKernel, changes: Changes, **device: object) -> DeviceManager:
    _device(kernel, **device)
    manager = _manager(kernel)
    granted = _grant(bridge=1 if changes.master else None, index=5)
    asyncio.run(manager.configure(changes, ":1.5", 1000, granted))
    return manager


CASES = [(EVERYTHING, {}), (LEAVING, {"master": 1, "up": True})]


@pytest.mark.parametrize(("changes", "device"), CASES, ids=["everything", "leaving"])
def test_a_change_set_is_applied_whole_when_nothing_fails(
    changes: Changes, device: dict[str, object]
) -> None:
    kernel = _kernel()
    manager = _configure(kernel, changes, **device)
    tap = kernel.devices[5]
    if changes is EVERYTHING:
        assert (tap.mtu, tap.mac, tap.up, tap.owner, tap.group) == (
            1400, "02:00:00:00:00:99", True, 1000, 100,
        )  # fmt: skip
        assert tap.master == 1 and not tap.persist
        assert tap.addresses == {str(a) for a in ADDRESSES}
        # Persist off: the helper now holds the device for the caller.
        assert [h.client for h in manager.holdings()] == [":1.5"]
    else:
        assert (tap.mtu, tap.up, tap.master, tap.addresses) == (9000, False, 0, set())


@pytest.mark.parametrize(("changes", "device"), CASES, ids=["everything", "leaving"])
def test_a_change_set_failing_at_any_step_is_undone(
    changes: Changes, device: dict[str, object]
) -> None:
    steps = _steps(lambda kernel: _configure(kernel, changes, **device))
    for step in range(1, steps + 1):
        kernel = _kernel()
        _device(kernel, **device)
        before = kernel.snapshot()
        kernel.fail_at = step
        manager = _manager(kernel)
        granted = _grant(bridge=1 if changes.master else None, index=5)
        with pytest.raises(Failed, match="refused by the test"):
            asyncio.run(manager.configure(changes, ":1.5", 1000, granted))
        assert kernel.snapshot() == before, f"step {step}: not undone"
        assert not kernel.open_queues, f"step {step}: a queue is left open"
        assert not manager.holdings(), f"step {step}: something is held"


def test_a_device_that_now_needs_more_than_was_granted_is_left_alone() -> None:
    """The rule, asked again under the lock, wants manage-foreign: nothing is changed."""
    kernel = _kernel()
    _device(kernel)
    before = kernel.snapshot()
    manager = _manager(kernel)
    granted = Authorization(Action.MANAGE, {"device": "tap0"}, index=5)
    foreign = dataclasses.replace(granted, action=Action.MANAGE_FOREIGN)
    granted = dataclasses.replace(granted, recheck=lambda _link, _bridge: foreign)
    with pytest.raises(NotAuthorized, match="needs another authorization"):
        asyncio.run(manager.configure(LEAVING, ":1.5", 1000, granted))
    with pytest.raises(NotAuthorized):
        asyncio.run(manager.delete(granted))
    assert kernel.snapshot() == before and kernel.changes == 0
