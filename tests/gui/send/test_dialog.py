"""The Send packet… dialog, driven as a person would."""

from __future__ import annotations

from typing import Any

import dpkt
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QWidget
from pytestqt.qtbot import QtBot

from tests.support.devicedicts import send_tap
from tests.support.devicedicts import send_tun as tun
from tungui.gui.send.dialog import SendDialog
from tungui.packets.build import arp_request
from tungui_contract.device import Device


def tap(**changes: Any) -> Device:
    return send_tap(**({"addresses": ["192.0.2.1/24"]} | changes))


def make(qtbot: QtBot, device: Device) -> SendDialog:
    dialog = SendDialog(device)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def visible(dialog: SendDialog, kind: type[QWidget], name: str) -> Any:
    """The one visible widget of ``kind`` with accessible name ``name``."""
    found = [w for w in dialog.findChildren(kind) if w.accessibleName() == name and w.isVisible()]
    assert len(found) == 1, f"{len(found)} visible {kind.__name__} named {name!r}"
    return found[0]


def send_button(dialog: SendDialog) -> Any:
    return next(b for b in dialog.findChildren(QWidget) if b.accessibleName() == "Send")


def problem(dialog: SendDialog) -> str:
    return str(visible(dialog, QLabel, "Problem").text())


def choose(qtbot: QtBot, dialog: SendDialog, text: str) -> None:
    combo = visible(dialog, QComboBox, "Template")
    combo.setCurrentIndex(combo.findText(text))


