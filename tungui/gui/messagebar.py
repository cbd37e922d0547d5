"""An inline message strip above the device list, in the manner of KMessageWidget.

Used for the banner that says the helper is away (it stays until the helper
is back) and for the outcome of an action that failed (it stays until
dismissed or replaced).  Colours come from the palette, so it follows light
and dark themes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from . import icons

#: Tints mixed into the window colour for each kind of message.
_TINTS = {"warning": QColor("#e5a50a"), "error": QColor("#d0453f"), "info": QColor("#3584e4")}
_ICONS = {"warning": "dialog-warning", "error": "dialog-error", "info": "dialog-information"}


class MessageBar(QFrame):
    """A message with an icon, an optional action button and a close button.

    Args:
        kind: "warning", "error" or "info".
        closable: whether a person can dismiss it.
        name: its accessible name.
    """

    #: The action button was pressed.
    actionTriggered = Signal()

    def __init__(
        self, kind: str, *, closable: bool, name: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name.replace(" ", ""))
        self.setAccessibleName(name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Window)
        tint = _TINTS[kind]
        mixed = QColor(
            (base.red() * 4 + tint.red()) // 5,
            (base.green() * 4 + tint.green()) // 5,
            (base.blue() * 4 + tint.blue()) // 5,
        )
        palette.setColor(QPalette.ColorRole.Window, mixed)
        self.setPalette(palette)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 6, 6)
        self._icon = QLabel(self)
        size = self.style().pixelMetric(self.style().PixelMetric.PM_SmallIconSize)
        self._icon.setPixmap(icons.icon(_ICONS[kind]).pixmap(size, size))
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(f"{name} text")
        layout.addWidget(self.label, 1)
        self.action = QToolButton(self)
        self.action.setAccessibleName(f"{name} action")
        self.action.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.action.hide()
        self.action.clicked.connect(self.actionTriggered)
        layout.addWidget(self.action, 0, Qt.AlignmentFlag.AlignTop)
        self.close_button = QToolButton(self)
        self.close_button.setAutoRaise(True)
        self.close_button.setIcon(
            self.style().standardIcon(self.style().StandardPixmap.SP_TitleBarCloseButton)
        )
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName(f"Dismiss {name.lower()}")
        self.close_button.clicked.connect(self.hide)
        self.close_button.setVisible(closable)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def set_action(self, text: str, icon_name: str) -> None:
        """Offer a button (such as Retry) beside the message."""
        self.action.setText(text)
        self.action.setIcon(icons.icon(icon_name))
        self.action.setAccessibleName(text.replace("&", ""))
        self.action.show()

    def show_message(self, text: str) -> None:
        """Show the bar with this text."""
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        """The message shown."""
        return self.label.text()
