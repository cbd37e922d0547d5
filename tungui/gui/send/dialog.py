"""The Send packet… dialog: a view over :mod:`tungui.packets.sendform`.

The dialog only reads its widgets into a :class:`~tungui.packets.sendform.SendForm`
and shows what :func:`~tungui.packets.sendform.check` says about it, on every
change: a preview of the packet (length, one-line summary, bytes) while it
is good; otherwise the Send button is disabled, the first problem is shown
under the form and each field with a problem carries a warning icon.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtGui import QAction, QFontDatabase, QIcon, QPalette, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tungui.gui import formstyle
from tungui.gui.hexview import HexView
from tungui.packets import sendform as model
from tungui.packets.build import BROADCAST_MAC
from tungui.packets.decode import summary
from tungui.packets.sendform import Checked, SendForm, Template
from tungui_contract.device import Device
from tungui_contract.limits import PI_HEADER, VNET_HEADER

_TEMPLATE_TEXT: dict[Template, str] = {
    "hex": "Hex",
    "arp": "ARP request",
    "icmp": "ICMP echo request",
    "udp": "UDP datagram",
}

_HEX_HINT = {
    "ethernet": "An Ethernet frame, from the destination MAC on.",
    "ip": "An IPv4 or IPv6 packet, from its first header byte on.",
}


def _hex_hint(device: Device, link: model.Link) -> str:
    """What to type as hex: the frame alone, and which headers the dialog writes before it."""
    framing = model.framing(device)
    headers = [
        text
        for text, on in (
            (f"the {PI_HEADER}-byte packet information", framing.pi),
            (f"the {VNET_HEADER}-byte virtio-net header", framing.vnet_hdr),
        )
        if on
    ]
    if not headers:
        return _HEX_HINT[link]
    return (
        f"{_HEX_HINT[link]} Do not type {' or '.join(headers)} of "
        f"{device.name or 'the device'}: Send writes {'them' if len(headers) > 1 else 'it'} "
        "before the bytes, as the preview shows."
    )


class SendDialog(QDialog):
    """Build one packet to inject into a TUN or TAP device.

    Args:
        device: a device dict as ListDevices reports it (name, kind or mode,
            mtu, mac, pi, addresses).
        parent: the window the dialog belongs to.
    """

    def __init__(self, device: Device, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._device = device
        self._tap = model.device_mode(device) == "tap"
        self._link = model.link_type(device)
        self._checked = Checked(None)
        #: Per template: SendForm field name -> the widget that edits it.
        self._fields: dict[Template, dict[str, QLineEdit | QPlainTextEdit | QCheckBox]] = {}
        #: Per template: SendForm field name -> its warning cue.
        self._cues: dict[Template, dict[str, QAction]] = {}
        self._form_layouts: list[QFormLayout] = []
        self.setWindowTitle(f"Send a Packet into {device.name}")

        self._build()
        self._sync_label_widths()
        self._apply_palettes()
        self._connect()
        self._recheck()
        # An explicit minimum width turns off the layout's own, which keeps
        # the preview's 16-byte rows whole: take the larger of the two.
        self.setMinimumWidth(
            max(self.fontMetrics().averageCharWidth() * 80, self._layout.minimumSize().width())
        )
        self._template.setFocus()

    # -- public ---------------------------------------------------------

    def template(self) -> Template:
        """The template chosen."""
        return model.TEMPLATES[self._template.currentIndex()]

    def set_template(self, template: Template) -> None:
        """Choose a template, as the Template picker does."""
        self._template.setCurrentIndex(model.TEMPLATES.index(template))

    def form(self) -> SendForm:
        """The dialog's contents, as a form (the fields of the chosen template)."""
        template = self.template()
        values: dict[str, Any] = {}
        for key, widget in self._fields[template].items():
            if isinstance(widget, QCheckBox):
                values[key] = widget.isChecked()
            elif isinstance(widget, QPlainTextEdit):
                values[key] = widget.toPlainText()
            else:
                values[key] = widget.text()
        return SendForm(template=template, **values)

    def checked(self) -> Checked:
        """The outcome of the latest check of the dialog's contents."""
        return self._checked

    def packet(self) -> bytes | None:
        """The bytes to inject, or None while the form has problems."""
        return self._checked.packet

    # -- building -------------------------------------------------------

    def _build(self) -> None:
        self._template = QComboBox()
        self._template.setAccessibleName("Template")
        for template in model.TEMPLATES:
            self._template.addItem(_TEMPLATE_TEXT[template])
        if not self._tap:
            arp = model.TEMPLATES.index("arp")
            self._template.setItemText(arp, "ARP request (TAP only)")
            combo_model = self._template.model()
            if isinstance(combo_model, QStandardItemModel):
                item = combo_model.item(arp)
                item.setEnabled(False)
                item.setToolTip("A TUN device carries IP packets, not Ethernet frames.")
        self._template.setCurrentIndex(model.TEMPLATES.index("icmp"))
        top = QFormLayout()
        top.addRow("&Template:", self._template)
        self._form_layouts.append(top)

        self._pages = QStackedWidget()
        for template in model.TEMPLATES:
            self._pages.addWidget(self._build_page(template))
        self._show_page(self._template.currentIndex())

        preview_box = self._build_preview()
        self._build_footer()
        layout = self._layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self._pages)
        layout.addWidget(preview_box, 1)
        layout.addWidget(self._problem_row)
        layout.addWidget(self._buttons)

    def _build_page(self, template: Template) -> QWidget:
        """The fields of one template, filled with defaults that make the host answer."""
        start = SendForm.defaults(self._device, template)
        self._fields[template] = {}
        self._cues[template] = {}
        box = QGroupBox("Fields")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._form_layouts.append(form)

        def edit(key: str, label: str, name: str, placeholder: str, tip: str) -> QLineEdit:
            line = QLineEdit(str(getattr(start, key)))
            line.setAccessibleName(name)
            line.setPlaceholderText(placeholder)
            line.setToolTip(tip)
            self._add_cue(template, key, line)
            self._fields[template][key] = line
            form.addRow(label, line)
            return line

        if template == "hex":
            text = QPlainTextEdit()
            text.setAccessibleName("Packet bytes in hex")
            text.setPlaceholderText("45 00 00 1c …")
            text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            text.setTabChangesFocus(True)
            text.setToolTip("Hex digits; spaces, new lines and colons between them are ignored.")
            text.setFixedHeight(text.fontMetrics().lineSpacing() * 5 + 2 * (text.frameWidth() + 4))
            self._fields[template]["hex"] = text
            hint = QLabel(_hex_hint(self._device, self._link))
            hint.setWordWrap(True)
            hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            form.addRow("&Bytes:", text)
            form.addRow("", hint)
            return box

        ip_tip = "An IPv4 or IPv6 address; source and destination of one family."
        if template == "arp":
            edit("src_mac", "Sender &MAC:", "Sender MAC", "02:00:5e:10:00:01", "The asker.")
            edit("src_ip", "Sender &address:", "Sender address", "192.0.2.2", "An IPv4 address.")
            edit(
                "dst_ip",
                "Tar&get address:",
                "Target address",
                "192.0.2.1",
                "The IPv4 address asked for; the device's own, for the host to answer.",
            )
            edit(
                "dst_mac",
                "Desti&nation MAC:",
                "Destination MAC",
                BROADCAST_MAC,
                "Where the frame goes: broadcast, as a real ARP request.",
            )
            return box

        edit("src_ip", "Source &address:", "Source address", "192.0.2.2", ip_tip)
        if template == "udp":
            edit("src_port", "Source &port:", "Source port", "40000", "0 to 65535.")
        edit(
            "dst_ip",
            "&Destination address:",
            "Destination address",
            "192.0.2.1",
            "The device's own address, for the host to answer.",
        )
        if template == "udp":
            edit(
                "dst_port",
                "Destination p&ort:",
                "Destination port",
                "9",
                "0 to 65535; 9 is the discard service.",
            )
        else:
            edit("ident", "&Identifier:", "Identifier", "0x7475", "0 to 65535, or hex as 0x….")
            edit("seq", "Se&quence:", "Sequence number", "1", "0 to 65535, or hex as 0x….")
        if self._tap:
            edit("src_mac", "Source &MAC:", "Source MAC", "02:00:5e:10:00:01", "The sender.")
            edit(
                "dst_mac",
                "Desti&nation MAC:",
                "Destination MAC",
                self._device.mac,
                "The device's own MAC, for the host to take the frame.",
            )
        payload = QLineEdit(start.payload)
        payload.setAccessibleName("Payload")
        payload.setPlaceholderText("Empty")
        payload.setToolTip("Text, sent as UTF-8; or hex digits with Hex checked.")
        self._add_cue(template, "payload", payload)
        as_hex = QCheckBox("He&x")
        as_hex.setAccessibleName("Payload in hex")
        as_hex.setToolTip("Read the payload as hex digits rather than text.")
        self._fields[template]["payload"] = payload
        self._fields[template]["payload_is_hex"] = as_hex
        row = QHBoxLayout()
        row.addWidget(payload, 1)
        row.addWidget(as_hex)
        label = QLabel("Pa&yload:")
        label.setBuddy(payload)
        form.addRow(label, row)
        return box

    def _build_preview(self) -> QGroupBox:
        self._summary = QLineEdit()
        self._summary.setAccessibleName("Packet summary")
        self._summary.setReadOnly(True)
        self._summary.setFrame(False)
        self._hex = HexView()
        self._hex.setAccessibleName("Packet bytes")
        self._hex.setMinimumHeight(self._hex.fontMetrics().lineSpacing() * 5)
        # A whole row of 16 bytes without scrolling sideways.
        self._hex.setMinimumWidth(self._hex.sizeHint().width())
        box = QGroupBox("Preview")
        layout = QVBoxLayout(box)
        layout.addWidget(self._summary)
        layout.addWidget(self._hex, 1)
        return box

    def _build_footer(self) -> None:
        """The first problem, if any, and the buttons."""
        self._problem_row, _icon, self._problem = formstyle.problem_row(self)

        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._send = self._buttons.button(QDialogButtonBox.StandardButton.Ok)
        self._send.setText("&Send")
        self._send.setAccessibleName("Send")
        cancel = self._buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")

    def _connect(self) -> None:
        self._template.currentIndexChanged.connect(self._show_page)
        self._template.currentIndexChanged.connect(self._recheck)
        for fields in self._fields.values():
            for widget in fields.values():
                if isinstance(widget, QCheckBox):
                    widget.toggled.connect(self._recheck)
                else:
                    widget.textChanged.connect(self._recheck)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)

    def _show_page(self, index: int) -> None:
        """Show one template's fields; the stack takes the height of that page only."""
        # A QStackedWidget is as tall as its tallest page; hidden pages that
        # ignore their size let the short Hex page leave room to the preview.
        for page in range(self._pages.count()):
            widget = self._pages.widget(page)
            if widget is None:
                continue
            policy = QSizePolicy.Policy.Preferred if page == index else QSizePolicy.Policy.Ignored
            widget.setSizePolicy(policy, policy)
        self._pages.setCurrentIndex(index)
        self._pages.adjustSize()

    def _add_cue(self, template: Template, key: str, edit: QLineEdit) -> None:
        """Give a line edit the warning icon shown while its field has a problem."""
        action = edit.addAction(self._warning_icon(), QLineEdit.ActionPosition.TrailingPosition)
        action.setVisible(False)
        self._cues[template][key] = action

    def _sync_label_widths(self) -> None:
        formstyle.align_form_labels(self._form_layouts)

    # -- checking -------------------------------------------------------

    def _recheck(self) -> None:
        self._checked = model.check(self.form(), self._device)
        packet, problems = self._checked.packet, self._checked.problems
        self._send.setEnabled(packet is not None)
        self._send.setToolTip("\n".join(problems))
        self._problem.setText(problems[0] if problems else "")
        self._problem_row.setVisible(bool(problems))
        for key, cue in self._cues[self.template()].items():
            problem = self._checked.by_field.get(key, "")
            cue.setVisible(bool(problem))
            cue.setToolTip(problem)
        if packet is None:
            self._summary.setText("")
            self._summary.setPlaceholderText("No packet yet: see the problem below.")
            self._hex.set_data(b"")
        else:
            frame = packet[model.framing(self._device).headers :]
            text = f"{len(packet)} bytes · {summary(frame, link=self._link)}"
            self._summary.setText(text)
            self._summary.setCursorPosition(0)
            self._hex.set_data(packet)

    # -- looks ----------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        """Follow a change of colour scheme."""
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palettes()
        super().changeEvent(event)

    def _apply_palettes(self) -> None:
        """Derive the few colours of our own from the theme's palette."""
        palette = self.palette()
        self._problem.setPalette(formstyle.problem_palette(palette))
        self._summary.setPalette(formstyle.read_only_palette(palette))

    def _warning_icon(self) -> QIcon:
        return formstyle.warning_icon(self)

    def _icon_size(self) -> int:
        return formstyle.small_icon_size(self)
