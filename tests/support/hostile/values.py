"""Random D-Bus values for a hostile local user's messages, and the contract they aim at.

Used by ``messages.py`` (what nobody sends) and so by
``client.py``, which runs as ``nobody``: dbus-fast and the standard
library only, never tungui or tungui_helper.  The client knows the helper as
any local user can, from the contract the test hands over (:class:`Contract`).
Every choice comes from one seeded ``random.Random``, so a run is replayed
from its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageFlag, Variant

#: Types a variant of a wrong type holds.
VARIANT_TYPES = ("s", "u", "i", "b", "y", "t", "d", "as", "ay", "a{sv}", "(ii)")
#: Fillers of long strings: plain, a control byte (a repr() makes 4 characters
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


class Values:
    """Random values and calls to the helper, from one connection's seeded generator.

    Args:
        rng: the connection's generator.
        contract: the helper's contract.
        unicode: whether non-ASCII text may be sent (see :func:`marshals_unicode`).
    """

    def __init__(self, rng: random.Random, contract: Contract, *, unicode: bool) -> None:
        self.rng = rng
        self.contract = contract
        self.fillers = FILLERS if unicode else tuple(f for f in FILLERS if f.isascii())

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

    def dict_member(self) -> str:
        return self.rng.choice(sorted(self.contract.dict_keys))

    def dict_call(self, member: str, entries: dict[str, Variant], flags: int = 0) -> Message:
        """``member`` with ``entries`` as its a{sv} (after a device's name if it takes one)."""
        signature = self.contract.members[member]
        body: list[Any] = [entries]
        if signature != "a{sv}":
            body.insert(0, self.text())
        return self.message(member, signature, body, flags=flags)
