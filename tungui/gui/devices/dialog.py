"""The dialog for New TUN…, New TAP… and Properties…: a view over :mod:`.dialogform`.

The dialog only reads its widgets into a :class:`~tungui.gui.devices.dialogform.DeviceForm`
and shows what :func:`~tungui.gui.devices.dialogform.check_new` or
:func:`~tungui.gui.devices.dialogform.check_changes` say about it, on every change: the OK
button is disabled while there is a problem, the first one is shown under
the form, and each field with a problem carries a warning icon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QIcon, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tungui.gui import formstyle
from tungui_contract.device import Device

from . import dialogform as model
from .dialogform import Checked, DeviceForm

#: What the Owner/Group pickers show for "nobody without privileges".
NONE_TEXT = "(none)"

_MODE_TEXT = {
    "tun": "TUN — carries IP packets (layer 3)",
    "tap": "TAP — carries Ethernet frames (layer 2)",
}


class DeviceDialog(QDialog):
    """Create a TUN or TAP device, or change an existing one.

    Args:
        mode: ``"tun"`` or ``"tap"``; ignored with ``device``, which has its own.
        parent: the window the dialog belongs to.
        device: a device dict as ListDevices reports it; makes this the
            Properties dialog of that device, whose result is a change set.
        bridges: names of the bridges a TAP device may join.

    Raises:
        ValueError: ``mode`` is not a mode, or ``device`` not a TUN/TAP device.
    """

    def __init__(
        self,
        mode: str,
        parent: QWidget | None = None,
        *,
        device: Device | None = None,
        bridges: Sequence[str] = (),
    ) -> None:
        super().__init__(parent)
        self._original = DeviceForm.from_device(device) if device is not None else None
        start = self._original or DeviceForm(mode=model.as_mode(mode))
        self._mode: model.Mode = start.mode
        self._cues: dict[str, QAction | QLabel] = {}
        self._read_only: list[QLineEdit] = []
        self._checked = Checked(None)
        if self._original is None:
            self.setWindowTitle(f"New {self._mode.upper()} Device")
        else:
            self.setWindowTitle(f"Properties of {start.name}")

        self._build(start, bridges)
        if device is not None:
            for key, reason in model.fixed_fields(device).items():
                self._fix(key, reason)
        self._sync_label_widths()
        self._apply_palettes()
        self._connect()
        self._recheck()
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 72)
        # The first field that can be edited: the name, or for Properties the owner.
        (self._name if self._original is None else self._owner).setFocus()

    # -- public ---------------------------------------------------------

    def form(self) -> DeviceForm:
        """The dialog's contents, as a form."""
        return DeviceForm(
            mode=self._mode,
            name=self._name.text(),
            owner=_account_text(self._owner),
            group=_account_text(self._group),
            persist=self._keep.isChecked(),
            pi=self._pi.isChecked(),
            vnet_hdr=self._vnet_hdr.isChecked(),
            multi_queue=self._multi_queue.isChecked(),
            mtu=self._mtu.text(),
            mac=self._mac.text() if self._mode == "tap" else "",
            addresses=self._addresses.toPlainText().splitlines(),
            up=self._up.isChecked(),
            master=self._bridge.currentData() if self._mode == "tap" else "",
        )

    def checked(self) -> Checked:
        """The outcome of the latest check of the dialog's contents."""
        return self._checked

    def spec(self) -> dict[str, Any] | None:
        """The CreateDevice spec, or for Properties the change set; None if invalid."""
        return self._checked.spec

    # -- building -------------------------------------------------------

    def _build(self, start: DeviceForm, bridges: Sequence[str]) -> None:
        device_box, device_form = self._build_device(start)
        access_box, access_form = self._build_access(start)
        link_box, link_form = self._build_link(start, bridges)
        addresses_box = self._build_addresses(start)
        self._build_footer()
        layout = QVBoxLayout(self)
        for box in (device_box, access_box, link_box, addresses_box):
            layout.addWidget(box)
        layout.addWidget(self._problem_row)
        layout.addWidget(self._buttons)
        self._form_layouts = (device_form, access_form, link_form)

    def _build_device(self, start: DeviceForm) -> tuple[QGroupBox, QFormLayout]:
        mode = start.mode
        self._type = QLabel(_MODE_TEXT[mode])
        self._name = self._line_edit("Name", start.name, f"{mode}%d (automatic)")
        self._name.setToolTip("Up to 15 characters; one %d is replaced by the first free number.")
        self._cue("name", self._name)
        self._pi = formstyle.check_box(
            "&Packet information header",
            start.pi,
            "Each packet starts with 4 bytes of flags and protocol. "
            "Leave it off unless the program that opens the device expects it.",
        )
        self._vnet_hdr = formstyle.check_box(
            "&virtio-net header (vnet_hdr)",
            start.vnet_hdr,
            "Each packet carries a virtio-net header, for QEMU's offloads.",
        )
        self._multi_queue = formstyle.check_box(
            "&Multi-queue",
            start.multi_queue,
            "Several programs or threads may each open a queue of the device.",
        )
        device_box, device_form = formstyle.group_box("Device")
        device_form.addRow("Type:", self._type)
        device_form.addRow("&Name:", self._name)
        device_form.addRow("Flags:", formstyle.stacked(self._pi, self._vnet_hdr, self._multi_queue))
        return device_box, device_form

    def _build_access(self, start: DeviceForm) -> tuple[QGroupBox, QFormLayout]:
        self._owner = self._account_combo("Owner", model.users(), start.owner)
        self._owner.setToolTip(
            "This user may open the device without privileges (QEMU, OpenVPN, …).\n"
            f"{NONE_TEXT}: only programs with privileges may."
        )
        self._group = self._account_combo("Group", model.groups(), start.group)
        self._group.setToolTip(
            "Members of this group may open the device without privileges.\n"
            "With an owner too, a program must be the owner and in the group."
        )
        self._keep = formstyle.radio(
            "&Keep after tungui quits",
            "The device stays until it is deleted, as with “ip tuntap add”.",
        )
        self._transient = formstyle.radio(
            "Only &while tungui runs",
            "tungui's helper holds the device open and removes it when tungui quits.\n"
            "Another program can open it too only if it is multi-queue.",
        )
        (self._keep if start.persist else self._transient).setChecked(True)
        lifetime = QButtonGroup(self)
        lifetime.addButton(self._keep)
        lifetime.addButton(self._transient)
        access_box, access_form = formstyle.group_box("Access")
        access_form.addRow("&Owner:", self._owner)
        access_form.addRow("&Group:", self._group)
        access_form.addRow("Lifetime:", formstyle.stacked(self._keep, self._transient))
        return access_box, access_form

    def _build_link(
        self, start: DeviceForm, bridges: Sequence[str]
    ) -> tuple[QGroupBox, QFormLayout]:
        self._mtu = self._line_edit("MTU", start.mtu, "Default")
        self._mtu.setToolTip("68 to 65535; empty for the default (the bridge's, on a bridge).")
        self._cue("mtu", self._mtu)
        self._mac = self._line_edit("MAC address", start.mac, "Automatic")
        self._mac.setToolTip("A unicast address such as 02:00:5e:10:00:01.")
        self._cue("mac", self._mac)
        self._random_mac = QPushButton("&Random")
        self._random_mac.setAccessibleName("Random MAC address")
        self._random_mac.setToolTip("Fill in a random locally administered address.")
        self._bridge = QComboBox()
        self._bridge.setAccessibleName("Bridge")
        self._bridge.addItem(NONE_TEXT, "")
        for bridge in sorted({*bridges, start.master} - {""}):
            self._bridge.addItem(bridge, bridge)
        self._bridge.setCurrentIndex(self._bridge.findData(start.master))
        self._up = formstyle.check_box(
            "Bring the device &up" if self._original is None else "Device is &up",
            start.up,
            "Administratively up: the kernel uses the device once a program opens it.",
        )
        link_box, link_form = formstyle.group_box("Link")
        link_form.addRow("M&TU:", self._mtu)
        mac_label = QLabel("M&AC address:")
        mac_label.setBuddy(self._mac)
        mac_row = QHBoxLayout()
        mac_row.addWidget(self._mac, 1)
        mac_row.addWidget(self._random_mac)
        link_form.addRow(mac_label, mac_row)
        link_form.addRow("&Bridge:", self._bridge)
        link_form.addRow("", self._up)
        link_form.setRowVisible(mac_row, start.mode == "tap")
        link_form.setRowVisible(self._bridge, start.mode == "tap")
        return link_box, link_form

    def _build_addresses(self, start: DeviceForm) -> QGroupBox:
        self._addresses = QPlainTextEdit("\n".join(start.addresses))
        self._addresses.setAccessibleName("Addresses")
        self._addresses.setPlaceholderText("192.0.2.1/24\n2001:db8::1/64")
        self._addresses.setTabChangesFocus(True)
        lines = self._addresses.fontMetrics().lineSpacing() * 4
        margins = 2 * (self._addresses.frameWidth() + 4)
        self._addresses.setFixedHeight(lines + margins)
        hint = QLabel("One address per line, in CIDR notation.")
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        addresses_cue = QLabel()
        addresses_cue.setPixmap(self._warning_icon().pixmap(self._icon_size()))
        addresses_cue.hide()
        self._cues["addresses"] = addresses_cue
        addresses_box = QGroupBox("A&ddresses")
        addresses_layout = QVBoxLayout(addresses_box)
        addresses_layout.addWidget(self._addresses)
        hint_row = QHBoxLayout()
        hint_row.addWidget(addresses_cue)
        hint_row.addWidget(hint, 1)
        addresses_layout.addLayout(hint_row)
        return addresses_box

    def _build_footer(self) -> None:
        """The first problem, if any, and the buttons."""
        self._problem_row, _icon, self._problem = formstyle.problem_row(self)

        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._ok = self._buttons.button(QDialogButtonBox.StandardButton.Ok)
        self._ok.setText("Create" if self._original is None else "Apply")
        self._ok.setAccessibleName(self._ok.text())
        cancel = self._buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")

    def _connect(self) -> None:
        for edit in (self._name, self._mtu, self._mac):
            edit.textChanged.connect(self._recheck)
        for combo in (self._owner, self._group):
            combo.editTextChanged.connect(self._recheck)
        self._bridge.currentIndexChanged.connect(self._recheck)
        for box in (self._pi, self._vnet_hdr, self._multi_queue, self._keep, self._up):
            box.toggled.connect(self._recheck)
        self._addresses.textChanged.connect(self._recheck)
        self._random_mac.clicked.connect(self._fill_random_mac)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)

    def _line_edit(self, name: str, text: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(text)
        edit.setAccessibleName(name)
        edit.setPlaceholderText(placeholder)
        edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance("x") * 28)
        return edit

    def _account_combo(self, name: str, names: list[str], current: str) -> QComboBox:
        combo = QComboBox()
        line_edit = QLineEdit()
        line_edit.setAccessibleName(name)
        combo.setLineEdit(line_edit)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(16)
        combo.addItem(NONE_TEXT)
        combo.setItemData(
            0, "Only programs with privileges may open the device.", Qt.ItemDataRole.ToolTipRole
        )
        combo.addItems(names)
        combo.setCurrentText(current or NONE_TEXT)
        combo.setAccessibleName(name)
        self._cue(name.lower(), line_edit)
        return combo

    def _cue(self, key: str, edit: QLineEdit) -> None:
        """Give a line edit the warning icon shown while its field has a problem."""
        action = edit.addAction(self._warning_icon(), QLineEdit.ActionPosition.TrailingPosition)
        action.setVisible(False)
        self._cues[key] = action

    def _fix(self, key: str, reason: str) -> None:
        """Show a field that cannot change on this device as read-only."""
        widgets: dict[str, Sequence[QWidget]] = {
            "name": (self._name,),
            "pi": (self._pi,),
            "vnet_hdr": (self._vnet_hdr,),
            "multi_queue": (self._multi_queue,),
            "owner": (self._owner,),
            "group": (self._group,),
            "persist": (self._keep, self._transient),
        }
        for widget in widgets.get(key, ()):
            if isinstance(widget, QLineEdit):
                # Read-only rather than disabled, so the name can be copied;
                # without frame and base colour it no longer looks editable.
                widget.setReadOnly(True)
                widget.setFrame(False)
                self._read_only.append(widget)
            else:
                widget.setEnabled(False)
            widget.setToolTip(reason)

    def _sync_label_widths(self) -> None:
        formstyle.align_form_labels(self._form_layouts)

    def _fill_random_mac(self) -> None:
        self._mac.setText(model.random_mac())

    # -- checking -------------------------------------------------------

    def _recheck(self) -> None:
        current = self.form()
        if self._original is None:
            self._checked = model.check_new(current)
        else:
            self._checked = model.check_changes(self._original, current)
        problems = self._checked.problems
        self._ok.setEnabled(self._checked.ok)
        self._ok.setToolTip("\n".join(problems))
        self._problem.setText(problems[0] if problems else "")
        self._problem_row.setVisible(bool(problems))
        for key, cue in self._cues.items():
            problem = self._checked.by_field.get(key, "")
            cue.setVisible(bool(problem))
            cue.setToolTip(problem)

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
        read_only = formstyle.read_only_palette(palette)
        for edit in self._read_only:
            edit.setPalette(read_only)

    def _warning_icon(self) -> QIcon:
        return formstyle.warning_icon(self)

    def _icon_size(self) -> int:
        return formstyle.small_icon_size(self)


def _account_text(combo: QComboBox) -> str:
    text = combo.currentText()
    return "" if text == NONE_TEXT else text
