"""The helper serves exactly the contract, and bad input never hurts it."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pwd
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, Variant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.errors import DBusCallError
from tests.support.helper import HelperProcess
from tests.support.helperbus import call, create, create_bridge, devices
from tests.support.netns import Netns
from tests.support.waiting import wait_until
from tungui.client import HelperClient
from tungui_contract import __version__
from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH
from tungui_contract.device import Device
from tungui_contract.keys import SPEC_SIGNATURES
from tungui_helper.bustext import ASCII_ONLY

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parents[2] / "resources/dbus/io.github.tungui.Helper1.xml"
OUR_ERRORS = {
    "io.github.tungui.Error.InvalidArgument",
    "io.github.tungui.Error.NotFound",
    "io.github.tungui.Error.Exists",
    "io.github.tungui.Error.Failed",
}


def _canonical(xml: str) -> Any:
    root = ET.fromstring(xml)
    (iface,) = [i for i in root.iter("interface") if i.get("name") == INTERFACE]

    def args(node: ET.Element) -> list[tuple[str | None, str | None, str | None]]:
        return [(a.get("name"), a.get("type"), a.get("direction")) for a in node.findall("arg")]

    return (
        sorted((m.get("name"), args(m)) for m in iface.findall("method")),
        sorted((s.get("name"), args(s)) for s in iface.findall("signal")),
        sorted((p.get("name"), p.get("type"), p.get("access")) for p in iface.findall("property")),
    )


def test_live_introspection_equals_the_contract_file(helper: HelperProcess) -> None:
    # gdbus is an outside client: it knows nothing of tungui.
    result = subprocess.run(
        [
            "gdbus",
            "introspect",
            "--system",
            "--dest",
            BUS_NAME,
            "--object-path",
            OBJECT_PATH,
            "--xml",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    assert _canonical(result.stdout) == _canonical(CONTRACT.read_text())
    for standard in ("Introspectable", "Properties", "Peer"):
        assert f"org.freedesktop.DBus.{standard}" in result.stdout


def test_the_object_is_reachable_by_walking_the_tree(helper: HelperProcess) -> None:
    result = subprocess.run(
        [
            "busctl",
            f"--address={os.environ['DBUS_SYSTEM_BUS_ADDRESS']}",
            "tree",
            BUS_NAME,
            "--list",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert OBJECT_PATH in result.stdout.split()


def test_version_property(helper: HelperProcess) -> None:
    reply = subprocess.run(
        [
            "busctl",
            f"--address={os.environ['DBUS_SYSTEM_BUS_ADDRESS']}",
            "get-property",
            BUS_NAME,
            OBJECT_PATH,
            INTERFACE,
            "Version",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert reply.stdout.strip() == f's "{__version__}"'


def test_a_wrong_signature_is_a_named_error(helper: HelperProcess) -> None:
    with pytest.raises(DBusCallError) as failure:
        call("CreateDevice", "s", "tap0")
    assert failure.value.name == "io.github.tungui.Error.InvalidArgument"
    assert "a{sv}" in failure.value.message


# --- malformed input, thrown at the real helper -------------------------

# D-Bus strings cannot hold NUL.  With dbus-fast 1.84 this test's own client
# cannot send non-ASCII text (it marshals it wrongly); the helper's side of
# that is tested with busctl below.
_TEXT = st.characters(
    blacklist_characters="\x00",
    blacklist_categories=["Cs"],  # lone surrogates are not text at all
    max_codepoint=0x7F if ASCII_ONLY else None,
)

_VALUES = {
    "s": st.text(_TEXT, max_size=24),
    "u": st.integers(min_value=0, max_value=2**32 - 1),
    "i": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "b": st.booleans(),
    "as": st.lists(st.text(_TEXT, max_size=45), max_size=3),
    "x": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "d": st.floats(allow_nan=False),
    "ay": st.binary(max_size=8),
}


@st.composite
def _variant(draw: st.DrawFn, key: str) -> Variant:
    # Mostly the right type for known keys, sometimes any type at all.
    signature = SPEC_SIGNATURES.get(key)
    if signature is None or draw(st.integers(0, 3)) == 0:
        signature = draw(st.sampled_from(sorted(_VALUES)))
    return Variant(signature, draw(_VALUES[signature]))


@st.composite
def _specs(draw: st.DrawFn) -> dict[str, Variant]:
    keys = draw(
        st.lists(
            st.one_of(st.sampled_from(sorted(SPEC_SIGNATURES)), st.text(_TEXT, max_size=10)),
            max_size=6,
            unique=True,
        )
    )
    return {key: draw(_variant(key)) for key in keys}


def _snapshot(netns: Netns) -> Any:
    links = netns.ip_json("link", "show")
    addrs = netns.ip_json("addr", "show")
    strip = {"stats64", "operstate", "linkinfo"}
    return (
        sorted(
            (tuple(sorted((k, str(v)) for k, v in link.items() if k not in strip)))
            for link in links
        ),
        sorted(str(a.get("addr_info")) for a in addrs),
    )


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=_specs(),
    target=st.sampled_from(["fuzz0", "fuzzbr0", "nosuch0", "lo", ""]),
    method=st.sampled_from(["CreateDevice", "ConfigureDevice", "CreateBridge"]),
)
def test_malformed_specs_never_hurt_the_helper(
    helper: HelperProcess, netns: Netns, spec: dict[str, Variant], target: str, method: str
) -> None:
    if netns.link("fuzz0") is None:
        create(name="fuzz0", mode="tap", persist=True, addresses=["203.0.113.1/24"])
        call("CreateBridge", "a{sv}", {"name": Variant("s", "fuzzbr0")})
    before = _snapshot(netns)
    try:
        if method == "ConfigureDevice":
            call(method, "sa{sv}", target, spec)
        else:
            name = call(method, "a{sv}", spec)[0]
            # A spec that happened to be valid: remove what it made.
            if netns.link(name) is not None:
                call("DeleteDevice", "s", name)
    except DBusCallError as exc:
        assert exc.name in OUR_ERRORS, (exc.name, exc.message)
        assert exc.message and "Traceback" not in exc.message and 'File "' not in exc.message
        assert _snapshot(netns) == before, f"{exc.name} ({exc.message}) left changes behind"
    else:
        if method == "ConfigureDevice" and target in ("nosuch0", ""):
            pytest.fail(f"ConfigureDevice on {target!r} succeeded")
    assert helper.running
    if method == "ConfigureDevice" and target in ("fuzz0", "fuzzbr0"):
        # A valid change may have changed fuzz0; start over from a clean one.
        for name in ("fuzz0", "fuzzbr0"):
            if netns.link(name) is not None:
                call("DeleteDevice", "s", name)
    wait_until(lambda: "fuzz0" in devices() or netns.link("fuzz0") is None, timeout=5)


def test_non_ascii_input_and_names_never_cost_the_helper_its_bus(
    helper: HelperProcess, clean_netns: Netns, bus: Any
) -> None:
    from tests.support.helperbus import busctl_argv

    # Echoed in the error message: the reply must still be well-formed.
    result = subprocess.run(
        busctl_argv(
            bus.address, "CreateDevice", "a{sv}", "2", "mode", "s", "tap", "name", "s", "tap-é"
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "printable ASCII" in result.stderr, result.stderr
    # A device another program named in UTF-8, and one named in bytes that
    # are not UTF-8 at all: listed, in signals, and removable by the listed name.
    clean_netns.ip("link", "add", "brü0", "type", "bridge")
    subprocess.run(
        ["ip", "-n", clean_netns.name, "link", "add", b"br\xff0", "type", "bridge"], check=True
    )
    listed = devices()
    unicode_name = "br\\xc3\\xbc0" if ASCII_ONLY else "brü0"
    assert unicode_name in listed and "br\\xff0" in listed
    assert helper.running
    call("DeleteDevice", "s", unicode_name)
    call("DeleteDevice", "s", "br\\xff0")
    assert [n for n in clean_netns.link_names() if n.startswith("br")] == []


async def _listing_fd(client: HelperClient) -> int:
    """ListDevicesByFileDescriptor, called as any D-Bus peer would: the fd."""
    reply = await client.bus.call(
        Message(
            destination=BUS_NAME,
            path=OBJECT_PATH,
            interface=INTERFACE,
            member="ListDevicesByFileDescriptor",
        )
    )
    assert reply is not None and reply.signature == "h", reply
    (fd,) = reply.unix_fds
    return int(fd)


async def _both_listings(
    tun_spec: dict[str, Any],
) -> tuple[list[Device], list[Device], tuple[int, int]]:
    """With a transient TUN of this connection's: both listings, and two
    descriptors of one listing file (the caller closes them)."""
    client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    loop = asyncio.get_running_loop()
    try:
        await client.create_device(tun_spec, interactive=False)
        by_file: list[Device] = []
        in_reply: list[Device] = [Device(name="")]
        deadline = loop.time() + 5
        # A change between the two calls (a read-back 200 ms after an event)
        # makes them differ once; a difference in the forms never goes away.
        while by_file != in_reply and loop.time() < deadline:
            by_file = await client.list_devices()
            in_reply = await client.list_devices_in_reply()
        # Two callers of one listing share its file: asked until no event
        # came between the two calls.
        while True:
            pair = await _listing_fd(client), await _listing_fd(client)
            if os.fstat(pair[0]).st_ino == os.fstat(pair[1]).st_ino or loop.time() > deadline:
                return by_file, in_reply, pair
            for fd in pair:
                os.close(fd)
    finally:
        await client.close()


def test_the_listing_file_holds_what_list_devices_answers(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    # Something in every key: a bridge, a TAP in it with addresses, an owner
    # and vnet_hdr, a device another program made, names that are not ASCII
    # or not UTF-8, and (below) a held multi-queue TUN with pi.
    bridge = create_bridge(name="lbr0", up=True, addresses=["198.51.100.1/24"])
    tap = create(
        mode="tap",
        name="ltap0",
        persist=True,
        owner=pwd.getpwnam("nobody").pw_uid,
        vnet_hdr=True,
        addresses=["192.0.2.1/24", "2001:db8::1/64"],
        mac="02:00:5e:10:00:01",
        master=bridge,
        up=True,
    )
    clean_netns.ip("tuntap", "add", "mode", "tun", "name", "other0")
    clean_netns.ip("link", "add", "brü0", "type", "bridge")
    subprocess.run(
        ["ip", "-n", clean_netns.name, "link", "add", b"br\xff0", "type", "bridge"], check=True
    )
    spec = {"mode": "tun", "name": "ltun0", "pi": True, "multi_queue": True, "queues": 2}

    by_file, in_reply, (first, second) = asyncio.run(_both_listings(spec))
    try:
        assert by_file == in_reply
        listed = {d.name: d for d in by_file}
        unicode_name = "br\\xc3\\xbc0" if ASCII_ONLY else "brü0"
        assert {bridge, tap, "ltun0", "other0", unicode_name, "br\\xff0"} <= set(listed)
        assert listed["ltun0"].held and listed["ltun0"].queues_attached == 2
        assert listed[tap].master == bridge and listed[tap].vnet_hdr is True
        assert listed["other0"].managed is False
        # One sealed file, read-only to every caller, each at its own offset.
        assert os.fstat(first).st_ino == os.fstat(second).st_ino
        seals = fcntl.fcntl(first, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        for fd in (first, second):
            with pytest.raises(OSError) as refused:
                os.write(fd, b"x")
            assert refused.value.errno == errno.EBADF
        head = os.read(first, 1)
        assert head == b"["
        assert os.read(second, 1 << 20).startswith(b"[{")
    finally:
        os.close(first)
        os.close(second)


def test_listing_files_leave_no_descriptor_behind_in_the_helper(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    async def list_while_devices_change() -> int:
        client = await HelperClient.connect(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
        try:
            for step in range(10):
                # A new device between steps: a new listing file each step.
                await client.create_device({"mode": "tap", "name": f"leak{step}"})
                listings = await asyncio.gather(*(client.list_devices() for _ in range(5)))
                assert all(f"leak{step}" in {d.name for d in x} for x in listings)
            return len(listings[-1])
        finally:
            await client.close()

    before = helper.fd_count()
    assert asyncio.run(list_while_devices_change()) >= 10
    # The transient devices went with the connection; the helper keeps one
    # listing file at most, as it did before.
    wait_until(lambda: helper.fd_count() <= before + 1, timeout=5, what="descriptors released")
