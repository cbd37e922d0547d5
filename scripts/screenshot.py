"""Screenshots of the real window under Xvfb, against the real stack.

    sudo .venv/bin/python -m scripts.screenshot [OUTDIR]   (default: screenshots/)

Brings up a private system bus, polkitd and the helper in a network
namespace (the test stack), makes a few devices there, runs the window on
Qt's xcb platform under Xvfb, and writes PNGs of the main window, the New TAP
dialog, the Properties dialog and the helper-away banner.  Look at them
before calling visual work done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.bus import DBusDaemon
from tests.support.buscall import bus_call
from tests.support.environment import python_path
from tests.support.helper import HelperProcess
from tests.support.names import REPO_ROOT
from tests.support.netns import Netns, remove_stale_netns
from tests.support.polkit import PolkitDaemon
from tests.support.processes import make_shared_tmpdir
from tests.support.waiting import wait_until


def start_xvfb() -> subprocess.Popen[bytes]:
    """A virtual screen on a free display number; sets DISPLAY."""
    for number in range(90, 110):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():
            break
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1600x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: Path(f"/tmp/.X11-unix/X{number}").exists(), what="Xvfb")
    os.environ["DISPLAY"] = f":{number}"
    return proc


def make_devices(netns: Netns) -> None:
    """A small lab: a bridge with two TAPs, a TUN for a VPN, one made by `ip`."""
    from dbus_fast import Variant

    from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH
    from tungui_contract.keys import SPEC_SIGNATURES

    address = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]

    def call(member: str, **spec: object) -> None:
        body = {k: Variant(SPEC_SIGNATURES[k], v) for k, v in spec.items()}
        bus_call(address, BUS_NAME, OBJECT_PATH, INTERFACE, member, "a{sv}", [body])

    call("CreateBridge", name="labbr0", up=True, addresses=["192.0.2.1/24"])
    call(
        "CreateDevice",
        mode="tap",
        name="vm1",
        persist=True,
        owner=65534,
        master="labbr0",
        up=True,
        vnet_hdr=True,
    )
    call(
        "CreateDevice",
        mode="tap",
        name="vm2",
        persist=True,
        owner=65534,
        master="labbr0",
        up=True,
        vnet_hdr=True,
        multi_queue=True,
    )
    call(
        "CreateDevice",
        mode="tun",
        name="vpn0",
        persist=True,
        owner=65534,
        mtu=1420,
        addresses=["198.51.100.1/24", "2001:db8::1/64"],
        up=True,
    )
    netns.ip("tuntap", "add", "mode", "tap", "name", "qemu-tap0")


HOLDER = """
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
# IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as QEMU opens its TAP.
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", b"vm1", 0x0002 | 0x1000 | 0x4000))
print("holding", flush=True)
sys.stdin.read()
"""


def hold_vm1(netns: Netns) -> subprocess.Popen[str]:
    """Play the VM: hold vm1 open (as QEMU would), so the bridge has a live port."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns.name, "python3", "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def shoot(outdir: Path, address: str, helper: HelperProcess) -> list[Path]:
    """Run the window and write the PNGs."""
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from tungui.gui import icons
    from tungui.gui.app import App

    app = QApplication(["tungui"])
    app.setApplicationName("tungui")
    app.setDesktopFileName("io.github.tungui.TunGui")
    app.setWindowIcon(icons.app_icon())
    settings_dir = Path(tempfile.mkdtemp())
    tungui = App(address, QSettings(str(settings_dir / "s.ini"), QSettings.Format.IniFormat))
    tungui.start()
    written: list[Path] = []

    def settle(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def save(widget: QWidget, name: str) -> None:
        path = outdir / f"{name}.png"
        widget.grab().save(str(path))
        written.append(path)

    deadline = time.monotonic() + 15
    while tungui.model.rowCount() < 5 and time.monotonic() < deadline:
        settle(0.1)
    # The graph loads after the first paint; the list may well be in before.
    while tungui.window.graph is None and time.monotonic() < deadline:
        settle(0.1)
    tungui.window.resize(1380, 420)
    tungui.window.select("vm1")
    settle(0.5)
    save(tungui.window, "main-window")

    dialog = tungui.controller.new_device("tap")
    settle(0.5)
    save(dialog, "new-tap-dialog")
    dialog.reject()

    dialog = tungui.controller.new_device("tun")
    settle(0.3)
    name = next(w for w in dialog.findChildren(QWidget) if w.accessibleName() == "Name")
    name.setText("a-name-far-too-long")  # type: ignore[attr-defined]
    settle(0.3)
    save(dialog, "new-tun-dialog-problem")
    dialog.reject()

    tungui.window.select("vpn0")
    properties = tungui.controller.edit_selected()
    settle(0.5)
    if properties is not None:
        save(properties, "properties-dialog")
        properties.reject()

    # Real traffic on the bridge: ARP for a neighbour nobody answers, and
    # UDP broadcasts.
    from tungui.gui.capture.window import PacketWindow

    tungui.window.select("labbr0")
    tungui.controller.watch_selected()
    deadline = time.monotonic() + 10
    while not tungui.window.findChildren(PacketWindow) and time.monotonic() < deadline:
        settle(0.1)
    netns_exec = ["ip", "netns", "exec", os.environ["TUNGUI_SHOTS_NETNS"]]
    beacons = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
        "for i in range(8):\n"
        "    s.sendto(b'tungui lab beacon %d' % i, ('192.0.2.255', 4000))\n"
        "    time.sleep(0.1)\n"
    )
    traffic = [
        subprocess.Popen(
            [*netns_exec, "ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.50"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen([*netns_exec, "python3", "-c", beacons]),
    ]
    settle(2.5)
    for process in traffic:
        process.wait(timeout=10)
    for window in tungui.window.findChildren(PacketWindow):
        window.resize(1000, 560)
        window.table.resizeColumnsToContents()
        window.table.selectRow(0)
        settle(0.5)
        save(window, "packet-window")
        window.close()

    helper.kill()
    deadline = time.monotonic() + 10
    while tungui.helper.available and time.monotonic() < deadline:
        settle(0.1)
    settle(0.5)
    save(tungui.window, "helper-away")

    QTimer.singleShot(0, app.quit)
    tungui.stop()
    shutil.rmtree(settings_dir, ignore_errors=True)
    return written


def main() -> int:
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else REPO_ROOT / "screenshots").resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    remove_stale_netns()
    directory = make_shared_tmpdir("tungui-shots-")
    bus = DBusDaemon(directory)
    netns = Netns(f"tungui-shots-{os.getpid()}")
    xvfb = start_xvfb()
    polkit = None
    helper = None
    try:
        bus.start()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        polkit = PolkitDaemon(bus.address, directory)
        polkit.start()
        netns.create()
        os.environ["TUNGUI_SHOTS_NETNS"] = netns.name
        helper = HelperProcess(
            bus.address,
            netns,
            directory,
            pythonpath=python_path(directory / "shim"),
        )
        helper.start()
        make_devices(netns)
        vm = hold_vm1(netns)
        for path in shoot(outdir, bus.address, helper):
            print(path)
        vm.terminate()
        return 0
    finally:
        if helper is not None and helper.running:
            helper.stop()
        if polkit is not None:
            polkit.stop()
        bus.stop()
        netns.delete()
        xvfb.terminate()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
