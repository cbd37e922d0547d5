"""The actions as data: the window's menus and toolbar are built from them, and
each action is enabled by its rule, not by hand (tungui.gui.actions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from tests.support.devicedicts import listed_tap
from tungui.gui import icons
from tungui.gui.actions import (
    ACTIONS,
    DEVICE_ACTIONS,
    MENUS,
    TOOLBAR,
    Act,
    Needs,
    State,
    enabled,
)
from tungui.gui.app import App
from tungui_contract.device import Device


@pytest.fixture
def app(qtbot: Any, tmp_path: Path) -> App:
    """The window with its controller, and no helper (the bus thread is not started)."""
    tungui = App(
        address="unix:path=/nonexistent",
        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(tungui.window)
    return tungui


def menu_actions(menu: QMenu) -> list[QAction]:
    return [a for a in menu.actions() if not a.isSeparator()]


def test_every_action_is_in_a_menu_and_the_toolbar_is_built_from_the_data(app: App) -> None:
    window = app.window
    menus = {m.title(): menu_actions(m) for m in window.menuBar().findChildren(QMenu)}
    for title, layout in MENUS:
        assert menus[title] == [window.action(act) for act in layout if act is not None]
    in_menus = {act for _, layout in MENUS for act in layout if act is not None}
    assert in_menus == {spec.act for spec in ACTIONS}
    toolbar = [a for a in window.toolbar.actions() if not a.isSeparator()]
    assert toolbar == [window.action(act) for act in TOOLBAR if act is not None]
    for spec in ACTIONS:
        action = window.action(spec.act)
        assert action.text() == spec.text
        assert action.toolTip() == spec.tip
        if spec.shortcut is not None:
            assert action.shortcut() == QKeySequence(spec.shortcut)


def test_every_action_and_the_window_have_an_icon(app: App) -> None:
    """The bundled fallbacks are found (the offscreen platform has no icon theme)."""
    for spec in ACTIONS:
        assert not icons.icon(spec.icon).isNull(), spec.icon
        assert not app.window.action(spec.act).icon().isNull(), spec.icon
    assert not icons.app_icon().isNull()


def tap(**values: Any) -> Device:
    return Device.from_wire(listed_tap(2, "tap0", **values))


@pytest.mark.parametrize(
    ("helper", "device", "usable"),
    [
        (False, None, {Act.FILTER, Act.QUIT}),
        (True, None, {Act.FILTER, Act.QUIT, Act.NEW_TUN, Act.NEW_TAP, Act.NEW_BRIDGE}),
        (False, tap(), {Act.FILTER, Act.QUIT, Act.COPY}),
        (True, tap(), {spec.act for spec in ACTIONS}),
        (True, tap(kind="bridge"), {spec.act for spec in ACTIONS} - {Act.SEND}),
    ],
)
def test_the_rules(helper: bool, device: Device | None, usable: set[Act]) -> None:
    state = State(helper=helper, device=device)
    assert {spec.act for spec in ACTIONS if enabled(spec, state)} == usable


def test_the_device_actions_need_a_device() -> None:
    by_act = {spec.act: spec for spec in ACTIONS}
    assert all(Needs.DEVICE in by_act[act].needs for act in DEVICE_ACTIONS if act is not None)


def test_enabled_state_follows_the_helper_and_the_selection(app: App, qtbot: Any) -> None:
    window = app.window

    def usable() -> set[Act]:
        return {spec.act for spec in ACTIONS if window.action(spec.act).isEnabled()}

    # Connecting: nothing that needs the helper.
    assert usable() == {Act.FILTER, Act.QUIT}
    app.helper.availabilityChanged.emit(True, "")
    assert usable() == {Act.FILTER, Act.QUIT, Act.NEW_TUN, Act.NEW_TAP, Act.NEW_BRIDGE}
    app.model.reset([tap(), Device.from_wire(listed_tap(3, "br0", kind="bridge"))])
    window.select("tap0")
    assert usable() == {spec.act for spec in ACTIONS}
    window.select("br0")
    assert Act.SEND not in usable() and Act.PROPERTIES in usable()
    # The helper goes away: only what needs no helper is left.
    app.helper.availabilityChanged.emit(False, "The tungui helper stopped.")
    assert usable() == {Act.FILTER, Act.QUIT, Act.COPY}
    window.table.clearSelection()
    assert usable() == {Act.FILTER, Act.QUIT}
