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
import struct
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


#: D-Bus signature of each key a CreateDevice spec or a ConfigureDevice
#: change set may carry.
SPEC_SIGNATURES: dict[str, str] = {
    "name": "s",
    "mode": "s",
    "persist": "b",
    "owner": "i",
    "group": "i",
    "pi": "b",
    "vnet_hdr": "b",
    "multi_queue": "b",
    "queues": "u",
    "mtu": "u",
    "mac": "s",
    "addresses": "as",
    "up": "b",
    "master": "s",
}

#: D-Bus signature of every key of a device dict that ListDevices and
#: DevicesChanged report (see docs/dbus.md for their meaning).
DEVICE_SIGNATURES: dict[str, str] = {
    "name": "s",
    "index": "u",
    "kind": "s",
    "managed": "b",
    "operstate": "s",
    "up": "b",
    "mtu": "u",
    "mac": "s",
    "addresses": "as",
    "master": "s",
    "mode": "s",
    "persist": "b",
    "owner": "i",
    "group": "i",
    "pi": "b",
    "vnet_hdr": "b",
    "multi_queue": "b",
    "queues_attached": "u",
    "disabled_queues": "u",
    "held": "b",
    "transient": "b",
}


#: Each message on a capture stream (StartCapture) begins with this header
#: (native byte order): packets dropped so far, by the kernel or because
#: the reader was slow (u32); packets left out so far by sampling (u32,
#: estimated when the kernel samples); the format of the rest (u32, below);
#: and a reserved u32 (0).  docs/dbus.md describes both formats;
#: tungui.capture reads them.
CAPTURE_HEADER = struct.Struct("=IIII")
#: The rest is one TPACKET_V3 block exactly as the kernel filled it (a
#: packet socket's ring: devices the helper does not hold).
CAPTURE_FORMAT_BLOCK = 0
#: The rest is packets the helper read from a device it holds: a
#: CAPTURE_SLOTS header, a u32 length per packet (bit 31 set for a packet
#: going into the device, that the helper wrote for InjectPacket), padding
#: to 8 bytes, a u64 timestamp per packet (ns, CLOCK_REALTIME, taken when
#: the reader woke for it), then one slot of ``stride`` bytes per packet:
#: ``prefix`` bytes of packet information / virtio-net header, then the
#: packet, of which ``snaplen`` bytes count.
CAPTURE_FORMAT_SLOTS = 1
#: count, stride, prefix, snaplen.
CAPTURE_SLOTS = struct.Struct("=IIII")
#: The one message a reader may write on its stream: the packets a second it
#: wants at most from now on (0: every packet), as StartCapture's max_rate.
CAPTURE_RATE = struct.Struct("=I")
CAPTURE_MAX_SNAPLEN = 262144
CAPTURE_MIN_SNAPLEN = 64
#: No message on a capture stream is longer.
CAPTURE_MESSAGE_MAX = CAPTURE_HEADER.size + (1 << 18)
