"""Which action a request needs: manage within the bounds, manage-foreign past them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tungui_contract.bus import Action
from tungui_helper import authorize
from tungui_helper.authorize import Authorization
from tungui_helper.netlink import LinkInfo
from tungui_helper.policy import ManagePolicy, PolicyError
from tungui_helper.validate import BridgeSpec, Changes, DeviceSpec

from . import links

POLICY = ManagePolicy()
ME = 1000


@dataclass(frozen=True)
class Who:
    uid: int = ME
    gids: frozenset[int] = frozenset({ME, 27})


def link(index: int, name: str, kind: str = "tap", **values: object) -> LinkInfo:
    """A link tungui made (alias "tungui") unless ``alias`` says otherwise."""
    return links.link(index, name, kind, **{"alias": "tungui", **values})


@dataclass
class Table:
    links: dict[int, LinkInfo] = field(default_factory=dict)
    held: dict[int, int] = field(default_factory=dict)

    def add(self, *links: LinkInfo) -> None:
        self.links.update((item.index, item) for item in links)

    def is_managed(self, item: LinkInfo) -> bool:
        return item.alias == "tungui" or item.index in self.held

    def holder_uid(self, index: int) -> int | None:
        return self.held.get(index)

    def link(self, index: int) -> LinkInfo | None:
        return self.links.get(index)

    def ports(self, bridge: LinkInfo) -> Iterable[LinkInfo]:
        return [item for item in self.links.values() if item.master == bridge.index]


def spec(**values: object) -> DeviceSpec:
    return DeviceSpec(**{"mode": "tap", "name": "tap%d", **values})  # type: ignore[arg-type]


def addresses(*texts: str) -> tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]:
    return tuple(ipaddress.ip_interface(t) for t in texts)


def test_a_plain_request_needs_manage_and_names_what_is_asked() -> None:
    decided = authorize.for_create(Table(), POLICY, Who(), spec(name="lab%d"), None)
    assert decided.action is Action.MANAGE
    assert decided.details == {"device": "lab%d", "request": "create the TAP device lab%d"}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (spec(name="wg0"), "the name wg0 is not among"),
        (spec(name="docker0"), "the name docker0"),
        (spec(owner=0), "belong to user 0"),
        (spec(group=0), "belong to group 0"),
        (spec(addresses=addresses("192.0.2.1/1")), "192.0.2.1/1 makes a route wider"),
        (spec(addresses=addresses("2001:db8::1/0")), "makes a route wider"),
        (spec(addresses=addresses("192.0.2.1/24", "198.51.100.1/15")), "198.51.100.1/15"),
    ],
)
def test_past_the_bounds_manage_is_not_enough(request_: DeviceSpec, reason: str) -> None:
    decided = authorize.for_create(Table(), POLICY, Who(), request_, None)
    assert decided.action is Action.MANAGE_FOREIGN
    assert reason in decided.details["reason"]


def test_within_the_bounds_manage_is_enough() -> None:
    within = spec(
        name="tun%d",
        owner=ME,
        group=27,
        addresses=addresses("192.0.2.1/16", "2001:db8::1/48", "203.0.113.9"),
    )
    assert authorize.for_create(Table(), POLICY, Who(), within, None).action is Action.MANAGE
    bridge = BridgeSpec(name="br%d", addresses=addresses("198.51.100.1/24"))
    assert authorize.for_bridge(POLICY, bridge).action is Action.MANAGE
    assert authorize.for_bridge(POLICY, BridgeSpec(name="virbr0")).action is Action.MANAGE_FOREIGN


def test_foreign_follows_bridges() -> None:
    table = Table()
    own_bridge = link(10, "br0", "bridge")
    nic = link(2, "eth0", "ether", master=10, alias="")
    tap = link(11, "tap0", master=10)
    lone = link(12, "tap1")
    table.add(own_bridge, nic, tap, lone)
    who = Who()
    # The TAP is tungui's, but its bridge carries a NIC: it reaches that LAN.
    decided = authorize.for_change(table, POLICY, who, tap, Changes(mtu=1400), None)
    assert decided.action is Action.MANAGE_FOREIGN
    assert "bridged with devices tungui did not create (eth0)" in decided.details["reason"]
    assert decided.index == 11
    # So does the bridge itself: deleting it cuts the NIC's port.
    decided = authorize.for_device(table, who, own_bridge, "remove {}")
    assert decided.action is Action.MANAGE_FOREIGN
    # And a device that joins it.
    joins = Changes(master="br0", given=frozenset({"master"}))
    decided = authorize.for_change(table, POLICY, who, lone, joins, own_bridge)
    assert decided.action is Action.MANAGE_FOREIGN and decided.bridge == 10
    assert "carries devices tungui did not create" in decided.details["reason"]
    assert authorize.for_create(table, POLICY, who, spec(), own_bridge).action is (
        Action.MANAGE_FOREIGN
    )
    # Without the NIC, all of it is tungui's own.
    del table.links[2]
    assert authorize.for_change(table, POLICY, who, tap, Changes(mtu=1400), None).action is (
        Action.MANAGE
    )
    assert authorize.for_device(table, who, own_bridge, "remove {}").action is Action.MANAGE


def test_a_bridge_tungui_did_not_create_is_foreign_to_join() -> None:
    table = Table()
    system_bridge = link(10, "virbr0", "bridge", alias="")
    table.add(system_bridge)
    decided = authorize.for_create(table, POLICY, Who(), spec(), system_bridge)
    assert decided.action is Action.MANAGE_FOREIGN
    assert "the bridge virbr0 was not created by tungui" in decided.details["reason"]


def test_another_users_devices_are_foreign() -> None:
    table = Table()
    theirs = link(11, "tap0")
    given = link(12, "tap1", owner=1001)
    mine = link(13, "tap2", owner=ME)
    table.add(theirs, given, mine)
    table.held[11] = 1001
    for device, reason in ((theirs, "held for another user"), (given, "belongs to another")):
        for decided in (
            authorize.for_device(table, Who(), device, "remove {}"),
            authorize.for_change(table, POLICY, Who(), device, Changes(persist=True), None),
        ):
            assert decided.action is Action.MANAGE_FOREIGN
            assert reason in decided.details["reason"]
    assert authorize.for_device(table, Who(), mine, "remove {}").action is Action.MANAGE
    # The holder itself may.
    assert authorize.for_device(table, Who(uid=1001), theirs, "remove {}").action is Action.MANAGE


def test_a_device_tungui_did_not_create_is_foreign() -> None:
    other = link(5, "other0", "tun", alias="")
    decided = authorize.for_device(Table({5: other}), Who(), other, "remove {}")
    assert decided.action is Action.MANAGE_FOREIGN
    assert decided.details == {
        "device": "other0",
        "request": "remove other0",
        "reason": "other0 was not created by tungui",
    }


def test_an_authorization_covers_only_its_own_device_and_no_more() -> None:
    manage = Authorization(Action.MANAGE, index=5)
    foreign = Authorization(Action.MANAGE_FOREIGN, index=5)
    assert manage.covers(Authorization(Action.MANAGE, index=5))
    assert not manage.covers(foreign)
    assert foreign.covers(manage)
    assert not manage.covers(Authorization(Action.MANAGE, index=6))
    assert not Authorization(Action.MANAGE, bridge=3).covers(Authorization(Action.MANAGE, bridge=4))


def test_the_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "helper.toml"
    assert ManagePolicy.load(path) == ManagePolicy()
    path.write_text('[manage]\nnames = ["lab*"]\nipv4_prefix = 24\nipv6_prefix = 64\n')
    policy = ManagePolicy.load(path)
    assert policy.name_allowed("lab%d") and not policy.name_allowed("tap0")
    assert not policy.address_allowed(ipaddress.ip_interface("192.0.2.1/23"))
    assert policy.address_allowed(ipaddress.ip_interface("2001:db8::1/64"))
    for bad in ("[manage]\nnames = 3\n", "[manage]\nipv4_prefix = 40\n", "[manage]\nx = 1\n", "=["):
        path.write_text(bad)
        with pytest.raises(PolicyError):
            ManagePolicy.load(path)
