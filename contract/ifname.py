"""Interface names as they travel on the bus.

The kernel's names are bytes; D-Bus strings must be UTF-8, and Debian 12's
dbus-fast can send ASCII only.  The helper lists every name in the escaped
form of :func:`escape_name`, and callers address devices by that form.
"""

from __future__ import annotations

from collections.abc import Callable


def escape_name(name: str, *, ascii_only: bool = False) -> str:
    """An interface name as it travels on the bus: printable text, and injective.

    The kernel's names are bytes (anything but NUL, '/', ':' and ASCII
    whitespace); the helper reads them with Python's ``surrogateescape``, so
    a byte that is not UTF-8 is a lone surrogate here.  A name that is
    printable UTF-8 without a backslash, as every name tungui gives, goes
    out unchanged.  In any other name, a backslash is doubled and each
    character that is not printable (control bytes could drive a terminal
    that prints the list), not UTF-8, or, with ``ascii_only``, not ASCII, is
    written as its bytes, ``\\xNN`` each.  So each escaped form stands for
    one byte string only: a TAP named ``tg\\xff`` cannot shadow a device
    whose name holds the byte 0xff, and callers address devices by the
    escaped form they were shown.

    Args:
        name: the name as read from the kernel.
        ascii_only: escape every non-ASCII character too (for dbus-fast
            1.84, which cannot send other text; see
            :func:`counts_characters`).
    """
    if "\\" not in name and name.isprintable() and (name.isascii() or not ascii_only):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return name
    out = []
    for char in name:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable() and (char.isascii() or not ascii_only) and _is_text(char):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in _bytes_of(char))
    return "".join(out)


def _is_text(char: str) -> bool:
    return not 0xD800 <= ord(char) <= 0xDFFF


def _bytes_of(char: str) -> bytes:
    """The kernel's bytes behind one character of a name."""
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no kernel name gives
        return char.encode("utf-8", "surrogatepass")


def counts_characters(marshal: Callable[[str], bytes]) -> bool:
    """Whether a D-Bus library writes a string's length in characters, not bytes.

    dbus-fast 1.84 (Debian 12's python3-dbus-fast) does: a message holding
    any non-ASCII text is then malformed, and dbus-daemon drops the sender.
    Where that is so, both sides send ASCII only (``ascii_only`` above).

    Args:
        marshal: marshals a whole message whose body is the one string given
            (its last bytes are the string's u32 length, the text and NUL).
    """
    try:
        data = marshal("\u00e9")
    except Exception:  # a private API of the library moved: assume it is fixed
        return False
    # "é" is 2 bytes of UTF-8 and 1 character.
    return int.from_bytes(data[-7:-3], "little" if data[0:1] == b"l" else "big") == 1
