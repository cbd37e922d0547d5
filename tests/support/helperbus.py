"""Calls to the helper from the test process (root), as a plain D-Bus peer."""

from __future__ import annotations

import os
from typing import Any

from dbus_fast import Variant

from tungui_contract.bus import BUS_NAME, INTERFACE, OBJECT_PATH
from tungui_contract.keys import SPEC_SIGNATURES

from .buscall import bus_call


def call(member: str, signature: str = "", *body: Any) -> list[Any]:
    """Call a helper method on a connection of its own (closed after the reply)."""
    address = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
    return bus_call(address, BUS_NAME, OBJECT_PATH, INTERFACE, member, signature, body)


def variants(**values: Any) -> dict[str, Variant]:
    """A spec or change set in the contract's D-Bus types."""
    return {key: Variant(SPEC_SIGNATURES[key], value) for key, value in values.items()}


def create(**values: Any) -> str:
    """CreateDevice; returns the name."""
    return str(call("CreateDevice", "a{sv}", variants(**values))[0])


def create_bridge(**values: Any) -> str:
    """CreateBridge; returns the name."""
    return str(call("CreateBridge", "a{sv}", variants(**values))[0])


def devices() -> dict[str, dict[str, Any]]:
    """ListDevices, by name, unwrapped."""
    return {d["name"].value: {k: v.value for k, v in d.items()} for d in call("ListDevices")[0]}


def busctl_argv(address: str, member: str, *args: str) -> list[str]:
    """A busctl command line calling the helper (busctl allows interactive auth)."""
    return [
        "busctl",
        f"--address={address}",
        "call",
        BUS_NAME,
        OBJECT_PATH,
        INTERFACE,
        member,
        *args,
    ]
