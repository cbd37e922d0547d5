"""The device dialog's form and its checks, without Qt."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.devicedicts import NOBODY
from tests.support.devicedicts import lab_device as device
from tungui.gui.devices import dialogform as form
from tungui.gui.devices.dialogform import (
    DeviceForm,
    check_changes,
    check_new,
    fixed_fields,
    random_mac,
)
from tungui_contract.checks import check_mac
from tungui_contract.device import Device


def test_a_valid_new_tap_device() -> None:
    checked = check_new(
        DeviceForm(
            mode="tap",
            name=" tap-lab%d ",
            owner="nobody",
            group="4321",
            persist=False,
            vnet_hdr=True,
            mtu="1400",
            mac="02:00:5E:10:00:01",
            addresses=["192.0.2.1/24", "", "2001:DB8::1/64", "198.51.100.7"],
            up=True,
            master="br-lab",
        )
    )
    assert checked.ok
    assert checked.problems == []
    assert checked.spec == {
        "mode": "tap",
        "name": "tap-lab%d",
        "persist": False,
        "owner": NOBODY,
        "group": 4321,
        "pi": False,
        "vnet_hdr": True,
        "multi_queue": False,
        "mtu": 1400,
        "mac": "02:00:5e:10:00:01",
        "master": "br-lab",
        # As typed, once checked: the helper parses them itself.
        "addresses": ["192.0.2.1/24", "2001:DB8::1/64", "198.51.100.7"],
        "up": True,
    }


def test_a_new_form_hands_the_device_to_the_current_user_and_keeps_it() -> None:
    new = DeviceForm(mode="tun")
    assert new.owner == form.current_user()
    assert new.group == ""
    assert new.persist is True
    assert check_new(new).spec == {
        "mode": "tun",
        "persist": True,
        "owner": os.getuid(),
        "group": -1,
        "pi": False,
        "vnet_hdr": False,
        "multi_queue": False,
        "addresses": [],
        "up": False,
    }


def test_nobody_may_open_it_without_privileges_when_owner_and_group_are_empty() -> None:
    spec = check_new(DeviceForm(mode="tap", owner="", group="")).spec
    assert spec is not None
    assert (spec["owner"], spec["group"]) == (-1, -1)


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"name": "tap-0123456789ab"}, "name", "16 bytes long"),
        ({"name": "tap%s"}, "name", "not a valid template"),
        ({"name": "tap%d%d"}, "name", "not a valid template"),
        ({"name": "my tap"}, "name", "whitespace"),
        ({"owner": "no-such-user-here"}, "owner", "No user named no-such-user-here."),
        ({"group": "no-such-group-here"}, "group", "No group named no-such-group-here."),
        ({"owner": "4294967295"}, "owner", "not a valid id"),
        ({"mtu": "40"}, "mtu", "out of range"),
        ({"mtu": "65536"}, "mtu", "out of range"),
        ({"mtu": "1.5k"}, "mtu", "not a number"),
        ({"mac": "02:00:5e:10:00"}, "mac", "not of the form"),
        ({"mac": "01:00:5e:10:00:01"}, "mac", "multicast"),
        ({"addresses": ["192.0.2.300/24"]}, "addresses", "CIDR"),
        ({"addresses": ["192.0.2.1/33"]}, "addresses", "CIDR"),
        ({"addresses": ["192.0.2.1/24", "192.0.2.1/24"]}, "addresses", "listed twice"),
        ({"master": "br/0"}, "master", "bridge name"),
        ({"mode": "tun", "mac": "02:00:5e:10:00:01"}, "mac", "TUN device has no MAC"),
        ({"mode": "tun", "master": "br-lab"}, "master", "TUN device cannot join a bridge"),
    ],
)
def test_each_kind_of_problem(changes: dict[str, Any], key: str, words: str) -> None:
    values: dict[str, Any] = {"mode": "tap", **changes}
    checked = check_new(DeviceForm(**values))
    assert checked.spec is None
    assert not checked.ok
    assert len(checked.problems) == 1
    assert words in checked.problems[0]
    assert checked.problems[0].endswith(".")
    assert checked.by_field == {key: checked.problems[0]}


def test_problems_come_in_the_order_of_the_fields() -> None:
    checked = check_new(
        DeviceForm(mode="tap", name="x" * 16, owner="no-such-user-here", mtu="1", mac="zz")
    )
    assert [problem.split()[:2] for problem in checked.problems] == [
        ["The", "name"],
        ["No", "user"],
        ["The", "MTU"],
        ["The", "MAC"],
    ]
    assert list(checked.by_field) == ["name", "owner", "mtu", "mac"]


def test_from_device_shows_the_device_as_it_is() -> None:
    shown = DeviceForm.from_device(device(group=0, up=True))
    assert shown == DeviceForm(
        mode="tap",
        name="tap-lab0",
        owner="nobody",
        group=grp.getgrgid(0).gr_name,
        persist=True,
        pi=False,
        vnet_hdr=True,
        multi_queue=False,
        mtu="1500",
        mac="fe:54:00:12:34:56",
        addresses=["192.0.2.1/24", "2001:db8::1/64"],
        up=True,
        master="br-lab",
    )


def test_from_device_without_owner_and_with_unnamed_ids() -> None:
    assert DeviceForm.from_device(device(owner=-1)).owner == ""
    unnamed = next(uid for uid in range(54321, 60000) if not _has_user(uid))
    assert DeviceForm.from_device(device(owner=unnamed)).owner == str(unnamed)


def test_from_device_of_a_tun_device_has_no_mac() -> None:
    tun = device(kind="tun", mode="tun", master="", mac="")
    shown = DeviceForm.from_device(tun)
    assert (shown.mode, shown.mac) == ("tun", "")
    assert check_changes(shown, shown).spec == {}


def test_from_device_refuses_a_bridge() -> None:
    with pytest.raises(ValueError, match="not a TUN or TAP"):
        DeviceForm.from_device(Device(name="br0", kind="bridge", mtu=1500))


def test_unchanged_properties_make_an_empty_change_set() -> None:
    original = DeviceForm.from_device(device())
    assert check_changes(original, DeviceForm.from_device(device())).spec == {}


def test_check_changes_returns_only_what_changed() -> None:
    original = DeviceForm.from_device(device())
    edited = DeviceForm.from_device(device())
    edited.mtu = "9000"
    edited.up = True
    edited.master = ""
    edited.addresses = ["2001:db8::1/64", "192.0.2.1/24", "203.0.113.9/24"]
    assert check_changes(original, edited).spec == {
        "mtu": 9000,
        "up": True,
        "master": "",
        "addresses": ["2001:db8::1/64", "192.0.2.1/24", "203.0.113.9/24"],
    }


def test_check_changes_ignores_what_only_looks_different() -> None:
    original = DeviceForm.from_device(device())
    edited = DeviceForm.from_device(device())
    edited.mac = "FE:54:00:12:34:56"
    edited.mtu = " 1500 "
    edited.owner = str(NOBODY)
    edited.addresses = ["2001:DB8::1/64", "", "192.0.2.1/24"]
    assert check_changes(original, edited).spec == {}


def test_check_changes_covers_owner_group_persist() -> None:
    original = DeviceForm.from_device(device(owner=-1))
    edited = DeviceForm.from_device(device(owner=-1))
    edited.owner = "nobody"
    edited.group = "4321"
    edited.persist = False
    assert check_changes(original, edited).spec == {
        "owner": NOBODY,
        "group": 4321,
        "persist": False,
    }


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("owner", "", "cannot clear a device's owner"),
        ("mtu", "", "Enter an MTU"),
        ("mac", "", "Enter a MAC address"),
        ("mtu", "40", "out of range"),
        ("name", "tap-lab1", "name of an existing device cannot be changed"),
        ("multi_queue", True, "multi-queue setting of an existing device"),
    ],
)
def test_changes_an_existing_device_cannot_take(field: str, value: Any, words: str) -> None:
    original = DeviceForm.from_device(device())
    edited = DeviceForm.from_device(device())
    setattr(edited, field, value)
    checked = check_changes(original, edited)
    assert checked.spec is None
    assert words in checked.problems[0]
    assert field in checked.by_field


def test_fixed_fields() -> None:
    assert set(fixed_fields(device())) == {"name", "mode", "pi", "vnet_hdr", "multi_queue"}
    held = fixed_fields(device(held=True))
    assert {"owner", "group", "persist"} <= set(held)
    assert "another program" in held["owner"]
    # The helper's own queue, or a second queue of a multi-queue device, is fine.
    assert "owner" not in fixed_fields(device(held=True, transient=True))
    assert "owner" not in fixed_fields(device(held=True, multi_queue=True))


@given(st.binary(min_size=6, max_size=6))
def test_random_mac_is_locally_administered_unicast(octets: bytes) -> None:
    with mock.patch("secrets.token_bytes", return_value=octets):
        mac = random_mac()
    first = int(mac[:2], 16)
    assert first & 0b10, "locally administered"
    assert not first & 0b01, "unicast"
    assert bytes.fromhex(mac.replace(":", ""))[1:] == octets[1:]
    assert first & 0xFC == octets[0] & 0xFC
    assert check_mac(mac) == mac
    assert mac == mac.lower()
    assert len(mac) == 17


def test_random_mac_is_random() -> None:
    assert len({random_mac() for _ in range(20)}) == 20


def test_pickers_list_real_accounts() -> None:
    users = form.users()
    groups = form.groups()
    assert users == sorted(set(users))
    assert groups == sorted(set(groups))
    assert "nobody" in users
    assert form.current_user() in users
    assert form.current_group() in groups


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def test_as_mode() -> None:
    assert form.as_mode("tap") == "tap"
    assert form.as_mode("tun") == "tun"
    with pytest.raises(ValueError, match="not a device mode"):
        form.as_mode("bridge")


def test_the_form_needs_no_qt() -> None:
    code = (
        "import sys, tungui.gui.devices.dialogform;"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
