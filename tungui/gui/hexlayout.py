"""The bytes pane's text, laid out without Qt: which character shows which byte.

Each row holds 16 bytes: the offset (4 lowercase hex digits, 8 once the
data is longer than 0xffff bytes), two spaces, 16 hex pairs with an extra
space after the 8th, two spaces, and the bytes as ASCII with ``·`` for any
byte outside 0x20 to 0x7e (:mod:`.hexview` shows it).
"""

from __future__ import annotations

#: Bytes in one row.
ROW_BYTES = 16
#: The character standing for a byte that is not printable ASCII (U+00B7).
UNPRINTABLE = "\u00b7"
#: Width of the hex column of a full row: 16 pairs, 15 spaces, the extra gap.
HEX_WIDTH = ROW_BYTES * 3 - 1 + 1
_GAP = "  "  # between the offset, hex and ASCII columns
_SECOND_HALF = 3 * 8 + 1  # where byte 8's hex digits start in the hex column


def offset_width(length: int) -> int:
    """Hex digits of the offset column for ``length`` bytes of data (4, or 8 past 0xffff)."""
    return 8 if length > 0xFFFF else 4


def hex_rows(data: bytes) -> list[str]:
    """Lay out ``data`` as the bytes pane's rows, 16 bytes a row.

    Args:
        data: the bytes to show.

    Returns:
        One string per row, such as
        ``0000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  GET / HTTP/1.1··``;
        the hex column of the last row is padded with spaces so its ASCII
        column lines up with the others.  No rows for no data.
    """
    width = offset_width(len(data))
    rows = []
    for start in range(0, len(data), ROW_BYTES):
        chunk = data[start : start + ROW_BYTES]
        pairs = [f"{byte:02x}" for byte in chunk]
        hex_part = " ".join(pairs[:8]) + ("  " + " ".join(pairs[8:]) if len(pairs) > 8 else "")
        text = "".join(chr(byte) if 0x20 <= byte <= 0x7E else UNPRINTABLE for byte in chunk)
        rows.append(f"{start:0{width}x}{_GAP}{hex_part.ljust(HEX_WIDTH)}{_GAP}{text}")
    return rows


def hex_column(index: int, width: int) -> int:
    """Column of the first hex digit of byte ``index`` (0 to 15) of a row.

    Args:
        index: the byte's place in its row.
        width: the offset column's width (:func:`offset_width`).
    """
    return width + len(_GAP) + 3 * index + (1 if index >= 8 else 0)


def ascii_column(index: int, width: int) -> int:
    """Column of byte ``index`` (0 to 15) of a row in the ASCII column."""
    return width + len(_GAP) + HEX_WIDTH + len(_GAP) + index


def byte_at(row: int, column: int, width: int, length: int, *, nearest: bool = False) -> int | None:
    """The byte shown at a character of the pane.

    Args:
        row: the row (line) of the character.
        column: the character's place in its row.
        width: the offset column's width (:func:`offset_width`).
        length: how many bytes the pane shows.
        nearest: False: only a hex digit or an ASCII character names a byte
            (a click elsewhere selects nothing).  True: any column names the
            nearest byte of its row, and a place past the end the last byte
            (for dragging a selection).

    Returns:
        The byte's offset in the data, or None.
    """
    hex_start, text_start = hex_column(0, width), ascii_column(0, width)
    index: int | None = None
    if hex_start <= column < hex_start + HEX_WIDTH:
        relative = column - hex_start
        if relative >= _SECOND_HALF:
            relative -= 1  # from byte 8 on, past the extra space
        elif relative == _SECOND_HALF - 1:
            relative -= 1  # the extra space counts as the space after byte 7
        index = relative // 3
        if relative % 3 == 2 and not nearest:
            index = None  # a space between two bytes names neither
    elif text_start <= column < text_start + ROW_BYTES:
        index = column - text_start
    elif nearest:
        index = 0 if column < hex_start else ROW_BYTES - 1
    if index is None or length == 0:
        return None
    offset = row * ROW_BYTES + index
    if offset < length:
        return offset
    return length - 1 if nearest else None
