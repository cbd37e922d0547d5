"""What a hostile local user sends the helper: well-formed, malformed and huge calls, and fds.

The messages of ``client.py``, which runs as ``nobody``: this module
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
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Message, MessageType, Variant

from .values import VARIANT_TYPES, Contract, Values, complete_types

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


class Mischief(Values):
    """Builds the messages of one connection: each kind of hostile traffic.

    Args:
        rng, contract, unicode: as :class:`Values` takes them.
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
        super().__init__(rng, contract, unicode=unicode)
        self.huge_bytes = huge_bytes
        self.biggest_bytes = biggest_bytes
        self.huge_items = huge_items

    def huge_size(self) -> int:
        """Bytes of a huge argument, log-uniform from :data:`HUGE_MIN` to the largest."""
        low, high = math.log(HUGE_MIN), math.log(self.huge_bytes)
        return int(math.exp(self.rng.uniform(low, high)))

    def huge_text(self, size: int, filler: str | None = None) -> str:
        filler = filler or self.rng.choice(self.fillers)
        return filler * max(1, size // len(filler.encode()))

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
