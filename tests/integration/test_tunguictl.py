"""tunguictl end to end: real helper, real kernel, exit codes of a Unix tool."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import call, create, variants
from tests.support.netns import Netns
from tests.support.nobody import NobodyPython
from tests.support.traffic import Reader, udp
from tests.support.tshark import tshark_fields
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def _argv() -> list[str]:
    script = Path(sys.executable).parent / "tunguictl"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tungui.cli.main import main; raise SystemExit(main())"]


def tunguictl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_argv(), *args], capture_output=True, text=True, timeout=30, env=env or os.environ.copy()
    )


def test_create_list_set_delete(helper: HelperProcess, clean_netns: Netns) -> None:
    result = tunguictl(
        "create",
        "tap",
        "cli%d",
        "--owner",
        "nobody",
        "--mtu",
        "1400",
        "--address",
        "192.0.2.9/24",
        "--address",
        "2001:db8::9/64",
        "--up",
        "--vnet-hdr",
    )
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    assert name == "cli0"
    link = clean_netns.link(name)
    assert link is not None and link["mtu"] == 1400 and "UP" in link["flags"]
    assert link["linkinfo"]["info_data"]["user"] == "nobody"
    assert link["linkinfo"]["info_data"]["persist"] is True, "tunguictl create persists by default"

    table = tunguictl("list")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "KIND", "STATE"]
    (row,) = [r for r in rows if r.split()[0] == name]
    assert "nobody" in row.split() and "192.0.2.9/24" in row and "vnet_hdr" in row

    listed = json.loads(tunguictl("list", "--json").stdout)
    (device,) = [d for d in listed if d["name"] == name]
    assert device["owner"] == 65534 and device["vnet_hdr"] is True

    result = tunguictl("set", name, "--mtu", "1300", "--down", "--no-addresses")
    assert result.returncode == 0, result.stderr
    link = clean_netns.link(name)
    assert link is not None and link["mtu"] == 1300 and "UP" not in link["flags"]
    assert clean_netns.ip_json("addr", "show", "dev", name)[0]["addr_info"] == [] or all(
        a["local"].startswith("fe80")
        for a in clean_netns.ip_json("addr", "show", "dev", name)[0]["addr_info"]
    )

    assert tunguictl("delete", name).returncode == 0
    assert clean_netns.link(name) is None


def test_errors_have_messages_and_exit_codes(helper: HelperProcess, clean_netns: Netns) -> None:
    result = tunguictl("delete", "nosuch0")
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "tunguictl: There is no device named nosuch0.",
    )
    result = tunguictl("create", "tap", "--mtu", "10")
    assert result.returncode == 2
    assert "MTU 10 is out of range" in result.stderr
    result = tunguictl("create", "tap", "--owner", "no-such-user-here")
    assert result.returncode == 2 and "no such user" in result.stderr
    result = tunguictl("create", "tun", "--mac", "02:00:00:00:00:01")
    assert result.returncode == 2 and "only a TAP device can have one" in result.stderr
    assert "Traceback" not in result.stderr
    assert tunguictl("frobnicate").returncode == 2


def test_unprivileged_user_is_refused_with_status_4(
    helper: HelperProcess, clean_netns: Netns, nobody_python: NobodyPython
) -> None:
    result = nobody_python(
        "from tungui.cli.main import main\nraise SystemExit(main(['create', 'tap', 'tundenied0']))",
        preimport=[
            "tungui.cli.main",
            "tungui.client",
            "grp",
            "pwd",
            "argparse",
            "importlib.readers",
        ],
    )
    assert result.returncode == 4, result.stderr
    assert "not allowed to manage TUN/TAP devices" in result.stderr
    assert clean_netns.link("tundenied0") is None


def test_transient_device_lives_while_tunguictl_runs(
    helper: HelperProcess, clean_netns: Netns
) -> None:
    proc = subprocess.Popen(
        [*_argv(), "create", "tun", "--transient"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        name = proc.stdout.readline().strip()
        assert clean_netns.link(name) is not None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: clean_netns.link(name) is None, timeout=5, what=f"{name} to go")


def test_helper_unreachable_is_status_69(tmp_path: Path) -> None:
    env = os.environ.copy()
    env["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={tmp_path}/no-bus-here"
    result = tunguictl("list", env=env)
    assert result.returncode == 69
    assert "Cannot reach the system bus" in result.stderr


def _capture_while_sending(netns: Netns, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``tunguictl capture ARGS`` while UDP datagrams go out through 192.0.2.1/24."""
    proc = subprocess.Popen(
        [*_argv(), "capture", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )

    def done_or_send_one() -> bool:
        # Until it has its packets: it may start after the first ones went by.
        if proc.poll() is not None:
            return True
        subprocess.run(["ip", "netns", "exec", netns.name, *udp(1)], check=True)
        return False

    try:
        wait_until(done_or_send_one, timeout=20, interval=0.1, what="tunguictl capture to end")
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture
def captured_tun(helper: HelperProcess, clean_netns: Netns) -> Iterator[str]:
    name = create(mode="tun", name="ctl%d", persist=True, addresses=["192.0.2.1/24"])
    # No IPv6 on it: the kernel's own router solicitations and MLD reports,
    # sent once it has carrier, would land among the test's datagrams.
    subprocess.run(
        [*clean_netns.exec_argv("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")],
        check=True,
    )
    call("ConfigureDevice", "sa{sv}", name, variants(up=True))
    reader = Reader(clean_netns, name)  # a program holding it: it has carrier
    yield name
    reader.close()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_capture_writes_pcapng_that_tshark_reads(
    captured_tun: str, clean_netns: Netns, tmp_path: Path
) -> None:
    path = tmp_path / "capture.pcapng"
    result = _capture_while_sending(
        clean_netns, captured_tun, "-c", "5", "-s", "64", "-w", str(path)
    )
    assert result.returncode == 0, result.stderr
    assert "5 packets captured" in result.stderr
    # The IP protocol number, not the protocol column: newer tshark names
    # datagrams to port 9 after the discard protocol.
    rows = tshark_fields(path, "ip.proto", "udp.dstport", "frame.cap_len", "frame.len")
    assert rows == [["17", "9", "64", "124"]] * 5


def test_capture_prints_a_line_per_packet(captured_tun: str, clean_netns: Netns) -> None:
    result = _capture_while_sending(clean_netns, captured_tun, "-c", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(
        " out " in line and "UDP 192.0.2.1:" in line and "192.0.2.2:9" in line for line in lines
    )


def test_capture_stops_cleanly_on_ctrl_c(captured_tun: str, helper: HelperProcess) -> None:
    proc = subprocess.Popen(
        [*_argv(), "capture", captured_tun, "-w", "/dev/null"],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        wait_until(
            lambda: _helper_captures(helper) == 1,
            timeout=10,
            what="the capture to start",
            abort=lambda: None if proc.poll() is None else "tunguictl ended early",
        )
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "packets captured" in err
    wait_until(lambda: _helper_captures(helper) == 0, timeout=5, what="the capture to end")


def _helper_captures(helper: HelperProcess) -> int:
    """Packet sockets the helper holds (one per running capture here)."""
    # The helper's own view of /proc/net: its network namespace's sockets.
    # A socket may be behind several fds (mmap keeps a duplicate of its fd).
    packet_sockets = {
        line.split()[-1]
        for line in Path(f"/proc/{helper.pid}/net/packet").read_text().splitlines()[1:]
    }
    held = set()
    for fd in Path(f"/proc/{helper.pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            held.add(str(fd.readlink()).removeprefix("socket:[").removesuffix("]"))
    return len(held & packet_sockets)
