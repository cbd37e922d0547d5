"""A kernel in memory for the device transactions: links, addresses, TUN/TAP queues.

It answers what :mod:`tungui_helper.kernel` describes (netlink requests and
``/dev/net/tun``), and can be told to refuse the Nth change it is asked
for, so a test can fail a transaction at every step in turn and look at
what is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from tungui_contract.errors import Exists, Failed
from tungui_helper.netlink import MANAGED_ALIAS, AddrInfo, Event, LinkInfo

T = TypeVar("T")


@dataclasses.dataclass
class Device:
    """One link as the fake kernel keeps it."""

    index: int
    name: str
    kind: str
    mtu: int = 1500
    mac: str = ""
    up: bool = False
    master: int = 0
    alias: str = ""
    addresses: set[str] = dataclasses.field(default_factory=set)
    persist: bool = False
    owner: int = -1
    group: int = -1
    queues: int = 0

    def info(self) -> LinkInfo:
        return LinkInfo(
            index=self.index, name=self.name, kind=self.kind, mtu=self.mtu, mac=self.mac,
            up=self.up, operstate="unknown" if self.up else "down", master=self.master,
            alias=self.alias, persist=self.persist, owner=self.owner, group=self.group,
            queues=self.queues,
        )  # fmt: skip

    def state(self) -> tuple[Any, ...]:
        """Everything a transaction may change, to compare before and after."""
        return dataclasses.astuple(self)


class FakeKernel:
    """Links and queues; ``fail_at`` = N refuses the Nth change (1-based) with Failed."""

    def __init__(self) -> None:
        self.devices: dict[int, Device] = {}
        self._next_index = 10
        #: Changes asked for so far.
        self.changes = 0
        self.fail_at: int | None = None
        #: Kinds of change refused too once the Nth has failed ("persist", ...).
        self.then_refuse: set[str] = set()
        #: Queues opened and not closed.
        self.open_queues: list[FakeQueues] = []

    def add(self, device: Device) -> Device:
        self.devices[device.index] = device
        return device

    def by_name(self, name: str) -> Device | None:
        return next((d for d in self.devices.values() if d.name == name), None)

    def snapshot(self) -> dict[int, tuple[Any, ...]]:
        return {index: device.state() for index, device in self.devices.items()}

    def _change(self, what: str) -> None:
        """Count a change; refuse it if it is the one to fail."""
        self.changes += 1
        if self.changes == self.fail_at:
            raise Failed(f"{what}: refused by the test")
        if self.fail_at is not None and self.changes > self.fail_at and what in self.then_refuse:
            raise Failed(f"{what}: refused by the test, after the first")

    # ---------------------------------------------------- /dev/net/tun

    def create(self, name: str, flags: int, queues: int) -> FakeQueues:
        self._change("create")
        if self.by_name(name) is not None:
            raise Exists(f"A device named {name} already exists.")
        kind = "tun" if flags & 0x0001 else "tap"
        index, self._next_index = self._next_index, self._next_index + 1
        device = self.add(
            Device(index, name, kind, mac="" if kind == "tun" else "02:aa:00:00:00:01")
        )
        return FakeQueues(self, device, queues)

    def attach(self, name: str, flags: int) -> FakeQueues:
        self._change("attach")
        device = self.by_name(name)
        assert device is not None
        return FakeQueues(self, device, 1)

    def index_of(self, name: str) -> int | None:
        device = self.by_name(name)
        return None if device is None else device.index

    # ---------------------------------------------------- netlink

    async def run(self, func: Callable[[], T]) -> T:
        return func()

    def dump(self) -> list[Event]:
        events: list[Event] = [("link", device.info()) for device in self.devices.values()]
        for device in self.devices.values():
            events.extend(("addr", AddrInfo(device.index, a, False)) for a in device.addresses)
        return events

    def read(self, index: int) -> LinkInfo | None:
        device = self.devices.get(index)
        return None if device is None else device.info()

    def lookup(self, name: str) -> LinkInfo | None:
        device = self.by_name(name)
        return None if device is None else device.info()

    def close(self) -> None:
        pass

    def set(self, index: int, what: str, **attrs: Any) -> None:
        self._change(what)
        device = self.devices[index]
        for key, value in attrs.items():
            if key == "state":
                device.up = value == "up"
            elif key == "address":
                device.mac = value
            elif key == "ifalias":
                device.alias = value
            else:
                assert key in ("mtu", "master"), key
                setattr(device, key, value)

    def add_address(self, index: int, address: str, what: str) -> None:
        self._change(what)
        self.devices[index].addresses.add(address)

    def remove_address(self, index: int, address: str, what: str) -> None:
        self._change(what)
        self.devices[index].addresses.discard(address)

    def delete(self, index: int, what: str) -> None:
        self._change(what)
        self.devices.pop(index, None)

    def announce(self, name: str) -> None:
        pass

    def add_bridge(self, name: str) -> int:
        self._change("add bridge")
        index, self._next_index = self._next_index, self._next_index + 1
        self.add(Device(index, name, "bridge", mac="02:bb:00:00:00:01", alias=MANAGED_ALIAS))
        return index


class FakeQueues:
    """Queues of one fake device; closing the last removes it unless it persists."""

    def __init__(self, kernel: FakeKernel, device: Device, count: int) -> None:
        self.kernel = kernel
        self.device = device
        self.name = device.name
        self.fds = list(range(count))
        device.queues += count
        kernel.open_queues.append(self)

    def close(self) -> None:
        if not self.fds:
            return
        self.device.queues -= len(self.fds)
        self.fds = []
        self.kernel.open_queues.remove(self)
        if not self.device.queues and not self.device.persist:
            self.kernel.devices.pop(self.device.index, None)

    def set_persist(self, persist: bool) -> None:
        self.kernel._change("persist")
        self.device.persist = persist

    def set_owner(self, uid: int) -> None:
        self.kernel._change("owner")
        self.device.owner = uid

    def set_group(self, gid: int) -> None:
        self.kernel._change("group")
        self.device.group = gid
