"""What a hostile local user sends the helper: well-formed, malformed and huge calls, and fds.

The messages of ``hostile_client.py``, which runs as ``nobody``: this module
uses dbus-fast and the standard library only, never tungui or tungui_helper,
and knows the helper as any local user can, from the contract the test hands
over (:class:`Contract`).  Every choice comes from one seeded
``random.Random``, so a run is replayed from its seed.

Sizes are bounded so that one message stays under dbus-daemon's 32 MiB
message limit (a bigger one costs the *sender* its connection, which proves
nothing about the helper) and so that dbus-fast's own unmarshalling, which
runs before any helper code can look at a message, stays in the tens of
milliseconds on a slow machine: 100,000 addresses in an ``as`` take 7 to 16 ms
to unmarshal, but a dict of 100,000 variants 60 to 280 ms, so huge dicts are
capped at :data:`HUGE_KEYS` keys (a few ms; with 20,000 keys of 400 bytes, root's
calls waited up to 88 ms behind one).
"""

from __future__ import annotations

import math
import os
import random
import struct
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType, Variant

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
PEER = "org.freedesktop.DBus.Peer"

#: dbus-daemon's max_message_unix_fds: a message with more costs the sender its connection.
MAX_FDS = 16
#: Keys of the biggest dict sent (see the module's docstring).
HUGE_KEYS = 10_000
#: Smallest "huge" message, in bytes.
HUGE_MIN = 64 * 1024

#: Complete D-Bus types a wrong signature is made of (no ``h``: fds go separately).
JUNK_TYPES = (
    *("s", "u", "i", "b", "y", "t", "d", "o", "g"),
    *("as", "ay", "a{sv}", "a{ss}", "(su)", "v"),
)
#: Types a variant of a wrong type holds.
VARIANT_TYPES = ("s", "u", "i", "b", "y", "t", "d", "as", "ay", "a{sv}", "(ii)")
#: Fillers of huge strings: plain, a control byte (a repr() makes 4 characters
#: of it), a backslash and a quote (each escaped), and non-ASCII text.
FILLERS = ("a", "\x01", "\\", '"', "\u00e9", "\U0001f600")


@dataclass(frozen=True)
class Contract:
    """What any local user can learn about the helper, as the test hands it over.

    Args:
        members: each method of the interface XML and its in-signature.
        free: the methods that need no authorization.
        dict_keys: for each method taking an ``a{sv}``, its keys and their types.
        targets: names of devices that exist in the helper's namespace.
    """

    bus_name: str
    path: str
    interface: str
    members: dict[str, str]
    free: tuple[str, ...]
    dict_keys: dict[str, dict[str, str]]
    targets: tuple[str, ...]


@dataclass
class Outgoing:
    """One message to send: what it is, and the fds of ours it carries (closed once sent)."""

    kind: str
    variant: str
    message: Message
    fds: list[int] = field(default_factory=list)
    #: How big it is, for huge messages.
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.variant}"


def complete_types(signature: str) -> list[str]:
    """Split a signature into its complete types: ``"sa{sv}"`` -> ``["s", "a{sv}"]``."""
    types: list[str] = []
    start = 0
    while start < len(signature):
        end = _type_end(signature, start)
        types.append(signature[start:end])
        start = end
    return types


def _type_end(signature: str, start: int) -> int:
    code = signature[start]
    if code == "a":
        return _type_end(signature, start + 1)
    if code in "({":
        close = ")" if code == "(" else "}"
        at = start + 1
        while signature[at] != close:
            at = _type_end(signature, at)
        return at + 1
    return start + 1


def marshals_unicode(message_class: type[Message] = Message) -> bool:
    """Whether this dbus-fast writes a string's length in bytes, as D-Bus wants.

    dbus-fast 1.84 (Debian 12) counts characters, so a message with non-ASCII
    text is malformed and dbus-daemon drops its sender: with it, the client
    sends ASCII only (control bytes still make repr() grow fourfold).
    """
    probe = message_class(path="/", interface="a.b", member="M", signature="s", body=["\u00e9"])
    probe.serial = 1
    try:
        data = bytes(probe._marshall(False))
    except Exception:  # a private API: assume the fixed behaviour if it moved
        return True
    return int.from_bytes(data[-7:-3], "little" if data[:1] == b"l" else "big") == 2


