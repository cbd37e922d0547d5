"""The standard D-Bus interfaces the helper's object answers itself.

Introspectable, Properties and Peer, beside the contract's own interface:
the introspection is the shipped contract XML plus these; Properties serves
the contract's read-only properties.  Nothing here repeats a caller's input
uncut.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

from dbus_fast import Message, Variant

from tungui_contract.bus import INTERFACE, OBJECT_PATH, interface_xml
from tungui_contract.errors import shown

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
PEER = "org.freedesktop.DBus.Peer"
DBUS_INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
DBUS_UNKNOWN_PROPERTY = "org.freedesktop.DBus.Error.UnknownProperty"
DBUS_PROPERTY_READ_ONLY = "org.freedesktop.DBus.Error.PropertyReadOnly"
DBUS_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
DBUS_FAILED = "org.freedesktop.DBus.Error.Failed"

#: Where the machine id is kept (systemd's, then D-Bus's own).
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@functools.cache
def introspection() -> str:
    """The object's introspection: the contract plus the standard interfaces.

    Built once: parsing and printing the XML costs about 0.3 ms, a hundred
    times what sending it does, and anyone may ask for it as often as the
    bus lets them.
    """
    # Our own shipped file and constants below; nothing from a caller.
    root = ET.fromstring(interface_xml())  # noqa: S314
    for name, xml in _STANDARD_INTERFACES.items():
        if root.find(f"interface[@name='{name}']") is None:
            root.append(ET.fromstring(xml))  # noqa: S314
    return _DOCTYPE + ET.tostring(root, encoding="unicode")


def introspection_reply(msg: Message) -> Message:
    """The answer to Introspect on the helper's object."""
    return Message.new_method_return(msg, "s", [introspection()])


def peer_reply(msg: Message) -> Message:
    """org.freedesktop.DBus.Peer, on any path.

    Answered here rather than by dbus-fast: 1.84's GetMachineId fails on its
    second call and replies with a traceback.
    """
    if msg.member == "Ping" and msg.signature == "":
        return Message.new_method_return(msg)
    if msg.member == "GetMachineId" and msg.signature == "":
        machine_id = _machine_id()
        if machine_id is None:
            return Message.new_error(msg, DBUS_FAILED, "This machine has no machine id.")
        return Message.new_method_return(msg, "s", [machine_id])
    return Message.new_error(
        msg, DBUS_UNKNOWN_METHOD, f"No method {shown(msg.member or '')} in {PEER}."
    )


@functools.cache
def _machine_id() -> str | None:
    for path in MACHINE_ID_FILES:
        try:
            text = path.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
    return None


def is_parent_introspection(msg: Message) -> bool:
    """Whether ``msg`` introspects a path above the helper's object."""
    return msg.interface == INTROSPECTABLE and OBJECT_PATH.startswith(
        (msg.path or "").rstrip("/") + "/"
    )


def parent_introspection_reply(msg: Message) -> Message:
    """The answer to introspecting a path above the object: its one child on the way."""
    prefix = (msg.path or "").rstrip("/") + "/"
    child = OBJECT_PATH[len(prefix) :].split("/", 1)[0]
    xml = f'{_DOCTYPE}<node><node name="{child}"/></node>'
    return Message.new_method_return(msg, "s", [xml])


def properties_reply(msg: Message, properties: Mapping[str, Callable[[], Variant]]) -> Message:
    """The answer to a Properties call, from the getters of the read-only properties."""
    if msg.member == "GetAll" and msg.signature == "s":
        values = {n: g() for n, g in properties.items()} if msg.body[0] == INTERFACE else {}
        return Message.new_method_return(msg, "a{sv}", [values])
    if msg.member == "Get" and msg.signature == "ss":
        getter = properties.get(msg.body[1]) if msg.body[0] == INTERFACE else None
        if getter is None:
            return Message.new_error(
                msg, DBUS_UNKNOWN_PROPERTY, f"No property {shown(msg.body[1])}."
            )
        return Message.new_method_return(msg, "v", [getter()])
    if msg.member == "Set":
        return Message.new_error(msg, DBUS_PROPERTY_READ_ONLY, "The properties are read-only.")
    return Message.new_error(
        msg, DBUS_INVALID_ARGS, f"No method {msg.member} with those arguments."
    )


_DOCTYPE = (
    '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
    ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n'
)

_STANDARD_INTERFACES = {
    INTROSPECTABLE: f"""<interface name="{INTROSPECTABLE}">
  <method name="Introspect"><arg name="xml_data" type="s" direction="out"/></method>
</interface>""",
    PEER: f"""<interface name="{PEER}">
  <method name="Ping"/>
  <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>
</interface>""",
    PROPERTIES: f"""<interface name="{PROPERTIES}">
  <method name="Get">
    <arg name="interface_name" type="s" direction="in"/>
    <arg name="property_name" type="s" direction="in"/>
    <arg name="value" type="v" direction="out"/>
  </method>
  <method name="GetAll">
    <arg name="interface_name" type="s" direction="in"/>
    <arg name="properties" type="a{{sv}}" direction="out"/>
  </method>
  <method name="Set">
    <arg name="interface_name" type="s" direction="in"/>
    <arg name="property_name" type="s" direction="in"/>
    <arg name="value" type="v" direction="in"/>
  </method>
  <signal name="PropertiesChanged">
    <arg name="interface_name" type="s"/>
    <arg name="changed_properties" type="a{{sv}}"/>
    <arg name="invalidated_properties" type="as"/>
  </signal>
</interface>""",
}
