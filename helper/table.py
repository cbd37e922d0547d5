"""The live table of links and addresses, kept current by netlink events.

ListDevices is served from here, from memory: a full pyroute2 dump of 1,000
links costs ~400 ms of Python parsing, while the events that keep the table
current cost a fraction of a millisecond each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .bustext import listed_name
from .netlink import AddrInfo, Event, LinkInfo

LISTED_KINDS = frozenset({"tun", "tap", "bridge"})


def _keys(name: str) -> set[str]:
    """The names a caller may address a link by.

    Its listed form; and the name itself where that cannot be another
    link's listed form (no backslash, valid text): so a name that is listed
    escaped only on dbus-fast 1.84 (any non-ASCII one) still works as typed.
    """
    keys = {listed_name(name)}
    if "\\" not in name and name.isprintable():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return keys
        keys.add(name)
    return keys


@dataclass
class Delta:
    """What an update changed: link indexes to re-send, names that went away."""

    changed: set[int] = field(default_factory=set)
    removed: dict[int, str] = field(default_factory=dict)

    def merge(self, other: Delta) -> None:
        """Fold a later delta into this one."""
        for index in other.changed:
            self.removed.pop(index, None)
        self.changed |= other.changed
        for index, name in other.removed.items():
            self.changed.discard(index)
            self.removed[index] = name

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)


class DeviceTable:
    """Every link of the namespace and its addresses, by index."""

    def __init__(self) -> None:
        self.links: dict[int, LinkInfo] = {}
        self._addresses: dict[int, dict[str, AddrInfo]] = {}
        self._names: dict[str, int] = {}
        #: Grows whenever an event changes something: an answer built from
        #: the table at one version holds until the version moves.
        self.version = 0

    def reset(self, events: Iterable[Event]) -> Delta:
        """Replace everything by a fresh dump; return what differs."""
        old_links = self.links
        old_addresses = self._addresses
        self.links, self._addresses, self._names = {}, {}, {}
        self.version += 1
        self.apply(events)
        delta = Delta()
        for index, link in self.links.items():
            if old_links.get(index) != link or old_addresses.get(index) != self._addresses.get(
                index
            ):
                delta.changed.add(index)
        for index, link in old_links.items():
            if index not in self.links:
                delta.removed[index] = link.name
        return delta

    def apply(self, events: Iterable[Event]) -> Delta:
        """Apply events in order; return what changed."""
        delta = Delta()
        version = self.version
        for kind, info in events:
            if kind == "link" and isinstance(info, LinkInfo):
                old = self.links.get(info.index)
                if old is not None and old.name != info.name:
                    self._forget_name(old.name, info.index)
                self.links[info.index] = info
                for key in _keys(info.name):
                    self._names[key] = info.index
                if old != info:
                    self.version = version + 1
                    delta.changed.add(info.index)
                    delta.removed.pop(info.index, None)
            elif kind == "dellink" and isinstance(info, int):
                gone = self.links.pop(info, None)
                if self._addresses.pop(info, None) is not None or gone is not None:
                    self.version = version + 1
                if gone is not None:
                    self._forget_name(gone.name, info)
                    delta.changed.discard(info)
                    delta.removed[info] = gone.name
            elif kind == "addr" and isinstance(info, AddrInfo):
                addresses = self._addresses.setdefault(info.index, {})
                if addresses.get(info.address) != info:
                    self.version = version + 1
                    addresses[info.address] = info
                    if info.index in self.links:
                        delta.changed.add(info.index)
            elif kind == "deladdr" and isinstance(info, AddrInfo):
                old_addr = self._addresses.get(info.index, {}).pop(info.address, None)
                if old_addr is not None:
                    self.version = version + 1
                if old_addr is not None and info.index in self.links:
                    delta.changed.add(info.index)
        return delta

    def _forget_name(self, name: str, index: int) -> None:
        for key in _keys(name):
            if self._names.get(key) == index:
                del self._names[key]

    def by_name(self, name: str) -> LinkInfo | None:
        """The link of that name as ListDevices gives it, if there is one."""
        index = self._names.get(name)
        return None if index is None else self.links.get(index)

    def name_of(self, index: int) -> str:
        """The name of a link, or "" when it is unknown."""
        link = self.links.get(index)
        return "" if link is None else link.name

    def addresses(self, index: int, *, link_local: bool = False) -> list[str]:
        """A link's addresses in CIDR notation (IPv6 link-local ones on request)."""
        return [
            address
            for address, info in self._addresses.get(index, {}).items()
            if link_local or not info.link_local
        ]

    def listed(self) -> Iterator[LinkInfo]:
        """The TUN, TAP and bridge devices, in index order."""
        for index in sorted(self.links):
            link = self.links[index]
            if link.kind in LISTED_KINDS:
                yield link

    def free_name(self, template: str) -> str:
        """The first name a ``%d`` template gives that no link uses."""
        if "%d" not in template:
            return template
        number = 0
        while (candidate := template.replace("%d", str(number))) in self._names:
            number += 1
        return candidate
