"""What the device code asks of the kernel, as small protocols.

:class:`~.devices.DeviceManager` gets its netlink requests and its
``/dev/net/tun`` passed in: the helper gives it :class:`~.links.Links` and the
module :mod:`~.tun`; the unit tests give fakes that fail at a chosen
step, to check that a transaction undoes every step before it
(tests/unit/helper/test_transactions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .netlink import Event, LinkInfo

T = TypeVar("T")


class Queues(Protocol):
    """The open queues of one TUN/TAP device (:class:`~.tun.TunHandle`)."""

    name: str
    fds: list[int]

    def close(self) -> None: ...

    def set_persist(self, persist: bool) -> None: ...

    def set_owner(self, uid: int) -> None: ...

    def set_group(self, gid: int) -> None: ...


class Tun(Protocol):
    """``/dev/net/tun``: making devices and opening queues of existing ones."""

    def create(self, name: str, flags: int, queues: int) -> Queues: ...

    def attach(self, name: str, flags: int) -> Queues: ...

    def index_of(self, name: str) -> int | None:
        """The interface index of a name now (None: no such device)."""
        ...


class LinkRequests(Protocol):
    """The netlink requests the transactions make (on the netlink thread)."""

    def set(self, index: int, what: str, **attrs: Any) -> None: ...

    def add_address(self, index: int, address: str, what: str) -> None: ...

    def remove_address(self, index: int, address: str, what: str) -> None: ...

    def delete(self, index: int, what: str) -> None: ...

    def announce(self, name: str) -> None: ...

    def add_bridge(self, name: str) -> int: ...

    def lookup(self, name: str) -> LinkInfo | None: ...


class Netlink(LinkRequests, Protocol):
    """Those requests, the reads of the table's mirror, and the thread they run on."""

    async def run(self, func: Callable[[], T]) -> T: ...

    def dump(self) -> list[Event]: ...

    def read(self, index: int) -> LinkInfo | None: ...

    def close(self) -> None: ...


class EventSource(Protocol):
    """The kernel's link and address events (:class:`~.netlink.EventSocket`)."""

    def fileno(self) -> int: ...

    def read(self) -> list[Event] | None: ...

    def close(self) -> None: ...
