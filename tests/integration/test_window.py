"""The window against the real stack: private bus, real polkitd, helper in a netns.

pytest-qt on the offscreen platform.  Widgets are found by their accessible
names, as an assistive-technology client would find them.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QWidget,
)

from tests.support.bus import DBusDaemon
from tests.support.helper import HelperProcess
from tests.support.helperbus import create
from tests.support.netns import Netns
from tests.support.tshark import tshark_fields
from tungui.client import HelperClient
from tungui.gui.actions import Act
from tungui.gui.app import App

pytestmark = pytest.mark.integration

W = TypeVar("W", bound=QWidget)
TIMEOUT = 10_000  # ms


def find(parent: QWidget, kind: type[W], name: str) -> W:
    """The child of that type whose accessible name is ``name``."""
    matches = [w for w in parent.findChildren(kind) if w.accessibleName() == name]
    assert len(matches) == 1, f"{len(matches)} {kind.__name__} named {name!r}"
    return matches[0]


def _running_app(qtbot: Any, bus: DBusDaemon, tmp_path: Path) -> Iterator[App]:
    """The window, connected to the helper; closed afterwards."""
    settings = QSettings(str(tmp_path / "tungui.ini"), QSettings.Format.IniFormat)
    tungui = App(bus.address, settings)
    qtbot.addWidget(tungui.window)
    tungui.start()
    qtbot.waitUntil(lambda: tungui.helper.available, timeout=TIMEOUT)
    yield tungui
    tungui.stop()
    tungui.window.close()


@pytest.fixture
def app(qtbot: Any, bus: DBusDaemon, helper: HelperProcess, tmp_path: Path) -> Iterator[App]:
    yield from _running_app(qtbot, bus, tmp_path)


def names(app: App) -> set[str]:
    return {d.name for d in app.model.devices()}


def test_create_a_tap_through_the_dialog(qtbot: Any, app: App, clean_netns: Netns) -> None:
    dialog = app.controller.new_device("tap")
    qtbot.waitExposed(dialog)
    qtbot.keyClicks(find(dialog, QLineEdit, "Name"), "gui%d")
    qtbot.keyClicks(find(dialog, QLineEdit, "MTU"), "1400")
    create_button = find(dialog, QPushButton, "Create")
    assert create_button.isEnabled(), dialog.checked().problems
    qtbot.mouseClick(create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "gui0" in names(app), timeout=TIMEOUT)
    link = clean_netns.link("gui0")
    assert link is not None and link["mtu"] == 1400
    assert link["linkinfo"]["info_data"]["type"] == "tap"
    qtbot.waitUntil(
        lambda: getattr(app.window.selected_device(), "name", None) == "gui0", timeout=TIMEOUT
    )


def test_delete_from_the_context_menu(qtbot: Any, app: App, clean_netns: Netns) -> None:
    name = create(mode="tap", name="ctx0", persist=True)
    qtbot.waitUntil(lambda: name in names(app), timeout=TIMEOUT)
    app.window.select(name)
    row = app.window.table.currentIndex().row()
    rect = app.window.table.visualRect(app.window.proxy.index(row, 0))
    app.window.table.customContextMenuRequested.emit(rect.center())
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu), timeout=TIMEOUT)
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu)
    (delete,) = [a for a in menu.actions() if a.text().replace("&", "") == "Delete"]
    delete.trigger()
    menu.close()
    qtbot.waitUntil(
        lambda: isinstance(QApplication.activeModalWidget(), QMessageBox), timeout=TIMEOUT
    )
    box = QApplication.activeModalWidget()
    assert isinstance(box, QMessageBox) and name in box.text()
    (confirm,) = [b for b in box.buttons() if b.text().replace("&", "") == "Delete"]
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: name not in names(app), timeout=TIMEOUT)
    assert clean_netns.link(name) is None


def test_a_device_made_in_a_terminal_appears_by_itself(
    qtbot: Any, app: App, clean_netns: Netns
) -> None:
    clean_netns.ip("tuntap", "add", "mode", "tun", "name", "term0")
    qtbot.waitUntil(lambda: "term0" in names(app), timeout=TIMEOUT)
    row = app.model.row_of("term0")
    assert row is not None
    assert app.model.index(row, 0).data(Qt.ItemDataRole.FontRole).italic()
    clean_netns.ip("tuntap", "del", "mode", "tun", "name", "term0")
    qtbot.waitUntil(lambda: "term0" not in names(app), timeout=TIMEOUT)


def test_helper_away_shows_a_banner_and_comes_back(
    qtbot: Any, app: App, helper: HelperProcess, clean_netns: Netns
) -> None:
    name = create(mode="tun", name="back0", persist=True)
    qtbot.waitUntil(lambda: name in names(app), timeout=TIMEOUT)
    banner = find(app.window, QWidget, "Helper status")
    assert not banner.isVisible()
    helper.kill()
    qtbot.waitUntil(lambda: banner.isVisible(), timeout=TIMEOUT)
    assert "helper" in banner.text().lower()  # type: ignore[attr-defined]
    assert not app.window.action(Act.NEW_TAP).isEnabled()
    helper.start()
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=TIMEOUT)
    assert name in names(app)
    assert app.window.action(Act.NEW_TAP).isEnabled()


@pytest.fixture
def app_as_nobody(
    qtbot: Any,
    bus: DBusDaemon,
    helper: HelperProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[App]:
    """The window with its bus connection made as the unprivileged user nobody.

    The bus daemon and polkit take the caller's identity from the socket's
    credentials at connect time, so the process becomes nobody just for the
    connect (the saved uid lets it come back to root).
    """
    connect = HelperClient.connect.__func__  # type: ignore[attr-defined]

    async def connect_as_nobody(cls: type[HelperClient], address: str | None = None) -> Any:
        os.setresgid(65534, 65534, 0)
        os.setresuid(65534, 65534, 0)
        try:
            return await connect(cls, address)
        finally:
            os.setresuid(0, 0, 0)
            os.setresgid(0, 0, 0)

    monkeypatch.setattr(HelperClient, "connect", classmethod(connect_as_nobody))
    yield from _running_app(qtbot, bus, tmp_path)


def test_a_refusal_is_a_plain_sentence_and_changes_nothing(
    qtbot: Any, app_as_nobody: App, clean_netns: Netns
) -> None:
    app = app_as_nobody
    before = clean_netns.link_names()
    qtbot.waitUntil(lambda: bool(app.window.permission_label.text()), timeout=TIMEOUT)
    assert "password" in app.window.permission_label.text()
    dialog = app.controller.new_device("tun")
    qtbot.waitExposed(dialog)
    qtbot.keyClicks(find(dialog, QLineEdit, "Name"), "tundenied0")
    # The owner defaults to the window's user, root in this process (only
    # its bus connection is nobody's); a device for nobody is within manage.
    owner = find(dialog, QLineEdit, "Owner")
    owner.clear()
    qtbot.keyClicks(owner, "nobody")
    qtbot.mouseClick(find(dialog, QPushButton, "Create"), Qt.MouseButton.LeftButton)
    notice = find(app.window, QWidget, "Last error")
    qtbot.waitUntil(lambda: notice.isVisible(), timeout=TIMEOUT)
    text = notice.text()  # type: ignore[attr-defined]
    assert text == "You are not allowed to manage TUN/TAP devices and bridges."
    assert "io.github" not in text
    assert clean_netns.link_names() == before


def test_every_control_has_an_accessible_name(app: App) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QToolButton

    unnamed = [
        w
        for w in app.window.findChildren(QWidget)
        if isinstance(w, QLineEdit | QAbstractItemView | QAbstractButton)
        and not isinstance(w, QToolButton)
        and not w.accessibleName()
        and w.isVisibleTo(app.window)
    ]
    assert unnamed == []
    toolbar_buttons = [
        w for w in app.window.toolbar.findChildren(QToolButton) if w.defaultAction() is not None
    ]
    assert all(b.defaultAction().text() for b in toolbar_buttons)


def test_watch_packets_of_a_device(
    qtbot: Any, app: App, clean_netns: Netns, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    from tests.support.traffic import Reader, udp
    from tungui.gui.capture.window import PacketWindow

    name = create(mode="tun", name="watch%d", persist=True, addresses=["192.0.2.1/24"], up=True)
    qtbot.waitUntil(lambda: name in names(app), timeout=TIMEOUT)
    reader = Reader(clean_netns, name)
    try:
        app.window.select(name)
        app.window.action(Act.WATCH).trigger()
        qtbot.waitUntil(lambda: bool(app.window.findChildren(PacketWindow)), timeout=TIMEOUT)
        (packets,) = app.window.findChildren(PacketWindow)
        subprocess.run(["ip", "netns", "exec", clean_netns.name, *udp(3)], check=True)
        qtbot.waitUntil(lambda: packets.model.rowCount() >= 3, timeout=TIMEOUT)
        summary = packets.model.index(0, 5).data()
        assert summary.startswith("UDP 192.0.2.1:") and "→ 192.0.2.2:9" in summary
        assert packets.model.index(0, 2).data() == "sent"
        # Saved as pcapng, read back by tshark (a tool nobody here wrote).
        if shutil.which("tshark"):
            path = tmp_path / "watch.pcapng"
            saved = packets.save(str(path))
            # The IP protocol number: newer tshark calls port 9 "DISCARD".
            rows = tshark_fields(path, "ip.proto", "ip.dst", "udp.dstport")
            assert len(rows) == saved >= 3
            assert rows[0] == ["17", "192.0.2.2", "9"]
        # The pane below the list plots the watched device's rates.
        qtbot.waitUntil(
            lambda: app.window.graph is not None and app.window.graph.point_count() >= 2,
            timeout=TIMEOUT,
        )
        assert app.window.graph is not None and app.window.graph.device() == name
        packets.close()
    finally:
        reader.close()


def test_send_a_packet_into_a_device(qtbot: Any, app: App, clean_netns: Netns) -> None:
    name = create(mode="tun", name="send%d", persist=True, addresses=["192.0.2.1/24"], up=True)

    def listed_with_address() -> bool:
        # The device may be listed before its address is: the dialog fills
        # its addresses from what the window knows.
        return any(d.name == name and "192.0.2.1/24" in d.addresses for d in app.model.devices())

    qtbot.waitUntil(listed_with_address, timeout=TIMEOUT)
    app.window.select(name)
    dialog = app.controller.send_to_selected()
    assert dialog is not None
    qtbot.waitExposed(dialog)
    send = find(dialog, QPushButton, "Send")
    assert send.isEnabled(), dialog.checked().problems
    qtbot.mouseClick(send, Qt.MouseButton.LeftButton)

    def received() -> int:
        (link,) = clean_netns.ip_json("-s", "link", "show", "dev", name)
        return int(link["stats64"]["rx"]["packets"])

    # The default is an ICMP echo request to the device's own address: the
    # kernel counts it as received by the device.
    qtbot.waitUntil(lambda: received() == 1, timeout=TIMEOUT)
