"""The device dialog's state and its checking, without Qt.

:class:`DeviceForm` holds what a person typed into the New TUN…, New TAP…
or Properties… dialog, as text and booleans.  :func:`check_new` turns it
into a CreateDevice spec and :func:`check_changes` into a ConfigureDevice
change set (keys as in ``docs/dbus.md``), or into sentences that say what is
wrong.  The checks are the helper's own validators, so the dialog refuses
exactly what the helper would refuse, before anything is sent.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from tungui.accounts import gid_of, group_name, uid_of, user_name
from tungui.problems import Problems
from tungui_contract.checks import (
    check_addresses,
    check_bridge_port,
    check_id,
    check_mac,
    check_mac_for,
    check_mtu,
    check_name,
)
from tungui_contract.device import Device
from tungui_contract.errors import InvalidArgument
from tungui_contract.keys import FIXED_KEYS
from tungui_contract.limits import MAX_MTU, MIN_MTU

Mode = Literal["tun", "tap"]

_T = TypeVar("_T")
_A = TypeVar("_A")

#: Fields that a device gets when it is made and keeps for its life.
FIXED_FIELDS = FIXED_KEYS


def as_mode(text: object) -> Mode:
    """Check that ``text`` names a device mode.

    Raises:
        ValueError: it is neither ``"tun"`` nor ``"tap"``.
    """
    if text == "tun":
        return "tun"
    if text == "tap":
        return "tap"
    raise ValueError(f"{text!r} is not a device mode; use 'tun' or 'tap'.")


def current_user() -> str:
    """Name of the user running tungui (the uid as text if it has no name)."""
    return user_name(os.getuid())


def current_group() -> str:
    """Name of the primary group of tungui's process (the gid as text if unnamed)."""
    return group_name(os.getgid())


def users() -> list[str]:
    """Sorted names of every user account, for an owner picker."""
    return sorted({entry.pw_name for entry in pwd.getpwall()})


def groups() -> list[str]:
    """Sorted names of every group, for a group picker."""
    return sorted({entry.gr_name for entry in grp.getgrall()})


def random_mac() -> str:
    """A random locally administered unicast MAC address, such as ``02:5e:…``.

    Returns:
        Six lowercase hex octets joined by colons; the first octet has the
        locally-administered bit set and the multicast bit clear.
    """
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{octet:02x}" for octet in octets)


@dataclass
class DeviceForm:
    """What a person edits in the device dialog.

    Text fields hold text as typed; an empty one means "the default" (for
    ``owner``/``group``: nobody may open the device without privileges).
    A new form hands the device to the current user, who may then open it
    without root (QEMU, OpenVPN), and keeps it after tungui quits.
    """

    mode: Mode
    #: A name or a template with one ``%d`` (``tap%d``); "" for the helper's default.
    name: str = ""
    #: User name or uid; "" for none.
    owner: str = field(default_factory=current_user)
    #: Group name or gid; "" for none.  None by default: with both set, the
    #: kernel lets a program in only if it is the owner *and* in the group.
    group: str = ""
    #: True: keep after tungui quits; False: only while tungui runs.
    persist: bool = True
    pi: bool = False
    vnet_hdr: bool = False
    multi_queue: bool = False
    #: "" for the kernel's default (or the bridge's, with ``master``).
    mtu: str = ""
    #: "" for the kernel's choice; TAP only.
    mac: str = ""
    #: CIDR text, one address per item; blank items are ignored.
    addresses: list[str] = field(default_factory=list)
    up: bool = False
    #: Bridge to join, "" for none; TAP only.
    master: str = ""

    @classmethod
    def from_device(cls, device: Device) -> DeviceForm:
        """Build the form of an existing device.

        Args:
            device: a TUN/TAP device dict as ListDevices reports it.

        Returns:
            The form showing the device as it is.

        Raises:
            ValueError: the device is not a TUN or TAP device.
        """
        try:
            mode = as_mode(device.mode or device.kind)
        except ValueError:
            raise ValueError(f"{device.name!r} is not a TUN or TAP device.") from None
        return cls(
            mode=mode,
            name=device.name,
            owner=user_name(device.owner),
            group=group_name(device.group),
            persist=device.persist,
            pi=device.pi,
            vnet_hdr=device.vnet_hdr,
            multi_queue=device.multi_queue,
            mtu=str(device.mtu),
            mac=device.mac if mode == "tap" else "",
            addresses=list(device.addresses),
            up=device.up,
            master=device.master,
        )


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a form.

    Attributes:
        spec: the CreateDevice spec or ConfigureDevice change set, with
            Python values; None when there are problems.
        problems: sentences for a person, the most important first.
        by_field: the first problem of each :class:`DeviceForm` field that
            has one, so a view can mark that field.
    """

    spec: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    by_field: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the form can be sent as it is."""
        return self.spec is not None


def fixed_fields(device: Device) -> dict[str, str]:
    """The fields of an existing device that cannot be changed, and why.

    Args:
        device: a TUN/TAP device dict as ListDevices reports it.

    Returns:
        Field name of :class:`DeviceForm` -> a sentence saying why it is fixed.
    """
    reason = "Set when the device is created; it cannot change afterwards."
    fixed = dict.fromkeys(FIXED_FIELDS, reason)
    if device.held and not device.transient and not device.multi_queue:
        # The helper changes these through a queue of its own, which the
        # kernel refuses (EBUSY) while another program holds the only queue.
        busy = f"{device.name} is open in another program; close it there to change this."
        fixed.update(dict.fromkeys(("owner", "group", "persist"), busy))
    return fixed


