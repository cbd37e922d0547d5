"""Device names on the bus: every kernel name lists as text, and no two alike."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tungui_contract.ifname import escape_name
from tungui_contract.limits import TARGET_MAX_CHARS
from tungui_helper.table import DeviceTable

from .links import link

#: What the kernel takes as a name: 1 to 15 bytes, no NUL, '/', ':' or
#: ASCII whitespace (dev_valid_name), read as the helper reads it.
kernel_names = (
    st.binary(min_size=1, max_size=15)
    .filter(lambda raw: not set(raw) & set(b"\0/: \t\n\v\f\r") and raw not in (b".", b".."))
    .map(lambda raw: raw.decode("utf-8", "surrogateescape"))
)

_ESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")


def unescape(text: str) -> bytes:
    """The bytes an escaped name stands for (what a client may decode)."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        out += b"\\" if match.group(1) is None else bytes([int(match.group(1), 16)])
        position = match.end()
    out += text[position:].encode("utf-8")
    return bytes(out)


@pytest.mark.parametrize("ascii_only", [False, True])
@given(name=kernel_names)
def test_an_escaped_name_stands_for_its_bytes_only(ascii_only: bool, name: str) -> None:
    escaped = escape_name(name, ascii_only=ascii_only)
    assert unescape(escaped) == name.encode("utf-8", "surrogateescape")
    assert escaped.isprintable()
    assert len(escaped) <= TARGET_MAX_CHARS
    escaped.encode("ascii" if ascii_only else "utf-8")


@pytest.mark.parametrize("ascii_only", [False, True])
@given(names=st.lists(kernel_names, min_size=2, max_size=2, unique=True))
def test_two_names_never_escape_alike(ascii_only: bool, names: list[str]) -> None:
    first, second = (escape_name(n, ascii_only=ascii_only) for n in names)
    assert first != second


def test_names_tungui_gives_are_unchanged() -> None:
    for name in ("tap0", "lab-br.1", "tun_x+y"):
        assert escape_name(name) == name == escape_name(name, ascii_only=True)


def test_a_literal_escape_does_not_shadow_the_byte_it_spells() -> None:
    table = DeviceTable()
    table.apply([("link", link(5, "tg\udcff")), ("link", link(6, "tg\\xff"))])
    assert table.by_name("tg\\xff") is table.links[5]
    assert table.by_name("tg\\\\xff") is table.links[6]
    # And whichever came first, the same answers.
    table = DeviceTable()
    table.apply([("link", link(6, "tg\\xff")), ("link", link(5, "tg\udcff"))])
    assert table.by_name("tg\\xff") is table.links[5]
    assert table.by_name("tg\\\\xff") is table.links[6]
