"""The device list as a file holds what ListDevices' reply holds."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
from typing import Any

import pytest
from dbus_fast import Message
from dbus_fast._private.unmarshaller import Unmarshaller
from dbus_fast.unpack import unpack_variants
from hypothesis import given
from hypothesis import strategies as st

from tungui_contract.keys import DEVICE_SIGNATURES
from tungui_helper.listing import DeviceForms, SharedListing, sealed_file
from tungui_helper.marshalled import MarshalledBody, MarshalledReply

# Text as the kernel may hold it (C strings): any characters but NUL, and
# bytes that are not UTF-8 (which Python reads as surrogate escapes).
_TEXT = st.one_of(
    st.text(st.characters(blacklist_characters="\x00"), max_size=20),
    st.binary(max_size=15)
    .filter(lambda raw: b"\x00" not in raw)
    .map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": _TEXT,
    "as": st.lists(_TEXT, max_size=4),
    "u": st.integers(0, 2**32 - 1),
    "i": st.integers(-(2**31), 2**31 - 1),
    "b": st.booleans(),
}


@st.composite
def _devices(draw: st.DrawFn) -> list[dict[str, Any]]:
    indexes = draw(st.lists(st.integers(1, 2**31), unique=True, max_size=5))
    devices = []
    for index in indexes:
        keys = draw(st.sets(st.sampled_from(sorted(DEVICE_SIGNATURES))))
        device = {key: draw(_VALUES[DEVICE_SIGNATURES[key]]) for key in keys}
        devices.append(device | {"index": index})
    return devices


def _through_the_bus(variants: list[Any]) -> list[dict[str, Any]]:
    """What a client unmarshals from ListDevices' reply with these variants."""
    call = Message(destination=":1.1", path="/", interface="a.b", member="ListDevices", serial=5)
    call.sender = ":1.7"
    reply = MarshalledReply(call, MarshalledBody.of("aa{sv}", variants))
    reply.serial = 6
    reader = Unmarshaller(io.BytesIO(bytes(reply._marshall(False))))  # type: ignore[arg-type]
    reader.unmarshall()
    assert reader.message is not None
    unwrapped: list[dict[str, Any]] = unpack_variants(reader.message.body[0])
    return unwrapped


@given(_devices())
def test_the_file_holds_what_the_reply_holds(devices: list[dict[str, Any]]) -> None:
    forms = DeviceForms()
    variants = [forms.variants(d) for d in devices]
    listing = forms.listing(devices)
    assert listing.isascii()
    assert json.loads(listing) == _through_the_bus(variants)


def test_a_device_is_built_again_only_when_it_changed() -> None:
    forms = DeviceForms()
    tap = {"index": 4, "name": "tap0", "up": False}
    first = forms.json(tap), forms.variants(tap)
    assert forms.json(dict(tap)) is first[0] and forms.variants(dict(tap)) is first[1]
    changed = tap | {"up": True}
    assert json.loads(forms.json(changed))["up"] is True
    assert forms.variants(changed)["up"].value is True
    kept = forms.json(changed)
    forms.forget(4)
    rebuilt = forms.json(changed)
    assert rebuilt is not kept and rebuilt == kept


def test_the_file_is_sealed_and_read_from_its_start() -> None:
    data = b'[{"name":"tap0"}]\n'
    fd = sealed_file("test", data)
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        for seal in (fcntl.F_SEAL_WRITE, fcntl.F_SEAL_GROW, fcntl.F_SEAL_SHRINK, fcntl.F_SEAL_SEAL):
            assert seals & seal
        assert os.read(fd, 100) == data
        with pytest.raises(OSError) as refused:
            os.pwrite(fd, b"x", 0)
        assert refused.value.errno == errno.EPERM
        with pytest.raises(OSError):
            os.ftruncate(fd, 0)
        assert os.pread(fd, 100, 0) == data
    finally:
        os.close(fd)


def test_callers_share_the_file_but_not_its_offset() -> None:
    listing = SharedListing("test")
    builds: list[int] = []

    def build(text: bytes) -> bytes:
        builds.append(1)
        return text

    try:
        first = listing.open(1, lambda: build(b"[1,2,3]\n"))
        second = listing.open(1, lambda: build(b"never built"))
        assert len(builds) == 1
        assert os.fstat(first).st_ino == os.fstat(second).st_ino
        assert os.read(first, 3) == b"[1,"
        assert os.read(second, 100) == b"[1,2,3]\n"  # from its own start
        for fd in (first, second):
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            with pytest.raises(OSError) as refused:
                os.write(fd, b"x")
            assert refused.value.errno == errno.EBADF
        # A new listing is a new file; a caller that kept the old one reads it whole.
        third = listing.open(2, lambda: build(b"[4]\n"))
        assert os.read(third, 100) == b"[4]\n"
        assert os.fstat(third).st_ino != os.fstat(first).st_ino
        assert os.pread(first, 100, 0) == b"[1,2,3]\n"
        for fd in (first, second, third):
            os.close(fd)
    finally:
        listing.close()
