"""The New TUN…/New TAP…/Properties… dialog, driven as a person would."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)
from pytestqt.qtbot import QtBot

from tests.support.devicedicts import NOBODY, lab_device
from tungui.gui.devices.dialog import DeviceDialog
from tungui_contract.checks import check_mac

W = TypeVar("W", bound=QWidget)

DEVICE = lab_device()


def field(dialog: DeviceDialog, kind: type[W], name: str) -> W:
    """The one widget of a kind with that accessible name."""
    found = [w for w in dialog.findChildren(kind) if w.accessibleName() == name]
    assert len(found) == 1, f"{len(found)} {kind.__name__} named {name!r}"
    return found[0]


def ok_button(dialog: DeviceDialog) -> QPushButton:
    box = dialog.findChild(QDialogButtonBox)
    assert box is not None
    return box.button(QDialogButtonBox.StandardButton.Ok)


def shown(qtbot: QtBot, dialog: DeviceDialog) -> DeviceDialog:
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def type_into(qtbot: QtBot, widget: QWidget, text: str) -> None:
    """Type text key by key (pytest-qt's QtBot methods carry no annotations)."""
    qtbot.keyClicks(widget, text)


def press(qtbot: QtBot, widget: QWidget, key: Qt.Key) -> None:
    qtbot.keyClick(widget, key)


def retype(qtbot: QtBot, edit: QLineEdit | QPlainTextEdit | None, text: str) -> None:
    """Replace what an edit holds by typing."""
    assert edit is not None
    edit.selectAll()
    press(qtbot, edit, Qt.Key.Key_Delete)
    type_into(qtbot, edit, text)


def click(qtbot: QtBot, button: QWidget) -> None:
    """Click a button; a check box or radio button on its indicator, as a person would."""
    if isinstance(button, QCheckBox | QRadioButton):
        pos = QPoint(button.height() // 2, button.height() // 2)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=pos)
    else:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_a_new_tap_device_yields_exactly_what_was_typed(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap", bridges=["br-lab", "virbr0"]))
    assert dialog.windowTitle() == "New TAP Device"
    assert ok_button(dialog).text() == "Create"

    type_into(qtbot, field(dialog, QLineEdit, "Name"), "tap-lab%d")
    owner = field(dialog, QComboBox, "Owner")
    retype(qtbot, owner.lineEdit(), "nobody")
    retype(qtbot, field(dialog, QComboBox, "Group").lineEdit(), "4321")
    click(qtbot, field(dialog, QRadioButton, "Only while tungui runs"))
    click(qtbot, field(dialog, QCheckBox, "Packet information header"))
    type_into(qtbot, field(dialog, QLineEdit, "MTU"), "1400")
    type_into(qtbot, field(dialog, QLineEdit, "MAC address"), "02:00:5E:10:00:01")
    field(dialog, QComboBox, "Bridge").setCurrentText("br-lab")
    type_into(qtbot, field(dialog, QPlainTextEdit, "Addresses"), "192.0.2.1/24")
    press(qtbot, field(dialog, QPlainTextEdit, "Addresses"), Qt.Key.Key_Return)
    type_into(qtbot, field(dialog, QPlainTextEdit, "Addresses"), "2001:DB8::1/64")
    click(qtbot, field(dialog, QCheckBox, "Bring the device up"))

    assert dialog.checked().problems == []
    assert ok_button(dialog).isEnabled()
    assert dialog.spec() == {
        "mode": "tap",
        "name": "tap-lab%d",
        "persist": False,
        "owner": NOBODY,
        "group": 4321,
        "pi": True,
        "vnet_hdr": False,
        "multi_queue": False,
        "mtu": 1400,
        "mac": "02:00:5e:10:00:01",
        "master": "br-lab",
        "addresses": ["192.0.2.1/24", "2001:DB8::1/64"],  # as typed, once checked
        "up": True,
    }
    with qtbot.waitSignal(dialog.accepted):
        click(qtbot, ok_button(dialog))


def test_a_name_too_long_blocks_create_and_says_why(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap"))
    name = field(dialog, QLineEdit, "Name")
    type_into(qtbot, name, "tap-0123456789a")  # 15 bytes: fine
    assert ok_button(dialog).isEnabled()
    assert not any(action.isVisible() for action in name.actions())

    type_into(qtbot, name, "b")  # 16 bytes
    assert not ok_button(dialog).isEnabled()
    assert dialog.spec() is None
    assert "16 bytes long" in ok_button(dialog).toolTip()
    shown_problems = [
        label for label in dialog.findChildren(QLabel) if "16 bytes long" in label.text()
    ]
    assert len(shown_problems) == 1
    assert shown_problems[0].isVisible()
    assert any(action.isVisible() for action in name.actions()), "the field is marked"

    press(qtbot, name, Qt.Key.Key_Backspace)
    assert ok_button(dialog).isEnabled()
    assert ok_button(dialog).toolTip() == ""
    assert not shown_problems[0].isVisible()
    spec = dialog.spec()
    assert spec is not None
    assert spec["name"] == "tap-0123456789a"


def test_the_random_button_fills_a_locally_administered_mac(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap"))
    mac = field(dialog, QLineEdit, "MAC address")
    click(qtbot, field(dialog, QPushButton, "Random MAC address"))
    first = int(mac.text()[:2], 16)
    assert check_mac(mac.text()) == mac.text()
    assert first & 0b10, "locally administered"
    assert not first & 0b01, "unicast"
    spec = dialog.spec()
    assert spec is not None
    assert spec["mac"] == mac.text()


def test_a_tun_device_has_no_mac_and_no_bridge(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tun", bridges=["br-lab"]))
    assert dialog.windowTitle() == "New TUN Device"
    assert not field(dialog, QLineEdit, "MAC address").isVisible()
    assert not field(dialog, QPushButton, "Random MAC address").isVisible()
    assert not field(dialog, QComboBox, "Bridge").isVisible()
    assert field(dialog, QLineEdit, "MTU").isVisible()
    spec = dialog.spec()
    assert spec is not None
    assert spec["mode"] == "tun"
    assert "mac" not in spec
    assert "master" not in spec


def test_a_new_device_is_handed_to_the_current_user_and_named_first(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap"))
    spec = dialog.spec()
    assert spec is not None
    assert spec["owner"] == os.getuid()
    assert field(dialog, QComboBox, "Group").currentText() == "(none)"
    assert spec["group"] == -1
    assert spec["persist"] is True
    assert dialog.focusWidget() is field(dialog, QLineEdit, "Name")


def test_properties_return_only_what_changed(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap", device=DEVICE, bridges=["virbr0"]))
    assert dialog.windowTitle() == "Properties of tap-lab0"
    assert ok_button(dialog).text() == "Apply"
    assert dialog.spec() == {}

    name = field(dialog, QLineEdit, "Name")
    assert name.text() == "tap-lab0"
    assert name.isReadOnly()
    for flag in ("Packet information header", "virtio-net header (vnet_hdr)", "Multi-queue"):
        assert not field(dialog, QCheckBox, flag).isEnabled()
    assert field(dialog, QCheckBox, "virtio-net header (vnet_hdr)").isChecked()
    assert field(dialog, QComboBox, "Owner").currentText() == "nobody"
    assert field(dialog, QComboBox, "Bridge").currentText() == "br-lab"

    retype(qtbot, field(dialog, QLineEdit, "MTU"), "9000")
    field(dialog, QComboBox, "Bridge").setCurrentText("(none)")
    addresses = field(dialog, QPlainTextEdit, "Addresses")
    addresses.setPlainText("2001:db8::1/64\n192.0.2.1/24")  # the same, reordered
    assert dialog.spec() == {"mtu": 9000, "master": ""}

    retype(qtbot, field(dialog, QComboBox, "Owner").lineEdit(), "")
    assert dialog.spec() is None
    assert "cannot clear" in ok_button(dialog).toolTip()


def test_a_device_another_program_holds_keeps_its_owner(qtbot: QtBot) -> None:
    held = dataclasses.replace(DEVICE, held=True)
    dialog = shown(qtbot, DeviceDialog("tap", device=held))
    assert not field(dialog, QComboBox, "Owner").isEnabled()
    assert "another program" in field(dialog, QComboBox, "Owner").toolTip()
    assert not field(dialog, QRadioButton, "Keep after tungui quits").isEnabled()
    assert field(dialog, QLineEdit, "MTU").isEnabled()


INPUTS = (QLineEdit, QComboBox, QCheckBox, QSpinBox, QRadioButton, QPlainTextEdit, QPushButton)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeviceDialog("tap", bridges=["br-lab"]),
        lambda: DeviceDialog("tun"),
        lambda: DeviceDialog("tap", device=DEVICE),
    ],
    ids=["new-tap", "new-tun", "properties"],
)
def test_every_input_has_an_accessible_name_and_labels_have_buddies(
    qtbot: QtBot, make: Any
) -> None:
    dialog = shown(qtbot, make())
    inputs = [w for w in dialog.findChildren(QWidget) if isinstance(w, INPUTS)]
    assert len(inputs) > 15
    unnamed = [type(w).__name__ for w in inputs if not w.accessibleName()]
    assert unnamed == []
    for label in dialog.findChildren(QLabel):
        if "&" in label.text():
            assert label.buddy() is not None, label.text()


def test_keyboard_mnemonics_are_unique(qtbot: QtBot) -> None:
    dialog = shown(qtbot, DeviceDialog("tap"))
    texts = [w.text() for w in dialog.findChildren(QLabel)]
    texts += [w.text() for w in dialog.findChildren(QAbstractButton)]
    texts += [w.title() for w in dialog.findChildren(QGroupBox)]
    keys = [text[text.index("&") + 1].lower() for text in texts if "&" in text]
    assert len(keys) >= 12
    assert sorted(keys) == sorted(set(keys))