class Mischief:
    """Builds the messages of one connection from its own seeded generator.

    Args:
        rng: the connection's generator.
        contract: the helper's contract.
        unicode: whether non-ASCII text may be sent (see :func:`marshals_unicode`).
        huge_bytes: the largest of the random huge arguments, in bytes.
        biggest_bytes: the size of the biggest ones (:meth:`huge` with ``biggest``).
        huge_items: the most addresses in one list.
    """

    def __init__(
        self,
        rng: random.Random,
        contract: Contract,
        *,
        unicode: bool,
        huge_bytes: int,
        biggest_bytes: int,
        huge_items: int,
    ) -> None:
        self.rng = rng
        self.contract = contract
        self.fillers = FILLERS if unicode else tuple(f for f in FILLERS if f.isascii())
        self.huge_bytes = huge_bytes
        self.biggest_bytes = biggest_bytes
        self.huge_items = huge_items

    # ------------------------------------------------------------ building blocks

    def message(
        self,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
        *,
        interface: str | None = "",
        path: str = "",
        flags: int = 0,
        fds: list[int] | None = None,
    ) -> Message:
        """A method call to the helper (its interface and path unless given)."""
        return Message(
            destination=self.contract.bus_name,
            path=path or self.contract.path,
            interface=self.contract.interface if interface == "" else interface,
            member=member,
            signature=signature,
            body=body or [],
            flags=MessageFlag(flags),
            unix_fds=fds or [],
        )

    def flags(self) -> int:
        """Flags of a call: often interactive authorization, sometimes no reply wanted."""
        flags = 0
        if self.rng.random() < 0.3:
            flags |= int(MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        if self.rng.random() < 0.1:
            flags |= int(MessageFlag.NO_REPLY_EXPECTED)
        return flags

    def text(self) -> str:
        """A short string: a device's name, a name the helper should refuse, or junk."""
        rng = self.rng
        choices = [
            lambda: rng.choice(self.contract.targets) if self.contract.targets else "lo",
            lambda: f"h{rng.randrange(10_000)}",
            lambda: rng.choice(["tap%d", "tun%d", "br%d", "%d%d", "x%s", "lo", "wg0", "docker0"]),
            lambda: rng.choice(["", ".", "..", "a/b", "a:b", "a b", "tg\\xff", "-" * 16, "\t"]),
            lambda: "".join(chr(rng.randrange(1, 128)) for _ in range(rng.randrange(1, 40))),
            lambda: rng.choice(self.fillers) * rng.randrange(1, 300),
        ]
        return rng.choice(choices)()

    def address(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                f"192.0.2.{rng.randrange(256)}/{rng.randrange(0, 33)}",
                f"198.51.100.{rng.randrange(256)}/{rng.randrange(0, 33)}",
                f"2001:db8::{rng.randrange(65536):x}/{rng.randrange(0, 129)}",
                rng.choice(["192.0.2.1", "224.0.0.1/4", "0.0.0.0/0", "::/0", "300.1.2.3/8", "x"]),
            ]
        )

    def value(self, signature: str) -> Any:
        """A random value of any D-Bus type but ``h``."""
        rng = self.rng
        code = signature[0]
        if code == "a":
            inner = signature[1:]
            if inner == "y":
                return rng.randbytes(rng.randrange(64))
            if inner[0] == "{":
                key, val = complete_types(inner[1:-1])
                return {self.value(key): self.value(val) for _ in range(rng.randrange(5))}
            return [self.value(inner) for _ in range(rng.randrange(5))]
        if code == "(":
            return [self.value(t) for t in complete_types(signature[1:-1])]
        if code == "v":
            inner = rng.choice(VARIANT_TYPES)
            return Variant(inner, self.value(inner))
        simple: dict[str, Any] = {
            "s": self.text,
            "o": lambda: rng.choice(["/", "/io", self.contract.path, "/a/b_c/d1"]),
            "g": lambda: rng.choice(["", "s", "a{sv}", "(ii)"]),
            "b": lambda: rng.random() < 0.5,
            "y": lambda: rng.randrange(256),
            "n": lambda: rng.randrange(-(2**15), 2**15),
            "q": lambda: rng.randrange(2**16),
            "i": lambda: rng.choice([-1, 0, 1, 65534, 2**31 - 1, -(2**31)]),
            "u": lambda: rng.choice([0, 1, 68, 100, 1500, 65535, 65536, 2**32 - 1]),
            "x": lambda: rng.randrange(-(2**63), 2**63),
            "t": lambda: rng.randrange(2**64),
            "d": lambda: rng.uniform(-1e9, 1e9),
        }
        return simple[code]()

    def entry(self, key: str, signature: str) -> Any:
        """A plausible value for a known key of a spec or change set."""
        rng = self.rng
        if key == "mode":
            return rng.choice(["tun", "tap", "bridge", ""])
        if key == "mac":
            return rng.choice(["02:00:5e:10:00:01", "01:00:5e:00:00:01", "00:00:00:00:00:00", "zz"])
        if key == "addresses":
            return [self.address() for _ in range(rng.randrange(4))]
        if key in ("owner", "group"):
            return rng.choice([-1, 0, 65534, 1000, 2**31 - 1, -2])
        return self.value(signature)

    def spec(self, member: str) -> dict[str, Variant]:
        """A well-typed a{sv} for ``member``: some of its known keys."""
        keys = self.contract.dict_keys.get(member, {})
        chosen = self.rng.sample(sorted(keys), self.rng.randrange(len(keys) + 1))
        return {k: Variant(keys[k], self.entry(k, keys[k])) for k in chosen}

    def args(self, member: str) -> list[Any]:
        """Well-typed arguments of ``member``."""
        body: list[Any] = []
        for signature in complete_types(self.contract.members[member]):
            if signature == "a{sv}":
                body.append(self.spec(member))
            elif signature == "ay":
                body.append(self.rng.randbytes(self.rng.choice([0, 14, 20, 60, 1514, 4000])))
            else:
                body.append(self.value(signature))
        return body

    def huge_size(self) -> int:
        """Bytes of a huge argument, log-uniform from :data:`HUGE_MIN` to the largest."""
        low, high = math.log(HUGE_MIN), math.log(self.huge_bytes)
        return int(math.exp(self.rng.uniform(low, high)))

    def huge_text(self, size: int, filler: str | None = None) -> str:
        filler = filler or self.rng.choice(self.fillers)
        return filler * max(1, size // len(filler.encode()))

    def dict_member(self) -> str:
        return self.rng.choice(sorted(self.contract.dict_keys))

    def dict_call(self, member: str, entries: dict[str, Variant], flags: int = 0) -> Message:
        """``member`` with ``entries`` as its a{sv} (after a device's name if it takes one)."""
        signature = self.contract.members[member]
        body: list[Any] = [entries]
        if signature != "a{sv}":
            body.insert(0, self.text())
        return self.message(member, signature, body, flags=flags)

    # ------------------------------------------------------------ the kinds

    def well_formed(self) -> Outgoing:
        """A call of any method of the interface, with arguments of the right types."""
        member = self.rng.choice(sorted(self.contract.members))
        message = self.message(
            member, self.contract.members[member], self.args(member), flags=self.flags()
        )
        return Outgoing("call", member, message)

    def free_call(self) -> Outgoing:
        """A call that needs no authorization: a free method, Introspect or GetAll."""
        rng = self.rng
        member = rng.choice([*self.contract.free, "Introspect", "GetAll"])
        if member == "Introspect":
            message = self.message(member, interface=INTROSPECTABLE)
        elif member == "GetAll":
            message = self.message(member, "s", [self.contract.interface], interface=PROPERTIES)
        else:
            message = self.message(member, self.contract.members[member], self.args(member))
        return Outgoing("free", member, message)

    def malformed(self) -> Outgoing:
        """A call the helper must refuse for its form: types, keys, names, paths."""
        rng = self.rng
        variant = rng.choice(
            [
                "wrong-signature",
                "unknown-key",
                "read-only-key",
                "wrong-variant",
                "unknown-method",
                "unknown-interface",
                "unknown-path",
                "properties",
                "peer",
                "no-interface",
            ]
        )
        message = getattr(self, "_" + variant.replace("-", "_"))()
        return Outgoing("malformed", variant, message)

    def _wrong_signature(self) -> Message:
        member = self.rng.choice(sorted(self.contract.members))
        signature = self.contract.members[member]
        while signature == self.contract.members[member]:
            signature = "".join(self.rng.choices(JUNK_TYPES, k=self.rng.randrange(4)))
        body = [self.value(t) for t in complete_types(signature)]
        return self.message(member, signature, body, flags=self.flags())

    def _unknown_key(self) -> Message:
        entries = self.spec(member := self.dict_member())
        for _ in range(self.rng.randrange(1, 4)):
            entries[self.text() or "nokey"] = self.value("v")
        return self.dict_call(member, entries, self.flags())

    def _read_only_key(self) -> Message:
        entries = self.spec(member := self.dict_member())
        key = self.rng.choice(["index", "kind", "managed", "operstate", "held", "transient"])
        entries[key] = Variant("u", 1)
        return self.dict_call(member, entries, self.flags())

    def _wrong_variant(self) -> Message:
        member = self.dict_member()
        keys = self.contract.dict_keys[member]
        entries = self.spec(member)
        key = self.rng.choice(sorted(keys))
        wrong = self.rng.choice([t for t in VARIANT_TYPES if t != keys[key]])
        entries[key] = Variant(wrong, self.value(wrong))
        return self.dict_call(member, entries, self.flags())

    def _unknown_method(self) -> Message:
        member = self.rng.choice(["Nope", "ListDevices2", "CreateDevices", "Kill", "_private"])
        return self.message(member, *self._junk_body())

    def _unknown_interface(self) -> Message:
        interface = self.rng.choice(
            ["org.example.Nope", self.contract.interface + "2", "io.github.tungui", PEER + "x"]
        )
        member = self.rng.choice([*sorted(self.contract.members), "Get", "Ping"])
        return self.message(member, *self._junk_body(), interface=interface)

    def _unknown_path(self) -> Message:
        path = self.rng.choice(["/", "/io", "/io/github/tungui", self.contract.path + "/x", "/a"])
        if self.rng.random() < 0.5:
            return self.message("Introspect", interface=INTROSPECTABLE, path=path)
        return self.message("ListDevices", path=path)

    def _properties(self) -> Message:
        rng = self.rng
        interface = rng.choice([self.contract.interface, "org.example.Nope", "", self.text()])
        name = rng.choice(["Version", "Devices", "", self.text()])
        calls: list[tuple[str, str, list[Any]]] = [
            ("Get", "ss", [interface, name]),
            ("Set", "ssv", [interface, name, self.value("v")]),
            ("GetAll", "s", [interface]),
            ("GetAll", "", []),
            ("Get", "s", [name]),
            ("Remove", "s", [name]),
        ]
        member, signature, body = rng.choice(calls)
        return self.message(member, signature, body, interface=PROPERTIES)

    def _peer(self) -> Message:
        member = self.rng.choice(["Ping", "GetMachineId", "Introspect"])
        interface = INTROSPECTABLE if member == "Introspect" else PEER
        return self.message(member, *self._junk_body(), interface=interface)

    def _no_interface(self) -> Message:
        member = self.rng.choice([*sorted(self.contract.members), "Introspect", "Nope"])
        return self.message(member, *self._junk_body(), interface=None)

    def _junk_body(self) -> tuple[str, list[Any]]:
        if self.rng.random() < 0.5:
            return "", []
        signature = "".join(self.rng.choices(JUNK_TYPES, k=self.rng.randrange(1, 3)))
        return signature, [self.value(t) for t in complete_types(signature)]

    # ------------------------------------------------------------ huge

    HUGE_VARIANTS = (
        "name",
        "spec-name",
        "unknown-key",
        "addresses",
        "dict",
        "packet",
        "property",
        "strings",
    )

    def huge(self, variant: str | None = None, *, biggest: bool = False) -> Outgoing:
        """A call with an argument of megabytes or of a hundred thousand items."""
        variant = variant or self.rng.choice(self.HUGE_VARIANTS)
        size = self.biggest_bytes if biggest else self.huge_size()
        # The biggest are of control bytes: what a repr() of them makes is 4x bigger.
        filler = "\x01" if biggest else None
        rng = self.rng
        detail = f"{size} bytes"
        if variant == "name":
            member = rng.choice(
                [m for m, s in self.contract.members.items() if s.startswith("s")] or ["Nope"]
            )
            body = self.args(member)
            body[0] = self.huge_text(size, filler)
            message = self.message(member, self.contract.members[member], body)
        elif variant == "spec-name":
            named = {
                m: k for m, k in self.contract.dict_keys.items() if {"name", "master"} & set(k)
            }
            member = rng.choice(sorted(named))
            key = rng.choice(sorted({"name", "master"} & set(named[member])))
            entries = {key: Variant("s", self.huge_text(size, filler))}
            if "mode" in self.contract.dict_keys[member]:
                entries["mode"] = Variant("s", "tap")
            message = self.dict_call(member, entries)
        elif variant == "unknown-key":
            member = self.dict_member()
            message = self.dict_call(member, {self.huge_text(size, filler): Variant("b", True)})
        elif variant == "addresses":
            member = rng.choice(
                [m for m, keys in self.contract.dict_keys.items() if "addresses" in keys]
            )
            count = self.huge_items if biggest else rng.randrange(1_000, self.huge_items + 1)
            entries = {"addresses": Variant("as", self.many_addresses(count))}
            detail = f"{count} addresses"
            if "mode" in self.contract.dict_keys[member]:
                entries["mode"] = Variant("s", "tap")
            message = self.dict_call(member, entries, self.flags())
        elif variant == "dict":
            keys = HUGE_KEYS if biggest else rng.randrange(1_000, HUGE_KEYS + 1)
            length = max(8, min(400, size // keys - 16))
            entries = {f"{i:08d}".ljust(length, "k"): Variant("u", i) for i in range(keys)}
            detail = f"{keys} keys of {length} bytes"
            message = self.dict_call(self.dict_member(), entries)
        elif variant == "packet":
            member = "InjectPacket" if "InjectPacket" in self.contract.members else "Nope"
            target = rng.choice(self.contract.targets) if self.contract.targets else "lo"
            message = self.message(member, "say", [target, rng.randbytes(16) * (size // 16)])
        elif variant == "property":
            name = self.huge_text(size, filler)
            body = rng.choice([[self.contract.interface, name], [name, "Version"]])
            message = self.message("Get", "ss", body, interface=PROPERTIES)
        else:  # "strings": a free method given a huge array it does not take
            count = max(1, min(size // 24, self.huge_items))
            detail = f"{count} strings"
            message = self.message("ListDevices", "as", [[f"{i:016d}" for i in range(count)]])
        return Outgoing("huge", variant, message, detail=detail)

    def many_addresses(self, count: int) -> list[str]:
        """``count`` distinct addresses in documentation ranges (IPv6 2001:db8::/32 mostly)."""
        start = self.rng.randrange(2**16)
        return [
            f"2001:db8:{(start + i) >> 16 & 0xFFFF:x}:{(start + i) & 0xFFFF:x}::1/64"
            for i in range(count)
        ]

    # ------------------------------------------------------------ fds

    def with_fds(self) -> Outgoing:
        """A message to the helper carrying 1 to 16 of our pipe ends: a signal, a call, or
        a reply or error it never asked for."""
        rng = self.rng
        count = rng.randint(1, MAX_FDS)
        fds: list[int] = []
        while len(fds) < count:
            fds.extend(os.pipe())
        del fds[count:]  # an odd count: close the extra end
        variant = rng.choice(["signal", "call", "call-h", "reply", "error"])
        interface = rng.choice([self.contract.interface, "org.example.Nope"])
        common: dict[str, Any] = {"destination": self.contract.bus_name, "unix_fds": fds}
        referenced = rng.random() < 0.5
        signature = "h" * count if referenced else ""
        body = list(range(count)) if referenced else []
        if variant == "signal":
            message = Message(
                message_type=MessageType.SIGNAL,
                path=self.contract.path,
                interface=interface,
                member=rng.choice(["DevicesChanged", "Statistics", "Junk"]),
                signature=signature,
                body=body,
                **common,
            )
        elif variant in ("call", "call-h"):
            member = rng.choice([*sorted(self.contract.members), "Nope"])
            if variant == "call-h":
                signature, body = "h" * count, list(range(count))
            message = self.message(member, signature, body, flags=self.flags(), fds=fds)
        elif variant == "reply":
            message = Message(
                message_type=MessageType.METHOD_RETURN,
                reply_serial=rng.randrange(1, 2**16),
                signature=signature,
                body=body,
                **common,
            )
        else:
            message = Message(
                message_type=MessageType.ERROR,
                reply_serial=rng.randrange(1, 2**16),
                error_name="org.example.Error.Junk",
                signature="s" + signature,
                body=["junk", *body],
                **common,
            )
        return Outgoing("fds", variant, message, fds)


# ---------------------------------------------------------------- raw connections


def marshal_call(
    serial: int, destination: str, path: str, interface: str, member: str, arg: str | None = None
) -> bytes:
    """A method call as bytes on the wire (little-endian), with no argument or one string.

    For connections that must not read (slow readers): they talk to the bus
    over a plain socket, so no library reads their replies for them.
    """
    body = b"" if arg is None else _string(arg)
    fields: list[tuple[int, str, str]] = [
        (1, "o", path),
        (2, "s", interface),
        (3, "s", member),
        (6, "s", destination),
    ]
    if arg is not None:
        fields.append((8, "g", "s"))
    array = bytearray()
    for code, signature, value in fields:
        array += bytes(-len(array) % 8)  # each field is a struct: 8-aligned
        array += bytes([code, 1]) + signature.encode() + b"\0"
        encoded = value.encode()
        if signature == "g":
            array += bytes([len(encoded)]) + encoded + b"\0"
        else:
            array += bytes(-len(array) % 4) + struct.pack("<I", len(encoded)) + encoded + b"\0"
    # The fixed header is 12 bytes and the array's length 4, so the array
    # starts 8-aligned and the offsets above are right.
    header = b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(array)) + array
    return header + bytes(-len(header) % 8) + body


def _string(text: str) -> bytes:
    encoded = text.encode()
    return struct.pack("<I", len(encoded)) + encoded + b"\0"
