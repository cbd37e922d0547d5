"""Checks of caller input, without the kernel or the bus."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tungui_contract.checks import check_addresses, check_mac, check_name, check_target
from tungui_contract.errors import InvalidArgument
from tungui_contract.keys import SPEC_SIGNATURES
from tungui_contract.limits import MAX_ADDRESSES, MAX_PACKET
from tungui_helper.validate import bridge_spec, capture_options, changes, device_spec, packet


def spec(**values: Any) -> dict[str, tuple[str, Any]]:
    return {key: (SPEC_SIGNATURES[key], value) for key, value in values.items()}


@pytest.mark.parametrize("name", ["tap0", "a", "x" * 15, "br_lab.1", "lab-1+x"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 16,
        "é" * 8,
        "tun-é",
        ".",
        "..",
        "a/b",
        "a b",
        "a:b",
        "tab\t",
        "a\x00b",
        "tap%d",
        "tg\\xff",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        check_name(name)


@pytest.mark.parametrize("template", ["tap%d", "%d", "lab%dx"])
def test_templates(template: str) -> None:
    assert check_name(template, template=True) == template


@pytest.mark.parametrize("template", ["tap%s", "tap%d%d", "%%d", "tap%"])
def test_bad_templates(template: str) -> None:
    with pytest.raises(InvalidArgument, match="template"):
        check_name(template, template=True)


def test_full_device_spec() -> None:
    checked = device_spec(
        spec(
            name="lab%d",
            mode="tap",
            persist=True,
            owner=1000,
            group=100,
            pi=True,
            vnet_hdr=True,
            multi_queue=True,
            queues=4,
            mtu=9000,
            mac="02:00:5E:10:00:01",
            addresses=["192.0.2.1/24", "2001:db8::1/64"],
            up=True,
            master="br0",
        )
    )
    assert checked.mode == "tap" and checked.name == "lab%d" and checked.queues == 4
    assert checked.mac == "02:00:5e:10:00:01"
    assert checked.addresses == (
        ipaddress.ip_interface("192.0.2.1/24"),
        ipaddress.ip_interface("2001:db8::1/64"),
    )


def test_defaults() -> None:
    checked = device_spec(spec(mode="tun"))
    assert (checked.name, checked.persist, checked.owner, checked.group) == ("tun%d", False, -1, -1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "mode"),
        ({"mode": "tunnel"}, "mode"),
        ({"mode": "tun", "mac": "02:00:00:00:00:01"}, "only a TAP device can have one"),
        ({"mode": "tun", "master": "br0"}, "bridge"),
        ({"mode": "tap", "mtu": 67}, "MTU"),
        ({"mode": "tap", "mtu": 65536}, "MTU"),
        ({"mode": "tap", "owner": -2}, "owner"),
        ({"mode": "tap", "group": -5}, "group"),
        ({"mode": "tap", "queues": 2}, "multi_queue"),
        ({"mode": "tap", "queues": 0}, "queues"),
        ({"mode": "tap", "mac": "01:00:5e:00:00:01"}, "multicast"),
        ({"mode": "tap", "mac": "00:00:00:00:00:00"}, "cannot be used"),
        ({"mode": "tap", "mac": "02-00-00-00-00-01"}, "form"),
        ({"mode": "tap", "addresses": ["192.0.2.300/24"]}, "CIDR"),
        ({"mode": "tap", "addresses": ["192.0.2.1/33"]}, "CIDR"),
        ({"mode": "tap", "addresses": ["224.0.0.1/4"]}, "unicast"),
        ({"mode": "tap", "addresses": ["192.0.2.1/24", "192.0.2.1/24"]}, "twice"),
    ],
)
def test_rejected_specs(values: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        device_spec(spec(**values))


def test_wrong_type_and_unknown_and_read_only_keys() -> None:
    with pytest.raises(InvalidArgument, match="D-Bus type 'u'"):
        device_spec({"mode": ("s", "tap"), "mtu": ("s", "1500")})
    with pytest.raises(InvalidArgument, match="Unknown key 'colour'"):
        device_spec({"mode": ("s", "tap"), "colour": ("s", "red")})
    with pytest.raises(InvalidArgument, match="reported by the helper"):
        device_spec({"mode": ("s", "tap"), "index": ("u", 3)})


def test_bridge_spec_refuses_device_keys() -> None:
    assert bridge_spec(spec(name="br%d", up=True)).up is True
    with pytest.raises(InvalidArgument, match="Unknown key 'persist'"):
        bridge_spec(spec(persist=True))


def test_changes_record_what_was_given() -> None:
    checked = changes(spec(mtu=1400, master="", up=False))
    assert checked.given == {"mtu", "master", "up"}
    assert (checked.mtu, checked.master, checked.up) == (1400, "", False)
    with pytest.raises(InvalidArgument, match="Unknown key 'mode'"):
        changes(spec(mode="tap"))


def test_mac_is_normalised() -> None:
    assert check_mac("FE:AB:cd:00:11:22") == "fe:ab:cd:00:11:22"


# Anything a caller may send: every key, any D-Bus-like type.
_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
    st.booleans(),
    st.lists(st.text(max_size=50), max_size=4),
)
_signatures = st.sampled_from(["s", "u", "i", "b", "as"])
_keys = st.one_of(st.sampled_from(sorted(SPEC_SIGNATURES)), st.text(max_size=12))


@given(st.dictionaries(_keys, st.tuples(_signatures, _values), max_size=8))
def test_any_input_is_accepted_or_refused_by_name(values: dict[str, tuple[str, Any]]) -> None:
    # Values whose Python type disagrees with their signature cannot come off
    # the bus (dbus-fast enforces the signature), so skip those.
    python_type = {"s": str, "u": int, "i": int, "b": bool, "as": list}
    for sig, value in values.values():
        if not isinstance(value, python_type[sig]) or (sig != "b" and isinstance(value, bool)):
            return
    for check in (device_spec, bridge_spec, changes):
        try:
            check(values)
        except InvalidArgument as exc:
            assert exc.message and "Traceback" not in exc.message


def test_wire_text_is_always_encodable() -> None:
    from tungui_helper.bustext import ASCII_ONLY, bus_text

    # A name with bytes that are not UTF-8, as the kernel allows.
    assert bus_text("lab\udcff0") == "lab\\xff0"
    assert bus_text("é0") == ("\\xc3\\xa90" if ASCII_ONLY else "é0")
    assert bus_text("tap0") == "tap0"
    # Not from the kernel, but text all the same: never an exception.
    assert bus_text("a\ud800") == "a\\xed\\xa0\\x80"


def test_proc_net_dev_parsing() -> None:
    from tungui_helper.counters import clamp_interval, parse_proc_net_dev

    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets"
        " errs drop fifo colls carrier compressed\n"
        "    lo:    3193      29    0    0    0     0          0         0     3193      29"
        "    0    0    0     0       0          0\n"
        "  tap0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n"
    )
    counters = parse_proc_net_dev(text)
    assert counters["tap0"] == (10, 1000, 2, 1, 20, 2000, 4, 3)
    assert counters["lo"] == (29, 3193, 0, 0, 29, 3193, 0, 0)
    assert (clamp_interval(1), clamp_interval(500), clamp_interval(10**9)) == (100, 500, 10000)


def test_capture_options() -> None:
    from tungui_helper.validate import CaptureOptions, capture_options

    assert capture_options({}) == CaptureOptions(262144, 0)
    assert capture_options({"snaplen": ("u", 128), "max_rate": ("u", 2000)}) == CaptureOptions(
        128, 2000
    )
    for bad, words in (
        ({"max_rate": ("i", 5)}, "must be of D-Bus type 'u'"),
        ({"snaplen": ("u", 10)}, "out of range"),
        ({"rate": ("u", 5)}, "Unknown capture option 'rate'; the options are: max_rate, snaplen"),
    ):
        with pytest.raises(InvalidArgument, match=words):
            capture_options(bad)


# ------------------------------------------------------------------ bounds


def _refused(check: Any, *args: Any) -> str:
    with pytest.raises(InvalidArgument) as refused:
        check(*args)
    return refused.value.message


def test_a_long_address_list_is_refused_before_any_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real = ipaddress.ip_interface

    def counting(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(ipaddress, "ip_interface", counting)
    addresses = [f"2001:db8::{i:x}/128" for i in range(MAX_ADDRESSES + 1)]
    assert "too many" in _refused(device_spec, spec(mode="tap", addresses=addresses))
    assert parsed == []
    # At the cap, every address is parsed once: a set, not a list, finds
    # duplicates, so the check is linear.
    assert len(device_spec(spec(mode="tap", addresses=addresses[:-1])).addresses) == MAX_ADDRESSES
    assert len(parsed) == MAX_ADDRESSES
    assert "listed twice" in _refused(
        device_spec, spec(mode="tap", addresses=[addresses[0], "2001:db8::0/128"])
    )


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda huge: device_spec(spec(mode="tap", name=huge)), "too long"),
        (lambda huge: device_spec({"mode": ("s", "tap"), huge: ("b", True)}), "Unknown key"),
        (lambda huge: device_spec(spec(mode="tap", mac=huge)), "is not of the form"),
        (lambda huge: device_spec(spec(mode="tap", addresses=[huge])), "too long to be"),
        (lambda huge: changes(spec(master=huge)), "too long"),
        (lambda huge: check_target(huge), "is not the name of"),
        (lambda huge: capture_options({huge: ("u", 1)}), "Unknown capture option"),
    ],
)
def test_errors_repeat_a_short_prefix_of_huge_input(build: Any, words: str) -> None:
    huge = "\x01" * 9_000_000
    message = _refused(build, huge)
    assert words in message
    assert len(message) < 400, message[:400]
    assert "(9000000 long)" in message


def test_more_keys_than_a_call_takes_are_refused_by_count() -> None:
    values = {f"k{i}": ("b", True) for i in range(100_000)}
    assert "more than this call accepts" in _refused(device_spec, values)
    assert "more than there are" in _refused(capture_options, values)


def test_a_packet_longer_than_any_device_takes_is_refused() -> None:
    assert packet(bytes(MAX_PACKET)) == bytes(MAX_PACKET)
    assert "longer than any device takes" in _refused(packet, bytes(MAX_PACKET + 1))


def test_a_scoped_address_is_refused() -> None:
    assert "scope" in _refused(check_addresses, ["fe80::1%eth0/64"])