class _Collector(Problems):
    def check(self, key: str, parse: Callable[[_A], _T], arg: _A) -> tuple[bool, _T | None]:
        """Run one field's parser; on InvalidArgument record it and return (False, None)."""
        try:
            return True, parse(arg)
        except InvalidArgument as exc:
            self.add(key, exc.message)
            return False, None

    def result(self, spec: dict[str, Any]) -> Checked:
        if self.problems:
            return Checked(None, self.problems, self.by_field)
        return Checked(spec)


#: How problems call the fixed fields.
_LABELS = {
    "name": "name",
    "mode": "type",
    "pi": "packet information header",
    "vnet_hdr": "virtio-net header",
    "multi_queue": "multi-queue setting",
}


def check_new(form: DeviceForm) -> Checked:
    """Check a form for a new device.

    Args:
        form: the dialog's contents.

    Returns:
        A CreateDevice spec, or the problems.  The spec always holds mode,
        persist, owner, group, pi, vnet_hdr, multi_queue, addresses and up;
        name, mtu, mac and master only when given.
    """
    out = _Collector()
    spec: dict[str, Any] = {"mode": form.mode}
    _, name = out.check("name", _name, form.name)
    if name is not None:
        spec["name"] = name
    spec["persist"] = form.persist
    _, spec["owner"] = out.check("owner", _user_id, form.owner)
    _, spec["group"] = out.check("group", _group_id, form.group)
    spec["pi"] = form.pi
    spec["vnet_hdr"] = form.vnet_hdr
    spec["multi_queue"] = form.multi_queue
    _, mtu = out.check("mtu", _mtu, form.mtu)
    if mtu is not None:
        spec["mtu"] = mtu
    _, mac = out.check("mac", _mac, form)
    if mac is not None:
        spec["mac"] = mac
    _, master = out.check("master", _master, form)
    if master is not None:
        spec["master"] = master
    _, spec["addresses"] = out.check("addresses", _addresses, form.addresses)
    spec["up"] = form.up
    return out.result(spec)


def check_changes(original: DeviceForm, form: DeviceForm) -> Checked:
    """Check an edited form of an existing device.

    Args:
        original: the form as :meth:`DeviceForm.from_device` made it.
        form: the dialog's contents.

    Returns:
        A ConfigureDevice change set holding only the keys whose value
        differs from the device's (``{}`` when nothing changed), or the
        problems.
    """
    out = _Collector()
    for key in FIXED_FIELDS:
        if getattr(form, key) != getattr(original, key):
            out.add(key, f"The {_LABELS[key]} of an existing device cannot be changed.")
    parsers: dict[str, Callable[[DeviceForm], Any]] = {
        "owner": lambda f: _user_id(f.owner),
        "group": lambda f: _group_id(f.group),
        "persist": lambda f: f.persist,
        "mtu": lambda f: _mtu(f.mtu),
        "mac": _mac,
        "master": lambda f: _master(f) or "",
        "addresses": lambda f: _addresses(f.addresses),
        "up": lambda f: f.up,
    }
    changes: dict[str, Any] = {}
    for key, parse in parsers.items():
        valid, new = out.check(key, parse, form)
        if not valid:
            continue
        try:
            old = parse(original)
        except InvalidArgument:
            old = object()  # the device as listed is odd: send the new value
        if _same(key, old, new):
            continue
        problem = _unclearable(key, new)
        if problem:
            out.add(key, problem)
        else:
            changes[key] = new
    return out.result(changes)


def _same(key: str, old: Any, new: Any) -> bool:
    if key == "addresses":
        # The same addresses in another order or spelling (2001:DB8::1/64).
        return isinstance(old, list) and set(check_addresses(old)) == set(check_addresses(new))
    return bool(old == new)


def _unclearable(key: str, new: Any) -> str:
    """Why an existing device cannot take ``new`` for ``key``, or ""."""
    if key in ("owner", "group") and new == -1:
        return f"The kernel cannot clear a device's {key} once it is set."
    if key == "mtu" and new is None:
        return (
            f"Enter an MTU from {MIN_MTU} to {MAX_MTU}; "
            "an existing device has no default to go back to."
        )
    if key == "mac" and new is None:
        return "Enter a MAC address; an existing device cannot go back to the kernel's choice."
    return ""


def _name(text: str) -> str | None:
    text = text.strip()
    return check_name(text, template=True) if text else None


def _user_id(text: str) -> int:
    return _account_id(text, "user", "owner", uid_of)


def _group_id(text: str) -> int:
    return _account_id(text, "group", "group", gid_of)


def _account_id(text: str, kind: str, what: str, lookup: Callable[[str], int]) -> int:
    text = text.strip()
    if not text:
        return -1
    try:
        return check_id(lookup(text), what=what)
    except KeyError:
        raise InvalidArgument(f"No {kind} named {text}.") from None


def _mtu(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidArgument(f"The MTU {text!r} is not a number.")
    return check_mtu(int(text))


def _mac(form: DeviceForm) -> str | None:
    text = form.mac.strip()
    if not text:
        return None
    check_mac_for(form.mode)
    return check_mac(text)


def _master(form: DeviceForm) -> str | None:
    text = form.master.strip()
    if not text:
        return None
    check_bridge_port(form.mode)
    return check_name(text, what="bridge name")


def _addresses(lines: list[str]) -> list[str]:
    """The addresses as typed (blank lines dropped), once the contract's check accepts them.

    Sent as the checked text: the helper parses them itself, once, at its
    boundary (issue 11: they were parsed and printed again at every step).
    """
    texts = [s.strip() for s in lines if s.strip()]
    check_addresses(texts)
    return texts
