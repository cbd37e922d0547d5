"""The bytes pane: a packet as rows of hex and ASCII, as in Wireshark.

Each row holds 16 bytes::

    0000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  GET / HTTP/1.1··

the offset (4 lowercase hex digits, 8 once the data is longer than 0xffff
bytes), two spaces, 16 hex pairs with an extra space after the 8th, two
spaces, and the bytes as ASCII with ``·`` for any byte outside 0x20 to 0x7e.

The text is laid out by the pure functions of :mod:`.hexlayout`, which
tests check without Qt's help.  :class:`HexView` shows it and keeps the selection as a
range of bytes, not of characters: selecting in either column highlights
the same bytes in both, and never the offsets or the gaps between columns.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFontDatabase,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QShowEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from .hexlayout import (
    ROW_BYTES,
    UNPRINTABLE,
    ascii_column,
    byte_at,
    hex_column,
    hex_rows,
    offset_width,
)


class _UnprintableHighlighter(QSyntaxHighlighter):
    """Draws every ``·`` of the pane in a dimmed colour."""

    def __init__(self, document: QTextDocument, color: QColor) -> None:
        super().__init__(document)
        self._format = QTextCharFormat()
        self._format.setForeground(color)

    def set_color(self, color: QColor) -> None:
        """Use ``color`` for the dots from now on (after a theme change)."""
        self._format.setForeground(color)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        """Dim the dots of one row; hex digits and offsets never hold one."""
        index = text.find(UNPRINTABLE)
        while index >= 0:
            self.setFormat(index, 1, self._format)
            index = text.find(UNPRINTABLE, index + 1)


class HexView(QPlainTextEdit):
    """The bytes of one packet, as hex and ASCII, with a byte selection.

    Colours come from the palette (highlight for the selection, placeholder
    text for the dots), so it follows light and dark themes.  Copy (Ctrl+C)
    and Select All (Ctrl+A) are also in its context menu.
    """

    #: The selected bytes changed: start and end offsets (end excluded; equal for none).
    byteSelectionChanged = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data = b""
        self._anchor: int | None = None  # where a drag or Shift+arrow selection started
        self._active: int | None = None  # the byte at the selection's moving end
        self._range = (0, 0)
        self._dragging = False
        self._highlighter = _UnprintableHighlighter(self.document(), self._dim_color())
        self.setAccessibleName("Packet bytes")
        self.setReadOnly(True)
        # The selection is a range of bytes drawn as extra selections; Qt's own
        # text selection would run over the offsets and the other column.
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setTabChangesFocus(True)
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.viewport().setCursor(Qt.CursorShape.IBeamCursor)

        self.copy_action = QAction("&Copy as Hex", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.triggered.connect(self.copy_as_hex)
        self.select_all_action = QAction("Select &All", self)
        self.select_all_action.setShortcut(QKeySequence.StandardKey.SelectAll)
        self.select_all_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.select_all_action.triggered.connect(self.select_all)
        self.addActions([self.copy_action, self.select_all_action])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    # -- data and selection ----------------------------------------------------

    def set_data(self, data: bytes) -> None:
        """Show ``data`` (a whole packet); the selection is cleared."""
        wider = offset_width(len(data)) != offset_width(len(self._data))
        self._data = bytes(data)
        self._anchor = self._active = None
        self.setPlainText("\n".join(hex_rows(self._data)))
        self._set_range(0, 0)
        if wider:
            self.updateGeometry()

    def data(self) -> bytes:
        """The bytes shown."""
        return self._data

    def select(self, start: int, end: int) -> None:
        """Select bytes ``start`` up to ``end`` (excluded), as a dissection tree would.

        Offsets are clamped to the data; ``start == end`` clears the selection.
        """
        start = max(0, min(start, len(self._data)))
        end = max(start, min(end, len(self._data)))
        self._anchor, self._active = (start, end - 1) if end > start else (None, None)
        self._set_range(start, end)
        if end > start:
            self._show_byte(start)

    def select_all(self) -> None:
        """Select every byte."""
        self.select(0, len(self._data))

    def selection(self) -> tuple[int, int]:
        """The selected bytes' start and end offsets (end excluded; equal for none)."""
        return self._range

    def selected_bytes(self) -> bytes:
        """The bytes selected, in either column; empty for no selection."""
        start, end = self._range
        return self._data[start:end]

    def copy_as_hex(self) -> None:
        """Put the selection, or all bytes if none is selected, on the clipboard as plain hex.

        The text is lowercase hex digits with nothing between them, such as
        ``474554``, as Wireshark's Copy → …as a Hex Stream.
        """
        chosen = self.selected_bytes() or self._data
        QGuiApplication.clipboard().setText(chosen.hex())

    # -- drawing -------------------------------------------------------------

    def sizeHint(self) -> QSize:
        """Wide enough for a whole row without scrolling, and eight rows high."""
        columns = ascii_column(ROW_BYTES, offset_width(len(self._data)))
        metrics = self.fontMetrics()
        chrome = 2 * (self.frameWidth() + round(self.document().documentMargin()))
        scrollbar = self.verticalScrollBar().sizeHint().width()
        return QSize(
            metrics.horizontalAdvance("0" * columns) + chrome + scrollbar + 1,
            metrics.lineSpacing() * 8 + chrome,
        )

    def _dim_color(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.PlaceholderText)

    def _set_range(self, start: int, end: int) -> None:
        """Make ``start`` to ``end`` the selection, draw it, and tell listeners if it moved."""
        changed = (start, end) != self._range
        self._range = (start, end)
        self._draw_selection()
        if changed:
            self.byteSelectionChanged.emit(start, end)

    def _draw_selection(self) -> None:
        """Highlight the selected bytes in the hex and the ASCII column, row by row."""
        start, end = self._range
        width = offset_width(len(self._data))
        style = QTextCharFormat()
        style.setBackground(self.palette().highlight())
        style.setForeground(self.palette().highlightedText())
        selections = []
        rows = range(start // ROW_BYTES, (end - 1) // ROW_BYTES + 1) if end > start else range(0)
        for row in rows:
            first = max(start, row * ROW_BYTES) - row * ROW_BYTES
            last = min(end, (row + 1) * ROW_BYTES) - 1 - row * ROW_BYTES
            position = self.document().findBlockByNumber(row).position()
            spans = (
                (hex_column(first, width), hex_column(last, width) + 2),
                (ascii_column(first, width), ascii_column(last, width) + 1),
            )
            for begin, finish in spans:
                selection = QTextEdit.ExtraSelection()
                cursor = QTextCursor(self.document())
                cursor.setPosition(position + begin)
                cursor.setPosition(position + finish, QTextCursor.MoveMode.KeepAnchor)
                selection.cursor = cursor
                selection.format = style
                selections.append(selection)
        self.setExtraSelections(selections)

    def _show_byte(self, offset: int) -> None:
        """Scroll so that byte ``offset`` is in view."""
        width = offset_width(len(self._data))
        block = self.document().findBlockByNumber(offset // ROW_BYTES)
        cursor = QTextCursor(block)
        cursor.setPosition(block.position() + hex_column(offset % ROW_BYTES, width))
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def showEvent(self, event: QShowEvent) -> None:
        """Bring the selection into view: scrolling while hidden went by a guessed height."""
        super().showEvent(event)
        start, end = self._range
        if end > start:
            self._show_byte(start)

    def changeEvent(self, event: QEvent) -> None:
        """Follow a theme change: new colours for the dots and the selection."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._highlighter.set_color(self._dim_color())
            self._draw_selection()

    # -- mouse and keyboard ------------------------------------------------------

    def _byte_under(self, point: QPoint, *, nearest: bool) -> int | None:
        """The byte drawn at ``point`` (viewport coordinates); see :func:`byte_at`."""
        cursor = self.cursorForPosition(point)
        column = cursor.positionInBlock()
        # cursorForPosition gives the nearest gap between characters; the
        # character under the pointer is the one left of it when the pointer
        # is left of that gap.
        if column > 0 and point.x() < self.cursorRect(cursor).x():
            column -= 1
        row = cursor.blockNumber()
        return byte_at(row, column, offset_width(len(self._data)), len(self._data), nearest=nearest)

    def _extend_to(self, offset: int) -> None:
        anchor = offset if self._anchor is None else self._anchor
        self._anchor, self._active = anchor, offset
        self._set_range(min(anchor, offset), max(anchor, offset) + 1)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Start a selection at the byte under the pointer (Shift: extend the selection)."""
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        offset = self._byte_under(event.position().toPoint(), nearest=shift)
        if offset is None:
            self._anchor = self._active = None
            self._set_range(0, 0)
            return
        if not shift:
            self._anchor = offset
        self._dragging = True
        self._extend_to(offset)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """A second click acts as the first (no word selection here)."""
        self.mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Drag the selection's end to the byte nearest the pointer, in either column."""
        if not self._dragging:
            super().mouseMoveEvent(event)
            return
        point = event.position().toPoint()
        bar = self.verticalScrollBar()
        if point.y() < 0:
            bar.setValue(bar.value() - 1)
        elif point.y() > self.viewport().height():
            bar.setValue(bar.value() + 1)
        offset = self._byte_under(point, nearest=True)
        if offset is not None:
            self._extend_to(offset)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """End a drag."""
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = False
        else:
            super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Arrows move a one-byte selection, Shift+arrows extend it.

        Copy and Select All are the actions' shortcuts; with no text
        interaction the text edit does not claim those keys for itself.
        """
        steps = {
            Qt.Key.Key_Left.value: -1,
            Qt.Key.Key_Right.value: 1,
            Qt.Key.Key_Up.value: -ROW_BYTES,
            Qt.Key.Key_Down.value: ROW_BYTES,
        }
        step = steps.get(event.key())
        if step is None or not self._data:
            super().keyPressEvent(event)
            return
        active = (
            0 if self._active is None else max(0, min(self._active + step, len(self._data) - 1))
        )
        if not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._anchor = active
        self._extend_to(active)
        self._show_byte(active)
