"""A device the helper makes reaches clients already marked as tungui's.

The kernel announces a new link before the helper has set it up and marked
it (its alias); if that half-made link were passed on, a client could know
it only as someone else's and, were it removed at once, never learn that a
device tungui made had gone (the tray says so).  The kernel is in memory
(fakekernel.py); its new link is applied mid-create as the event socket
would apply it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from tungui_contract.bus import Action
from tungui_helper.authorize import Authorization
from tungui_helper.devices import DeviceManager
from tungui_helper.netlink import MANAGED_ALIAS
from tungui_helper.table import Delta
from tungui_helper.validate import DeviceSpec

from .fakekernel import FakeKernel, FakeQueues

SPEC = DeviceSpec(mode="tap", name="tap0", persist=True)


class _AnnouncingKernel(FakeKernel):
    """Applies its new link to the manager's table as soon as it exists, as events do."""

    manager: DeviceManager

    def create(self, name: str, flags: int, queues: int) -> FakeQueues:
        queues_ = super().create(name, flags, queues)
        device = self.by_name(name)
        assert device is not None
        delta = self.manager.table.apply([("link", device.info())])
        self.manager.mirror._on_change(delta)
        return queues_


def test_clients_never_see_a_half_made_device() -> None:
    kernel = _AnnouncingKernel()
    told: list[tuple[int, str]] = []

    def on_change(delta: Delta) -> None:
        for index in delta.changed:
            link = manager.table.links.get(index)
            told.append((index, "" if link is None else link.alias))

    manager = DeviceManager(on_change, links=kernel, kernel=kernel)
    kernel.manager = manager
    granted = Authorization(Action.MANAGE, {"device": "tap0"})
    granted = dataclasses.replace(granted, recheck=lambda _link, _bridge: granted)
    asyncio.run(manager.create(SPEC, ":1.5", 1000, granted))
    device = kernel.by_name("tap0")
    assert device is not None
    assert told and all(alias == MANAGED_ALIAS for index, alias in told if index == device.index)
