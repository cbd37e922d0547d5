"""The contract package agrees with itself and with what it describes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_type_hints

import pytest

import tungui_contract
from tungui_contract import errors, keys
from tungui_contract.bus import ErrorName
from tungui_contract.device import Device
from tungui_contract.limits import MAX_MTU, MAX_PACKET, MIN_MTU, Framing

REPO = Path(__file__).resolve().parents[3]

#: The Python type a record field has for each D-Bus signature.
PYTHON_TYPE: dict[str, Any] = {
    "s": str,
    "u": int,
    "i": int,
    "b": bool,
    "as": tuple[str, ...],
}


def test_the_device_record_has_one_field_per_listed_key() -> None:
    hints = get_type_hints(Device)
    assert set(hints) == set(keys.DEVICE_SIGNATURES)
    for key, signature in keys.DEVICE_SIGNATURES.items():
        assert hints[key] == PYTHON_TYPE[signature], key


def test_a_device_dict_goes_through_the_record_unchanged() -> None:
    tap = {
        "name": "tap0", "index": 7, "kind": "tap", "managed": True, "operstate": "down",
        "up": False, "mtu": 1500, "mac": "fe:00:5e:10:00:01", "addresses": ["192.0.2.1/24"],
        "master": "br0", "mode": "tap", "persist": True, "owner": 1000, "group": -1,
        "pi": False, "vnet_hdr": True, "multi_queue": True, "queues_attached": 2,
        "disabled_queues": 1, "held": True, "transient": False,
    }  # fmt: skip
    bridge = {
        "name": "br0", "index": 3, "kind": "bridge", "managed": True, "operstate": "up",
        "up": True, "mtu": 1500, "mac": "fe:00:5e:10:00:02", "addresses": [], "master": "",
    }  # fmt: skip
    assert set(tap) == set(keys.DEVICE_SIGNATURES)
    for wire in (tap, bridge):
        assert Device.from_wire(wire).to_wire() == wire
    assert Device.from_wire(tap).framing == Framing("tap", pi=False, vnet_hdr=True)


def test_a_record_ignores_keys_a_newer_helper_adds() -> None:
    assert Device.from_wire({"name": "tun0", "kind": "tun", "holders": []}).name == "tun0"


def test_read_only_keys_are_those_listed_but_not_settable() -> None:
    assert {
        "index", "kind", "managed", "operstate", "held",
        "queues_attached", "disabled_queues", "transient",
    } == keys.READ_ONLY_KEYS  # fmt: skip
    assert keys.CHANGE_KEYS <= keys.DEVICE_KEYS
    assert keys.BRIDGE_KEYS <= keys.DEVICE_KEYS
    assert set(keys.FIXED_KEYS) <= keys.DEVICE_KEYS - keys.CHANGE_KEYS


def test_the_spec_keys_are_the_ones_docs_dbus_md_names() -> None:
    table = (REPO / "docs/dbus.md").read_text("utf-8")
    documented = {
        (key, signature)
        for cell, signature in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| (\w+) \|", table, re.M)
        for key in re.findall(r"`(\w+)`", cell)
    }
    assert documented, "docs/dbus.md has no key table in the expected form"
    assert {(k, s) for k, s in documented if k in keys.SPEC_SIGNATURES} == set(
        keys.SPEC_SIGNATURES.items()
    )


def test_every_error_name_has_one_class_and_back() -> None:
    assert set(errors.BY_NAME) == {name.value for name in ErrorName}
    for name in ErrorName:
        error = errors.from_reply(name.value, "sentence")
        assert error.name == name.value
        assert error.message == "sentence"


def test_an_error_outside_the_contract_keeps_its_name() -> None:
    error = errors.from_reply("org.freedesktop.DBus.Error.AccessDenied", "no")
    assert isinstance(error, errors.Failed)
    assert error.name == "org.freedesktop.DBus.Error.AccessDenied"


@pytest.mark.parametrize(
    ("framing", "shortest", "longest"),
    [
        (Framing("tun"), 20, 1500),
        (Framing("tun", pi=True), 24, 1504),
        (Framing("tun", vnet_hdr=True), 30, 1510),
        (Framing("tun", pi=True, vnet_hdr=True), 34, 1514),
        (Framing("tap"), 14, 1518),
        (Framing("tap", pi=True), 18, 1522),
        (Framing("tap", vnet_hdr=True), 24, 1528),
        (Framing("tap", pi=True, vnet_hdr=True), 28, 1532),
    ],
)
def test_packet_bounds(framing: Framing, shortest: int, longest: int) -> None:
    assert framing.shortest == shortest
    assert framing.longest(1500) == longest
    assert len(framing.prefix(0x0800)) == framing.headers
    assert framing.longest(MAX_MTU) <= MAX_PACKET
    assert framing.shortest <= framing.longest(MIN_MTU)


def test_packet_information_carries_the_ethertype() -> None:
    assert Framing("tun", pi=True).prefix(0x86DD) == b"\x00\x00\x86\xdd"
    assert Framing("tun", pi=True, vnet_hdr=True).prefix(0x0800) == b"\x00\x00\x08\x00" + bytes(10)
    assert Framing("tap").prefix(0x0806) == b""


def test_one_version_everywhere() -> None:
    version = tungui_contract.__version__
    changelog = (REPO / "packaging/debian/changelog").read_text("utf-8").splitlines()[0]
    assert changelog.startswith(f"tungui ({version}")
    metainfo = (REPO / "resources/io.github.tungui.TunGui.metainfo.xml").read_text("utf-8")
    assert re.search(r'<release version="([^"]+)"', metainfo)[1] == version  # type: ignore[index]
    import tungui
    import tungui_helper

    assert tungui.__version__ == tungui_helper.__version__ == version
