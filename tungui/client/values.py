"""Python values to the D-Bus types the contract gives each key, and back.

dbus-fast 1.84 (Debian 12) can send ASCII text only: text is checked here,
before it is sent, so a caller gets a sentence rather than a lost connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbus_fast import Message, Variant

from tungui_contract.errors import InvalidArgument
from tungui_contract.ifname import counts_characters
from tungui_contract.keys import SPEC_SIGNATURES

#: True with dbus-fast 1.84, which can send ASCII text only.
ASCII_ONLY = counts_characters(
    lambda text: bytes(
        Message(
            path="/", interface="a.b", member="M", signature="s", body=[text], serial=1
        )._marshall(False)
    )
)


def text(value: str) -> str:
    """``value``, if this version of dbus-fast can send it.

    Raises:
        InvalidArgument: it is not ASCII and dbus-fast is 1.84.
    """
    # dbus-fast 1.84 would send a malformed message and lose the connection.
    if ASCII_ONLY and not value.isascii():
        raise InvalidArgument(
            f"{value!a} is not ASCII, which this version of dbus-fast cannot send."
        )
    return value


def to_spec(values: Mapping[str, Any]) -> dict[str, Variant]:
    """Wrap a spec or change set in the D-Bus types the contract gives each key.

    Raises:
        InvalidArgument: for a key the contract does not know.
    """
    spec = {}
    for key, value in values.items():
        signature = SPEC_SIGNATURES.get(key)
        if signature is None:
            raise InvalidArgument(f"Unknown key {key!r}.")
        if signature == "as":
            value = [text(str(v)) for v in value]
        elif signature == "s":
            value = text(value)
        spec[key] = Variant(signature, value)
    return spec


def from_variants(values: Mapping[str, Variant]) -> dict[str, Any]:
    """Unwrap a device dict."""
    return {key: variant.value for key, variant in values.items()}
