"""The device list in the two forms the helper sends it.

ListDevices answers with ``aa{sv}``: with 1,000 devices a 520 KB body of
about 21,000 variants, which dbus-daemon validates and the client unwraps
one variant at a time.  ListDevicesByFileDescriptor answers with a sealed
memfd holding the same list as JSON (a third smaller, and parsed by the
standard library's C decoder), the way systemd's DumpByFileDescriptor
passes a reply too large for the bus.  Both are built from the same dicts,
with the same text (:func:`to_wire`), and each device's part is built again
only when the device changed.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Variant

from tungui_contract.keys import DEVICE_SIGNATURES

from .bustext import bus_text, listed_name

#: Keys whose value is a device's name, listed as callers address it.
NAME_KEYS = frozenset({"name", "master"})

#: Seals of a listing file: nobody can change it, nor the seals.
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def to_wire(device: dict[str, Any]) -> dict[str, Any]:
    """A device dict with its text made safe for the bus."""
    wired = {}
    for key, value in device.items():
        signature = DEVICE_SIGNATURES[key]
        if key in NAME_KEYS:
            value = listed_name(value)
        elif signature == "s":
            value = bus_text(value)
        elif signature == "as":
            value = [bus_text(v) for v in value]
        wired[key] = value
    return wired


def to_variants(device: dict[str, Any]) -> dict[str, Variant]:
    """A device dict as D-Bus variants, its text made safe for the bus."""
    # The types are ours and fixed; the marshaller checks them anyway.
    return {
        key: Variant(DEVICE_SIGNATURES[key], value, verify=False)
        for key, value in to_wire(device).items()
    }


def to_json(device: dict[str, Any]) -> bytes:
    """A device dict as one JSON object (ASCII; its text as :func:`to_wire` gives it)."""
    return json.dumps(to_wire(device), separators=(",", ":")).encode("ascii")


@dataclass
class _Forms:
    device: dict[str, Any]
    variants: dict[str, Variant] | None = None
    json: bytes | None = None


@dataclass
class DeviceForms:
    """Each device's variants and JSON, kept until the device changes or goes."""

    _forms: dict[int, _Forms] = field(default_factory=dict)

    def _of(self, device: dict[str, Any]) -> _Forms:
        index = int(device["index"])
        forms = self._forms.get(index)
        if forms is None or forms.device != device:
            forms = self._forms[index] = _Forms(device)
        return forms

    def variants(self, device: dict[str, Any]) -> dict[str, Variant]:
        forms = self._of(device)
        if forms.variants is None:
            forms.variants = to_variants(device)
        return forms.variants

    def json(self, device: dict[str, Any]) -> bytes:
        forms = self._of(device)
        if forms.json is None:
            forms.json = to_json(device)
        return forms.json

    def listing(self, devices: list[dict[str, Any]]) -> bytes:
        """The JSON of a whole device list: an array of the devices' objects."""
        return b"[" + b",".join(self.json(d) for d in devices) + b"]\n"

    def forget(self, index: int) -> None:
        """Drop a removed link's forms."""
        self._forms.pop(index, None)


def sealed_file(name: str, data: bytes) -> int:
    """A new memfd holding ``data``, sealed against any change, read from its start."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class SharedListing:
    """The last listing in one sealed memfd, opened anew for every caller.

    Every caller reads the same file, so callers that keep their
    descriptors keep one listing's pages, not one each; a caller can only
    pin the listings that existed while it asked.  Each gets an open file
    of its own (through ``/proc/self/fd``), read-only and at offset 0, so no
    reader moves another's offset.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._fd = -1
        self._key: object = None

    def open(self, key: object, build: Callable[[], bytes]) -> int:
        """A read-only descriptor of the listing for ``key``; ``build`` makes a new one."""
        if self._fd < 0 or key != self._key:
            fd = sealed_file(self._name, build())
            self.close()
            self._fd, self._key = fd, key
        return os.open(f"/proc/self/fd/{self._fd}", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Let the helper's own copy go (callers keep theirs)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd, self._key = -1, None
