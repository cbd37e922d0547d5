"""Coalescing a burst of rtnetlink events before pyroute2 decodes them.

The messages are encoded by pyroute2 itself, as the kernel would send them;
the property is that the table ends the same whether it sees every message
or only what :func:`latest_per_link` keeps.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from tungui_helper.netlink import (
    AF_BRIDGE,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    latest_per_link,
    parse,
)
from tungui_helper.table import DeviceTable


def link_message(kind: int, index: int, mtu: int, family: int = 0) -> bytes:
    msg = ifinfmsg()
    msg["family"] = family
    msg["index"] = index
    msg["flags"] = 0
    msg["change"] = 0
    msg["attrs"] = [("IFLA_IFNAME", f"tap{index}"), ("IFLA_MTU", mtu)]
    msg["header"]["type"] = kind
    msg["header"]["flags"] = 0
    msg.encode()
    return bytes(msg.data)


def addr_message(kind: int, index: int, host: int) -> bytes:
    msg = ifaddrmsg()
    msg["family"] = 2
    msg["prefixlen"] = 24
    msg["index"] = index
    msg["flags"] = 0
    msg["scope"] = 0
    address = f"192.0.2.{host}"
    msg["attrs"] = [("IFA_ADDRESS", address), ("IFA_LOCAL", address)]
    msg["header"]["type"] = kind
    msg["header"]["flags"] = 0
    msg.encode()
    return bytes(msg.data)


indexes = st.integers(min_value=2, max_value=5)
messages = st.one_of(
    st.builds(link_message, st.just(RTM_NEWLINK), indexes, st.integers(68, 9000)),
    st.builds(link_message, st.just(RTM_DELLINK), indexes, st.just(0)),
    st.builds(link_message, st.just(RTM_NEWLINK), indexes, st.just(1), st.just(AF_BRIDGE)),
    st.builds(
        addr_message, st.sampled_from([RTM_NEWADDR, RTM_DELADDR]), indexes, st.integers(1, 3)
    ),
)


def state(table: DeviceTable) -> tuple[object, ...]:
    return (
        dict(table.links),
        {index: sorted(table.addresses(index)) for index in range(2, 6)},
    )


@given(st.lists(messages, max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_the_table_ends_the_same_with_only_the_last_message_of_each_link(
    sent: list[bytes], cuts: list[int]
) -> None:
    # The socket hands messages over in chunks; a message never spans two.
    bounds = sorted({0, len(sent), *(c for c in cuts if c < len(sent))})
    chunks = [b"".join(sent[a:b]) for a, b in itertools.pairwise(bounds)]

    every = DeviceTable()
    every.apply(parse(MarshalRtnl().parse(b"".join(sent))))
    kept_events = parse(MarshalRtnl().parse(latest_per_link(chunks)))
    kept = DeviceTable()
    kept.apply(kept_events)

    assert state(kept) == state(every)
    decoded = [getattr(info, "index", None) for kind, info in kept_events if kind == "link"]
    assert len(decoded) == len(set(decoded)), "at most one RTM_NEWLINK per link is decoded"


def test_a_burst_for_one_link_is_decoded_once() -> None:
    burst = [link_message(RTM_NEWLINK, 7, mtu) for mtu in (1500, 1400, 1300)]
    events = parse(MarshalRtnl().parse(latest_per_link([b"".join(burst[:2]), burst[2]])))
    assert [(kind, getattr(info, "mtu", None)) for kind, info in events] == [("link", 1300)]


def test_bridge_port_notices_are_left_out() -> None:
    data = link_message(RTM_DELLINK, 4, 0, family=AF_BRIDGE)
    assert latest_per_link([data]) == b""
