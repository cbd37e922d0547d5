"""The live device table, fed with hand-made netlink events."""

from __future__ import annotations

from tungui_helper.netlink import AddrInfo, Event
from tungui_helper.table import Delta, DeviceTable

from .links import link


def test_new_changed_and_removed_links() -> None:
    table = DeviceTable()
    delta = table.apply([("link", link(2, "tap0")), ("link", link(3, "lo", kind=""))])
    assert delta.changed == {2, 3} and not delta.removed
    assert [d.name for d in table.listed()] == ["tap0"]

    assert not table.apply([("link", link(2, "tap0"))]), "an identical link is no change"
    assert table.apply([("link", link(2, "tap0", mtu=1400))]).changed == {2}

    delta = table.apply([("dellink", 2)])
    assert delta.removed == {2: "tap0"} and table.by_name("tap0") is None


def test_rename_moves_the_name() -> None:
    table = DeviceTable()
    table.apply([("link", link(2, "tap0"))])
    table.apply([("link", link(2, "lab0"))])
    assert table.by_name("tap0") is None
    assert table.by_name("lab0") is not None


def test_addresses_follow_events_and_hide_link_local() -> None:
    table = DeviceTable()
    events: list[Event] = [
        ("link", link(2, "tap0")),
        ("addr", AddrInfo(2, "192.0.2.1/24", False)),
        ("addr", AddrInfo(2, "fe80::1/64", True)),
    ]
    table.apply(events)
    assert table.addresses(2) == ["192.0.2.1/24"]
    assert table.addresses(2, link_local=True) == ["192.0.2.1/24", "fe80::1/64"]
    assert table.apply([("deladdr", AddrInfo(2, "192.0.2.1/24", False))]).changed == {2}
    assert table.addresses(2) == []


def test_reset_reports_only_differences() -> None:
    table = DeviceTable()
    table.apply([("link", link(2, "tap0")), ("link", link(3, "tap1"))])
    delta = table.reset([("link", link(2, "tap0")), ("link", link(4, "tap2"))])
    assert delta.changed == {4}
    assert delta.removed == {3: "tap1"}


def test_delta_merge_keeps_the_latest_fate() -> None:
    first = Delta(changed={2}, removed={})
    first.merge(Delta(changed=set(), removed={2: "tap0"}))
    assert first.changed == set() and first.removed == {2: "tap0"}
    first.merge(Delta(changed={2}, removed={}))
    assert first.changed == {2} and first.removed == {}


def test_free_name_skips_taken_numbers() -> None:
    table = DeviceTable()
    table.apply([("link", link(2, "br0", kind="bridge")), ("link", link(3, "br1", kind="bridge"))])
    assert table.free_name("br%d") == "br2"
    assert table.free_name("lab") == "lab"


def test_the_version_moves_exactly_when_something_changes() -> None:
    table = DeviceTable()
    table.apply([("link", link(2, "tap0"))])
    version = table.version
    table.apply([("link", link(2, "tap0")), ("deladdr", AddrInfo(2, "192.0.2.1/24", False))])
    assert table.version == version, "repeating what is known changes nothing"
    for events in (
        [("addr", AddrInfo(2, "192.0.2.1/24", False))],
        [("deladdr", AddrInfo(2, "192.0.2.1/24", False))],
        [("link", link(2, "tap0", up=True))],
        [("addr", AddrInfo(9, "198.51.100.1/24", False))],  # a link not seen yet
        [("dellink", 2)],
    ):
        table.apply(events)
        assert table.version > version, events
        version = table.version
    table.reset([])
    assert table.version > version
