"""CreateDevice, ConfigureDevice and DeleteDevice checked against the kernel.

The helper runs as root in the test's network namespace; what it did is read
back with ``ip -d -j`` from outside, never from the helper itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.errors import DBusCallError
from tests.support.helper import HelperProcess
from tests.support.helperbus import call, create, devices, variants
from tests.support.netns import Netns
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def kernel(netns: Netns, name: str) -> dict[str, Any]:
    link = netns.link(name)
    assert link is not None, f"{name} is not in the kernel"
    return link


def addresses(netns: Netns, name: str) -> set[str]:
    (entry,) = netns.ip_json("addr", "show", "dev", name)
    return {
        f"{a['local']}/{a['prefixlen']}"
        for a in entry["addr_info"]
        if not a["local"].startswith("fe80")
    }


@pytest.mark.parametrize("mode", ["tun", "tap"])
def test_every_key_reaches_the_kernel(helper: HelperProcess, clean_netns: Netns, mode: str) -> None:
    bridge = (
        str(call("CreateBridge", "a{sv}", variants(name="labbr0", mtu=1400))[0])
        if mode == "tap"
        else None
    )
    extra: dict[str, Any] = {"mac": "02:00:5e:10:00:01", "master": bridge} if mode == "tap" else {}
    name = create(
        name=f"lab{mode}%d",
        mode=mode,
        persist=True,
        owner=65534,
        group=65534,
        pi=True,
        vnet_hdr=True,
        multi_queue=True,
        mtu=1400,
        addresses=["192.0.2.1/24", "2001:db8::1/64"],
        up=True,
        **extra,
    )
    assert name == f"lab{mode}0"
    link = kernel(clean_netns, name)
    info = link["linkinfo"]["info_data"]
    assert link["linkinfo"]["info_kind"] == "tun"
    assert info["type"] == mode
    assert (info["pi"], info["vnet_hdr"], info["multi_queue"], info["persist"]) == (True,) * 4
    assert (info["user"], info["group"]) == ("nobody", "nogroup")
    assert link["mtu"] == 1400
    assert "UP" in link["flags"]
    assert link.get("ifalias") == "tungui"
    assert addresses(clean_netns, name) == {"192.0.2.1/24", "2001:db8::1/64"}
    if mode == "tap":
        assert link["address"] == "02:00:5e:10:00:01"
        assert link["master"] == bridge
    listed = devices()[name]
    assert listed["mode"] == mode and listed["managed"] and listed["persist"]
    assert (listed["owner"], listed["group"], listed["mtu"]) == (65534, 65534, 1400)
    assert set(listed["addresses"]) == {"192.0.2.1/24", "2001:db8::1/64"}
    assert listed["master"] == (bridge or "")


@pytest.mark.parametrize("mode", ["tun", "tap"])
def test_defaults_are_the_plain_kernel_defaults(
    helper: HelperProcess, clean_netns: Netns, mode: str
) -> None:
    name = create(mode=mode, persist=True)
    assert name == f"{mode}0"
    info = kernel(clean_netns, name)["linkinfo"]["info_data"]
    assert (info["pi"], info["vnet_hdr"], info["multi_queue"]) == (False, False, False)
    assert "user" not in info and "group" not in info
    assert "UP" not in kernel(clean_netns, name)["flags"]


def test_a_tap_joins_a_bridge_the_libvirt_way(helper: HelperProcess, clean_netns: Netns) -> None:
    bridge = str(call("CreateBridge", "a{sv}", variants(mtu=1450, up=True))[0])
    name = create(mode="tap", persist=True, master=bridge, up=True)
    link = kernel(clean_netns, name)
    assert link["master"] == bridge
    assert link["address"].startswith("fe:"), "the bridge must not take the TAP's address"
    assert link["mtu"] == 1450, "the TAP takes the bridge's MTU"


def test_a_failing_step_leaves_nothing_behind(helper: HelperProcess, clean_netns: Netns) -> None:
    before = clean_netns.link_names()
    # The kernel refuses an IPv6 address below IPv6's minimum MTU, after the
    # device, its persist flag and its IPv4 address were made.
    with pytest.raises(DBusCallError) as failure:
        create(
            name="half0",
            mode="tap",
            persist=True,
            mtu=1000,
            addresses=["192.0.2.1/24", "2001:db8::1/64"],
        )
    assert failure.value.name == "io.github.tungui.Error.InvalidArgument"
    assert "2001:db8::1/64" in failure.value.message
    assert clean_netns.link_names() == before
    assert "half0" not in devices()


def test_a_missing_bridge_is_refused_before_anything_is_made(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    before = clean_netns.link_names()
    with pytest.raises(DBusCallError) as failure:
        create(mode="tap", persist=True, master="nosuchbr")
    assert failure.value.name == "io.github.tungui.Error.NotFound"
    assert clean_netns.link_names() == before


def test_names_that_exist_are_refused(helper: HelperProcess, clean_netns: Netns) -> None:
    clean_netns.ip("link", "add", "taken0", "type", "bridge")
    with pytest.raises(DBusCallError) as failure:
        create(name="taken0", mode="tap", persist=True)
    assert failure.value.name == "io.github.tungui.Error.Exists"
    assert kernel(clean_netns, "taken0")["linkinfo"]["info_kind"] == "bridge"


def test_configure_changes_the_kernel(helper: HelperProcess, clean_netns: Netns) -> None:
    bridge = str(call("CreateBridge", "a{sv}", variants())[0])
    name = create(mode="tap", persist=True, addresses=["192.0.2.1/24"])
    call(
        "ConfigureDevice",
        "sa{sv}",
        name,
        variants(
            mtu=1280,
            mac="02:00:5e:00:00:99",
            up=True,
            addresses=["198.51.100.7/24", "2001:db8::7/64"],
            owner=65534,
            group=65534,
            master=bridge,
        ),
    )
    link = kernel(clean_netns, name)
    info = link["linkinfo"]["info_data"]
    assert (link["mtu"], link["address"], link["master"]) == (1280, "02:00:5e:00:00:99", bridge)
    assert "UP" in link["flags"]
    assert (info["user"], info["group"]) == ("nobody", "nogroup")
    assert addresses(clean_netns, name) == {"198.51.100.7/24", "2001:db8::7/64"}
    listed = devices()[name]
    assert listed["owner"] == 65534 and listed["master"] == bridge and listed["mtu"] == 1280

    call("ConfigureDevice", "sa{sv}", name, variants(master="", up=False, addresses=[]))
    link = kernel(clean_netns, name)
    assert "master" not in link and "UP" not in link["flags"]
    assert addresses(clean_netns, name) == set()


def test_a_failing_change_undoes_the_earlier_ones(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    name = create(mode="tap", persist=True, addresses=["192.0.2.1/24"])
    before = kernel(clean_netns, name)
    with pytest.raises(DBusCallError):
        # MTU 1000 is applied first, then IPv6 refuses the address.
        call(
            "ConfigureDevice",
            "sa{sv}",
            name,
            variants(mtu=1000, addresses=["2001:db8::1/64"], up=True),
        )
    after = kernel(clean_netns, name)
    assert after["mtu"] == before["mtu"]
    assert after["flags"] == before["flags"]
    assert addresses(clean_netns, name) == {"192.0.2.1/24"}


def test_turning_persist_off_hands_the_device_to_the_caller(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    name = create(mode="tun", persist=True)
    # bus_call's connection closes right after the reply: the device, now
    # transient and held for that connection, goes with it.
    call("ConfigureDevice", "sa{sv}", name, variants(persist=False))
    wait_until(lambda: clean_netns.link(name) is None, timeout=5, what=f"{name} to go")
    assert name not in devices()


def test_delete_removes_devices_and_bridges(helper: HelperProcess, clean_netns: Netns) -> None:
    tap = create(mode="tap", persist=True)
    bridge = str(call("CreateBridge", "a{sv}", variants())[0])
    call("DeleteDevice", "s", tap)
    call("DeleteDevice", "s", bridge)
    assert clean_netns.link(tap) is None and clean_netns.link(bridge) is None
    with pytest.raises(DBusCallError) as failure:
        call("DeleteDevice", "s", tap)
    assert failure.value.name == "io.github.tungui.Error.NotFound"


def test_persistent_devices_stay_managed_across_a_helper_restart(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    name = create(mode="tap", persist=True)
    helper.stop()
    helper.start()
    listed = devices()[name]
    assert listed["managed"] is True
    assert listed["held"] is False
