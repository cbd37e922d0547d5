"""Every name of the D-Bus contract, in one place.

The interface itself is written once, as introspection XML in
``resources/dbus/io.github.tungui.Helper1.xml`` (shipped inside this package
as ``io.github.tungui.Helper1.xml``).  The helper serves exactly that file and
the client builds its calls from it; this module holds the names around it:
bus name, object path, polkit action ids and error names.
"""

from __future__ import annotations

import enum
import functools
from importlib import resources

BUS_NAME = "io.github.tungui.Helper1"
INTERFACE = "io.github.tungui.Helper1"
OBJECT_PATH = "/io/github/tungui/Helper1"
APP_ID = "io.github.tungui.TunGui"

SIGNAL_DEVICES_CHANGED = "DevicesChanged"

POLKIT_BUS_NAME = "org.freedesktop.PolicyKit1"
POLKIT_PATH = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_INTERFACE = "org.freedesktop.PolicyKit1.Authority"


class Action(enum.StrEnum):
    """polkit action ids (see resources/polkit/io.github.tungui.policy)."""

    #: Create, change and remove devices and bridges tungui created.
    MANAGE = "io.github.tungui.manage"
    #: Change or remove devices tungui did not create (a NIC, another
    #: program's TUN), or put a device into such a bridge.
    MANAGE_FOREIGN = "io.github.tungui.manage-foreign"
    #: Read packet bytes from a device (private data).
    CAPTURE = "io.github.tungui.capture"


class ErrorName(enum.StrEnum):
    """D-Bus error names the helper replies with."""

    INVALID_ARGUMENT = "io.github.tungui.Error.InvalidArgument"
    NOT_FOUND = "io.github.tungui.Error.NotFound"
    EXISTS = "io.github.tungui.Error.Exists"
    NOT_AUTHORIZED = "io.github.tungui.Error.NotAuthorized"
    FAILED = "io.github.tungui.Error.Failed"
    #: A per-user cap was reached (captures, held queues, calls in flight).
    LIMITS_EXCEEDED = "io.github.tungui.Error.LimitsExceeded"


INTERFACE_XML_RESOURCE = "io.github.tungui.Helper1.xml"


@functools.cache
def interface_xml() -> str:
    """Return the introspection XML of the contract, as shipped."""
    return resources.files(__package__).joinpath(INTERFACE_XML_RESOURCE).read_text("utf-8")