def retype(qtbot: QtBot, edit: QLineEdit | QPlainTextEdit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def test_title_and_accessible_names(qtbot: QtBot) -> None:
    dialog = make(qtbot, tap())
    assert dialog.windowTitle() == "Send a Packet into tap0"
    for widget in dialog.findChildren(QWidget):
        if widget.isVisible() and widget.focusPolicy() != Qt.FocusPolicy.NoFocus:
            if widget.parent() is not None and isinstance(widget.parent(), QComboBox):
                continue  # the combo's own popup parts
            assert widget.accessibleName(), f"{type(widget).__name__} has no accessible name"


def test_default_icmp_on_tun(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun())
    assert dialog.template() == "icmp"
    packet = dialog.packet()
    assert packet is not None and send_button(dialog).isEnabled()
    ip = dpkt.ip.IP(packet)
    assert ip.src == bytes([192, 0, 2, 2]) and ip.dst == bytes([192, 0, 2, 1])
    assert ip.data.type == dpkt.icmp.ICMP_ECHO
    assert (ip.data.data.id, ip.data.data.seq) == (0x7475, 1)
    summary = visible(dialog, QLineEdit, "Packet summary").text()
    assert summary == "28 bytes · ICMP echo request 192.0.2.2 → 192.0.2.1 id=29813 seq=1"


def test_arp_is_tap_only(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun())
    combo = visible(dialog, QComboBox, "Template")
    assert combo.findText("ARP request (TAP only)") == 1
    dialog.set_template("arp")
    assert not send_button(dialog).isEnabled()
    assert "not ARP" in problem(dialog)


def test_arp_on_tap(qtbot: QtBot) -> None:
    dialog = make(qtbot, tap())
    choose(qtbot, dialog, "ARP request")
    eth = dpkt.ethernet.Ethernet(dialog.packet())
    assert eth.dst == b"\xff" * 6
    assert eth.data.op == dpkt.arp.ARP_OP_REQUEST
    assert eth.data.tpa == bytes([192, 0, 2, 1]) and eth.data.spa == bytes([192, 0, 2, 2])
    assert visible(dialog, QLineEdit, "Destination MAC").text() == "ff:ff:ff:ff:ff:ff"
    summary = visible(dialog, QLineEdit, "Packet summary").text()
    assert "ARP who-has 192.0.2.1 tell 192.0.2.2" in summary


def test_bad_hex_disables_send_with_the_reason(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun())
    choose(qtbot, dialog, "Hex")
    edit = visible(dialog, QPlainTextEdit, "Packet bytes in hex")
    qtbot.keyClicks(edit, "45 00 zz")
    button = send_button(dialog)
    assert not button.isEnabled()
    assert problem(dialog) == "'zz' is not hexadecimal."
    assert button.toolTip() == "'zz' is not hexadecimal."
    assert dialog.packet() is None
    retype(qtbot, edit, "45 00 00 1c 00 00 00 00 40 01 00 00 c0 00 02 02 c0 00 02 01")
    assert button.isEnabled()
    assert dialog.packet() == bytes.fromhex("4500001c000000004001 0000c0000202c0000201")
    assert not visible_problem(dialog)


def visible_problem(dialog: SendDialog) -> bool:
    label = next(w for w in dialog.findChildren(QLabel) if w.accessibleName() == "Problem")
    return bool(label.isVisible())


def test_too_long_payload_is_refused(qtbot: QtBot) -> None:
    dialog = make(qtbot, tap())
    choose(qtbot, dialog, "UDP datagram")
    payload = visible(dialog, QLineEdit, "Payload")
    payload.setText("x" * 1488)
    assert not send_button(dialog).isEnabled()
    assert problem(dialog) == "The packet is 1530 bytes; tap0 takes at most 1518 (MTU 1500)."
    payload.setText("x" * 1476)
    assert send_button(dialog).isEnabled()
    assert len(dialog.packet() or b"") == 1518


def test_field_problem_shows_and_clears(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun())
    choose(qtbot, dialog, "UDP datagram")
    port = visible(dialog, QLineEdit, "Destination port")
    retype(qtbot, port, "99999")
    assert problem(dialog) == "The destination port '99999' is not a number from 0 to 65535."
    assert not send_button(dialog).isEnabled()
    retype(qtbot, port, "53")
    assert dpkt.ip.IP(dialog.packet()).data.dport == 53


def test_tun_with_pi_gets_the_header(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun(pi=True))
    packet = dialog.packet()
    assert packet is not None and packet[:4] == b"\x00\x00\x08\x00"
    assert dpkt.ip.IP(packet[4:]).data.type == dpkt.icmp.ICMP_ECHO
    assert visible(dialog, QLineEdit, "Packet summary").text().startswith("32 bytes · ICMP")


def test_hex_is_the_frame_and_the_dialog_writes_the_headers(qtbot: QtBot) -> None:
    dialog = make(qtbot, tap(pi=True, vnet_hdr=True))
    choose(qtbot, dialog, "Hex")
    hints = [w.text() for w in dialog.findChildren(QLabel) if w.isVisible()]
    assert (
        "An Ethernet frame, from the destination MAC on. Do not type the 4-byte packet "
        "information or the 10-byte virtio-net header of tap0: Send writes them before the "
        "bytes, as the preview shows."
    ) in hints
    arp = arp_request("02:54:00:12:34:56", "192.0.2.2", "192.0.2.1")
    retype(qtbot, visible(dialog, QPlainTextEdit, "Packet bytes in hex"), arp.hex(" "))
    assert dialog.packet() == b"\x00\x00\x08\x06" + bytes(10) + arp
    summary = visible(dialog, QLineEdit, "Packet summary").text()
    assert summary.startswith("56 bytes · ARP"), summary


def test_a_virtio_net_header_goes_before_every_template(qtbot: QtBot) -> None:
    dialog = make(qtbot, tun(vnet_hdr=True))
    packet = dialog.packet()
    assert packet is not None and packet[:10] == bytes(10)
    assert dpkt.ip.IP(packet[10:]).data.type == dpkt.icmp.ICMP_ECHO
    summary = visible(dialog, QLineEdit, "Packet summary").text()
    assert summary.startswith("38 bytes · ICMP echo request 192.0.2.2 → 192.0.2.1"), summary


def test_payload_as_hex(qtbot: QtBot) -> None:
    dialog = make(qtbot, tap())
    payload = visible(dialog, QLineEdit, "Payload")
    qtbot.keyClicks(payload, "68 69")
    box = visible(dialog, QCheckBox, "Payload in hex")
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert box.isChecked()
    eth = dpkt.ethernet.Ethernet(dialog.packet())
    assert eth.data.data.data.data == b"hi"


def test_mnemonics_are_unique_per_template(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QAbstractButton

    dialog = make(qtbot, tap())
    for template in ("hex", "arp", "icmp", "udp"):
        dialog.set_template(template)
        texts = [
            w.text()
            for w in dialog.findChildren(QWidget)
            if isinstance(w, QLabel | QAbstractButton) and w.isVisible() and "&" in w.text()
        ]
        keys = [text[text.index("&") + 1].lower() for text in texts]
        assert len(keys) == len(set(keys)), f"{template}: {texts}"
