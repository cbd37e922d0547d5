"""The bytes pane (tungui.gui.hexview): its rows, its byte selection, copying."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFontInfo, QGuiApplication, QPalette, QTextCursor
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from tungui.gui.hexlayout import ascii_column, byte_at, hex_column, hex_rows, offset_width
from tungui.gui.hexview import HexView

# An ARP request from 02:00:5e:10:00:02 (192.0.2.2) for 192.0.2.1: 42 bytes.
ARP_REQUEST = bytes.fromhex(
    "ffffffffffff02005e1000020806"  # Ethernet: broadcast, sender, ARP
    "0001080006040001"  # Ethernet/IPv4, request
    "02005e100002c0000202"  # sender MAC and IP
    "000000000000c0000201"  # target MAC (unknown) and IP
)

ARGB = QColor.NameFormat.HexArgb

# The start of an HTTP request, 20 bytes: a printable row and a short one.
HTTP = b"GET / HTTP/1.1\r\nHost"


# -- layout, without Qt -------------------------------------------------------------


def test_rows_of_the_start_of_an_http_request() -> None:
    assert hex_rows(HTTP) == [
        "0000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  GET / HTTP/1.1··",
        "0010  48 6f 73 74                                       Host",
    ]


def test_rows_of_an_arp_request() -> None:
    assert hex_rows(ARP_REQUEST) == [
        "0000  ff ff ff ff ff ff 02 00  5e 10 00 02 08 06 00 01  ········^·······",
        "0010  08 00 06 04 00 01 02 00  5e 10 00 02 c0 00 02 02  ········^·······",
        "0020  00 00 00 00 00 00 c0 00  02 01                    ··········",
    ]


def test_the_ascii_column_lines_up_on_every_row() -> None:
    for length in range(1, 40):
        data = bytes(range(0x20, 0x20 + length))
        rows = hex_rows(data)
        assert [row[54:56] for row in rows] == ["  "] * len(rows)
        assert "".join(row[56:] for row in rows) == data.decode()


def test_every_printable_byte_shows_as_itself_and_no_other() -> None:
    [row] = hex_rows(bytes([0x1F, 0x20, 0x7E, 0x7F, 0xB7, 0x00]))
    assert row[56:] == "· ~···"
    assert hex_rows(b"") == []


def test_offsets_take_eight_digits_past_0xffff_bytes() -> None:
    assert offset_width(0xFFFF) == 4
    assert offset_width(0x10000) == 8
    short = hex_rows(bytes(0xFFFF))
    assert short[0].startswith("0000  00 00")
    assert (
        short[-1]
        == "fff0  " + " ".join(["00"] * 8) + "  " + " ".join(["00"] * 7) + "     " + "·" * 15
    )
    long = hex_rows(bytes(0x10001))
    assert long[0].startswith("00000000  00 00")
    assert long[0xFFF].startswith("0000fff0  00")
    assert long[-1] == "00010000  00" + " " * 46 + "  ·"


def test_columns_name_the_bytes_under_them() -> None:
    row = hex_rows(bytes(range(16)))[0]
    for index in range(16):
        assert row[hex_column(index, 4) : hex_column(index, 4) + 2] == f"{index:02x}"
        assert byte_at(0, hex_column(index, 4), 4, 16) == index
        assert byte_at(0, hex_column(index, 4) + 1, 4, 16) == index
        assert byte_at(2, ascii_column(index, 4), 4, 100) == 32 + index
    # Offsets and gaps name no byte, unless the nearest one is wanted (a drag).
    gaps = [0, 5, hex_column(0, 4) + 2, hex_column(7, 4) + 2, hex_column(7, 4) + 3, 54, 55, 72]
    assert [byte_at(0, column, 4, 16) for column in gaps] == [None] * len(gaps)
    assert [byte_at(0, column, 4, 16, nearest=True) for column in gaps] == [
        0,
        0,
        0,
        7,
        7,
        15,
        15,
        15,
    ]
    # Past the end of the data: nothing, or the last byte.
    assert byte_at(1, hex_column(9, 4), 4, 20) is None
    assert byte_at(1, hex_column(9, 4), 4, 20, nearest=True) == 19
    assert byte_at(0, ascii_column(3, 8), 8, 0x10000) == 3


# -- the widget ---------------------------------------------------------------------


@pytest.fixture
def view(qtbot: QtBot) -> HexView:
    widget = HexView()
    qtbot.addWidget(widget)
    widget.set_data(HTTP + b"\r\n" + ARP_REQUEST)  # 64 bytes: four full rows
    widget.resize(widget.sizeHint())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def point_of(view: HexView, row: int, column: int) -> QPoint:
    """The middle of the character at ``column`` of ``row``, in viewport coordinates."""
    block = view.document().findBlockByNumber(row)
    cursor = QTextCursor(block)
    cursor.setPosition(block.position() + column)
    rect = view.cursorRect(cursor)
    return QPoint(rect.x() + view.fontMetrics().horizontalAdvance("0") // 2, rect.center().y())


def highlighted(view: HexView) -> list[tuple[int, str]]:
    """Each highlighted stretch of text, with its row."""
    spans = []
    for selection in view.extraSelections():
        cursor = selection.cursor
        row = view.document().findBlock(cursor.selectionStart()).blockNumber()
        spans.append((row, cursor.selectedText()))
    return spans


# QTest rather than qtbot's wrappers of it: QTest's methods are typed.
NO_KEYS = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def drag(view: HexView, start: QPoint, end: QPoint) -> None:
    """Press the left button at ``start``, move to ``end`` and let go."""
    QTest.mousePress(view.viewport(), LEFT, NO_KEYS, start)
    QTest.mouseMove(view.viewport(), end)
    QTest.mouseRelease(view.viewport(), LEFT, NO_KEYS, end)


def click(view: HexView, point: QPoint, modifiers: Qt.KeyboardModifier = NO_KEYS) -> None:
    QTest.mouseClick(view.viewport(), LEFT, modifiers, point)


def key(view: HexView, which: Qt.Key, modifiers: Qt.KeyboardModifier = NO_KEYS) -> None:
    QTest.keyClick(view, which, modifiers)


def test_the_pane_is_read_only_fixed_pitch_and_named(view: HexView) -> None:
    assert view.isReadOnly()
    assert QFontInfo(view.font()).fixedPitch()
    assert view.accessibleName() == "Packet bytes"
    assert view.toPlainText().splitlines() == hex_rows(HTTP + b"\r\n" + ARP_REQUEST)
    # A whole row fits without a horizontal scroll bar.
    assert view.horizontalScrollBar().maximum() == 0


def test_unprintable_bytes_are_dimmed_with_the_palette(view: HexView) -> None:
    def dimmed(row: int) -> dict[int, str]:
        """Column: colour name of each character drawn in a colour of its own."""
        block = view.document().findBlockByNumber(row)
        return {
            column: span.format.foreground().color().name(ARGB)
            for span in block.layout().formats()
            for column in range(span.start, span.start + span.length)
        }

    placeholder = view.palette().color(QPalette.ColorRole.PlaceholderText).name(ARGB)
    assert placeholder != view.palette().color(QPalette.ColorRole.Text).name(ARGB)
    # Row 0 ends with CR LF; row 1 is "Host", CR LF, then Ethernet's 02:00:5e:10.
    assert dimmed(0) == {70: placeholder, 71: placeholder}
    assert dimmed(1) == {56 + i: placeholder for i in (*range(4, 14), 15)}

    palette = view.palette()
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(0x80, 0x40, 0x20))
    view.setPalette(palette)
    assert dimmed(0) == {70: "#ff804020", 71: "#ff804020"}


def test_a_selection_in_the_hex_column_shows_in_the_ascii_column(
    view: HexView,
) -> None:
    changes: list[tuple[int, int]] = []
    view.byteSelectionChanged.connect(lambda start, end: changes.append((start, end)))
    # From the second digit of byte 0x0b ("31") to the first of byte 0x11 ("0a").
    drag(view, point_of(view, 0, hex_column(11, 4) + 1), point_of(view, 1, hex_column(1, 4)))
    assert view.selection() == (11, 18)
    assert view.selected_bytes() == b"1.1\r\nHo"
    assert highlighted(view) == [
        (0, "31 2e 31 0d 0a"),
        (0, "1.1··"),
        (1, "48 6f"),
        (1, "Ho"),
    ]
    assert changes[-1] == (11, 18)


def test_a_selection_in_the_ascii_column_shows_in_the_hex_column(
    view: HexView,
) -> None:
    # Dragged backwards, from "T" of "HTTP" on row 0 to the "0" of row 2.
    drag(view, point_of(view, 0, ascii_column(7, 4)), point_of(view, 0, ascii_column(2, 4)))
    assert view.selection() == (2, 8)
    assert view.selected_bytes() == b"T / HT"
    assert highlighted(view) == [(0, "54 20 2f 20 48 54"), (0, "T / HT")]

    # Across rows, and across the gap in the middle of the hex column.
    drag(view, point_of(view, 1, ascii_column(6, 4)), point_of(view, 2, ascii_column(9, 4)))
    assert view.selection() == (22, 42)
    assert view.selected_bytes() == (HTTP + b"\r\n" + ARP_REQUEST)[22:42]
    assert highlighted(view) == [
        (1, "ff ff  ff ff ff ff 02 00 5e 10"),
        (1, "········^·"),
        (2, "00 02 08 06 00 01 08 00  06 04"),
        (2, "··········"),
    ]


def test_dragging_past_the_columns_selects_to_the_row_ends(view: HexView) -> None:
    # From the ASCII column of row 3 leftwards into the offset column of row 2.
    drag(view, point_of(view, 3, ascii_column(1, 4)), point_of(view, 2, 1))
    assert view.selection() == (32, 50)
    # From the hex column into the gap before the ASCII column.
    drag(view, point_of(view, 0, hex_column(14, 4)), point_of(view, 0, ascii_column(0, 4) - 1))
    assert view.selection() == (14, 16)


def test_a_click_beside_the_bytes_clears_the_selection(view: HexView) -> None:
    view.select(3, 9)
    click(view, point_of(view, 1, 2))
    assert view.selection() == (0, 0)
    assert view.selected_bytes() == b""
    assert view.extraSelections() == []
    between = point_of(view, 1, hex_column(5, 4) + 2)
    click(view, between)
    assert view.selection() == (0, 0)
    click(view, point_of(view, 1, 22))
    assert view.selected_bytes() == b"\n"


def test_shift_click_and_keys_extend_the_selection(view: HexView) -> None:
    click(view, point_of(view, 0, hex_column(4, 4)))
    assert view.selection() == (4, 5)
    click(view, point_of(view, 0, ascii_column(6, 4)), Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_bytes() == b"/ H"
    key(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_bytes() == b"/ HT"
    key(view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert view.selection() == (4, 24)
    key(view, Qt.Key.Key_Left)
    assert view.selection() == (22, 23)


def test_copy_as_hex_copies_the_selection_or_everything(view: HexView) -> None:
    clipboard = QGuiApplication.clipboard()
    view.select(0, 5)
    view.copy_as_hex()
    assert clipboard.text() == "474554202f"
    view.select(0, 0)
    view.copy_as_hex()
    assert clipboard.text() == (HTTP + b"\r\n" + ARP_REQUEST).hex()
    # Ctrl+A then Ctrl+C, as a person would; the result is one plain lowercase string.
    view.setFocus()
    view.select(34, 36)  # the ethertype of the ARP request
    key(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clipboard.text() == "0806"
    key(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert view.selection() == (0, 64)
    assert view.copy_action in view.actions()
    assert view.select_all_action in view.actions()


def test_select_from_outside_and_long_data(view: HexView) -> None:
    view.select(60, 200)
    assert view.selected_bytes() == ARP_REQUEST[-4:]
    data = bytes(i & 0xFF for i in range(0x10010))
    view.set_data(data)
    assert view.selection() == (0, 0)
    assert view.toPlainText().splitlines()[-1].startswith("00010000  00 01 02")
    view.select(0x10002, 0x10004)
    assert highlighted(view) == [(0x1000, "02 03"), (0x1000, "··")]
    # The view scrolled to the selection, and a click there still names the right bytes.
    click(view, point_of(view, 0x1000, 65))
    assert view.selection() == (0x10005, 0x10006)


def test_a_selection_made_while_hidden_is_in_view_once_shown(qtbot: QtBot) -> None:
    widget = HexView()
    qtbot.addWidget(widget)
    widget.set_data(bytes(4096))
    widget.select(4000, 4002)
    widget.show()
    qtbot.waitExposed(widget)
    row = point_of(widget, 4000 // 16, ascii_column(0, 4))
    assert widget.viewport().rect().contains(row)
