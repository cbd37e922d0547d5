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


# --------------------------------------------------------------------- limits
# Every caller-supplied value is capped by size before any other work is
# done on it, and before polkit is asked (docs/security.md): a free or
# refused call must cost the helper no more than a well-formed one.

#: The kernel's IFNAMSIZ: interface names have at most 15 bytes.
IFNAMSIZ = 16
#: Interface MTU bounds the kernel enforces for tun/tap and bridges.
MIN_MTU = 68
MAX_MTU = 65535
#: Characters of a device name as callers send it: the escaped form of
#: :func:`escape_name` takes at most 4 characters per byte.
TARGET_MAX_CHARS = 4 * (IFNAMSIZ - 1)
#: Addresses one CreateDevice, CreateBridge or ConfigureDevice may carry.
MAX_ADDRESSES = 256
#: The longest address in CIDR notation (an IPv6 address with an embedded
#: IPv4 one and a /128 is 49).
ADDRESS_MAX_CHARS = 64
#: "02:00:5e:10:00:01".
MAC_CHARS = 17
#: Bytes a program may write to a TUN/TAP device at most: packet
#: information (4), a virtio-net header (10), an Ethernet header with a
#: VLAN tag (18) and the largest MTU.  InjectPacket's bound for one device
#: is tighter (its own MTU and headers); this one is checked first.
MAX_PACKET = 4 + 10 + 18 + MAX_MTU


# ----------------------------------------------------------------- names


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
            1.84, which cannot send other text; see ``wire.py``).
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
