"""Strings the helper puts on the bus, made safe for every supported dbus-fast.

Two hazards, both of which would cost the helper its bus connection or a
whole reply:

* dbus-fast 1.84 (Debian 12's python3-dbus-fast) writes the length of a
  string in characters instead of bytes, so a message holding any non-ASCII
  text is malformed and dbus-daemon drops the sender.  Where the installed
  dbus-fast has that bug, non-ASCII text is sent backslash-escaped.
* Interface names are bytes to the kernel and need not be UTF-8; D-Bus
  strings must be.  Such names are sent with their bytes escaped, in a
  form no other name can take (:func:`~tungui_contract.ifname.escape_name`).

Callers address a device by its name as listed.
"""

from __future__ import annotations

from dbus_fast import Message

from tungui_contract.ifname import counts_characters, escape_name

#: True with dbus-fast 1.84's string-length bug.
ASCII_ONLY = counts_characters(
    lambda text: bytes(
        Message(
            path="/", interface="a.b", member="M", signature="s", body=[text], serial=1
        )._marshall(False)
    )
)


def bus_text(text: str) -> str:
    """Free text (an error message) as it can safely travel on this bus connection.

    Characters the connection cannot carry (bytes of a name that are not
    UTF-8, and any non-ASCII text where :data:`ASCII_ONLY`) are written as
    their bytes, ``\\xNN``, as :func:`listed_name` writes them.
    """
    if text.isascii():
        return text
    if not ASCII_ONLY:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return "".join(
        char
        if char.isascii() or (not ASCII_ONLY and not 0xD800 <= ord(char) <= 0xDFFF)
        else escape_name(char, ascii_only=True)
        for char in text
    )


def listed_name(name: str) -> str:
    """An interface name as the helper lists it and callers address it (injective)."""
    return escape_name(name, ascii_only=ASCII_ONLY)
