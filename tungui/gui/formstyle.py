"""Looks the dialogs share: how they mark a problem with what was typed
(colours and icons from the theme), how their forms line up, and the small
widgets their forms are made of.

Shared by the device dialog and the send dialog, so both say "wrong" alike
on light and dark themes.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)


def problem_palette(palette: QPalette) -> QPalette:
    """``palette`` with its text in a red that reads on the theme's background.

    Qt's palette has no "negative" role: take a red as light or as dark as
    the theme's own text.
    """
    text = palette.color(QPalette.ColorRole.WindowText)
    problem = QPalette(palette)
    problem.setColor(
        QPalette.ColorRole.WindowText,
        QColor.fromHsl(355, 170, max(90, min(170, text.lightness()))),
    )
    return problem


def read_only_palette(palette: QPalette) -> QPalette:
    """``palette`` for a field that cannot change: on the window's colour, as a label."""
    read_only = QPalette(palette)
    read_only.setColor(QPalette.ColorRole.Base, palette.color(QPalette.ColorRole.Window))
    return read_only


def warning_icon(widget: QWidget) -> QIcon:
    """The theme's warning icon, or the style's."""
    fallback = widget.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
    return QIcon.fromTheme("dialog-warning", fallback)


def small_icon_size(widget: QWidget) -> int:
    """The style's small icon size, for icons beside text."""
    return widget.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)


def problem_row(widget: QWidget) -> tuple[QWidget, QLabel, QLabel]:
    """The row under a form that shows its first problem: a warning icon and the sentence.

    Returns:
        The row, its icon and its text label. The row keeps its height while
        hidden, so a problem coming and going does not make the dialog jump.
    """
    icon = QLabel()
    icon.setPixmap(warning_icon(widget).pixmap(small_icon_size(widget)))
    label = QLabel()
    label.setAccessibleName("Problem")
    label.setWordWrap(True)
    # Room for two lines, so that a problem does not squeeze the form.
    label.setMinimumHeight(2 * label.fontMetrics().lineSpacing())
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
    layout.addWidget(label, 1)
    policy = row.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    row.setSizePolicy(policy)
    return row, icon, label


def align_form_labels(layouts: Iterable[QFormLayout]) -> None:
    """Give the label column of several forms one width, so their fields line up."""
    labels: list[QWidget] = []
    for layout in layouts:
        for row in range(layout.rowCount()):
            item = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
            label = item.widget() if item is not None else None
            if label is not None:
                labels.append(label)
    if labels:
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)


def check_box(text: str, checked: bool, tip: str) -> QCheckBox:
    """A check box named for assistive technology by its text."""
    box = QCheckBox(text)
    box.setAccessibleName(text.replace("&", ""))
    box.setChecked(checked)
    box.setToolTip(tip)
    return box


def radio(text: str, tip: str) -> QRadioButton:
    """A radio button named for assistive technology by its text."""
    button = QRadioButton(text)
    button.setAccessibleName(text.replace("&", ""))
    button.setToolTip(tip)
    return button


def group_box(title: str) -> tuple[QGroupBox, QFormLayout]:
    """A titled group holding a form whose fields grow with the dialog."""
    box = QGroupBox(title)
    layout = QFormLayout(box)
    layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return box, layout


def stacked(*buttons: QAbstractButton) -> QWidget:
    """Buttons one above the other, as one field of a form."""
    widget = QWidget()
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    for button in buttons:
        layout.addWidget(button)
    return widget
