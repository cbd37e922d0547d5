"""Which polkit action a request needs, on which device, and what polkit is told.

Every decision here is taken before polkit is asked, from the device table
as it stands, and costs no more than a look at the device and its bridge.
It is taken again, under the device lock, once polkit has answered (the
world may have changed while a person typed a password): the act goes
ahead only if it needs no more than what was authorized, and only on the
device that was authorized, by its interface index (docs/security.md).

``manage`` covers tungui's own devices within the administrator's bounds
(:mod:`tungui_helper.policy`).  Anything past them needs ``manage-foreign``:

- a device tungui did not create;
- a device a bridge connects to one tungui did not create: the TAP in a
  bridge that carries a NIC reaches that LAN (its MTU drags the bridge,
  its packets go out on the LAN), and so does the bridge itself;
- a device held for, or given to, another user;
- names, owners and addresses past the policy's bounds.

The details tell polkit what is asked (``device``, ``request``, and
``reason`` when the foreign action is needed), so a password prompt names
the device and administrators' rules can decide by it
(``action.lookup("device")``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tungui_contract.bus import Action
from tungui_contract.checks import IpInterface

from .bustext import listed_name
from .netlink import LinkInfo
from .policy import ManagePolicy
from .validate import BridgeSpec, Changes, DeviceSpec

#: Takes a device (and the bridge it joins) as they are now and says what
#: the call needs on them now.
Recheck = Callable[[LinkInfo | None, LinkInfo | None], "Authorization"]

#: Details polkit gets (and shows, and rules can read).
DEVICE = "device"
REQUEST = "request"
REASON = "reason"


@dataclass(frozen=True)
class Authorization:
    """What a call needs from polkit, and on which device it was decided.

    Attributes:
        action: the polkit action.
        details: what polkit is told (device, request, reason).
        index: the interface index the decision was taken on, for calls on
            an existing device: the act is done on this index only.
        bridge: likewise, the index of a bridge the device is to join.
        recheck: the method's rule, taking the device and bridge as they are
            now and saying what the call needs on them now; the dispatcher
            sets it (see :class:`~.dispatch.OneOf`), and the act asks it
            again under the device lock.
    """

    action: Action
    details: dict[str, str] = field(default_factory=dict)
    index: int | None = None
    bridge: int | None = None
    recheck: Recheck | None = field(default=None, compare=False, repr=False)

    def covers(self, needed: Authorization) -> bool:
        """Whether this authorization is enough for ``needed``."""
        return (self.index, self.bridge) == (needed.index, needed.bridge) and (
            self.action == needed.action or self.action is Action.MANAGE_FOREIGN
        )


class Who(Protocol):
    """The caller, as far as the decisions need it."""

    @property
    def uid(self) -> int: ...

    @property
    def gids(self) -> frozenset[int]: ...


class Devices(Protocol):
    """What the decisions read of the device table."""

    def is_managed(self, link: LinkInfo) -> bool: ...

    def holder_uid(self, index: int) -> int | None:
        """The uid of the user a transient device is held for, if it is held."""
        ...

    def link(self, index: int) -> LinkInfo | None: ...

    def ports(self, bridge: LinkInfo) -> Iterable[LinkInfo]: ...


class Decision:
    """Collects the reasons a request needs the foreign action."""

    def __init__(self, device: str, request: str) -> None:
        self.details = {DEVICE: device, REQUEST: request}
        self.reasons: list[str] = []

    def foreign(self, reason: str) -> None:
        self.reasons.append(reason)

    def result(self, index: int | None = None, bridge: LinkInfo | None = None) -> Authorization:
        bridge_index = None if bridge is None else bridge.index
        if not self.reasons:
            return Authorization(Action.MANAGE, self.details, index, bridge_index)
        details = {**self.details, REASON: "; ".join(self.reasons)}
        return Authorization(Action.MANAGE_FOREIGN, details, index, bridge_index)


# ------------------------------------------------------------ the checks


def _foreign_neighbours(devices: Devices, link: LinkInfo) -> list[LinkInfo]:
    """Devices tungui did not create that a bridge connects ``link`` to."""
    related: list[LinkInfo] = []
    bridge = devices.link(link.master) if link.master else None
    if bridge is not None:
        related.append(bridge)
        related.extend(devices.ports(bridge))
    if link.kind == "bridge":
        related.extend(devices.ports(link))
    return [d for d in related if d.index != link.index and not devices.is_managed(d)]


def _check_device(decision: Decision, devices: Devices, link: LinkInfo, who: Who) -> None:
    """The device acted on: tungui's own, not connected to others', not another user's."""
    name = listed_name(link.name)
    if not devices.is_managed(link):
        decision.foreign(f"{name} was not created by tungui")
    neighbours = _foreign_neighbours(devices, link)
    if neighbours:
        names = ", ".join(sorted(listed_name(d.name) for d in neighbours)[:3])
        decision.foreign(f"{name} is bridged with devices tungui did not create ({names})")
    holder = devices.holder_uid(link.index)
    if holder is not None and holder != who.uid:
        decision.foreign(f"{name} is held for another user")
    elif link.kind in ("tun", "tap") and link.owner not in (-1, who.uid):
        decision.foreign(f"{name} belongs to another user")


def _check_bridge(decision: Decision, devices: Devices, bridge: LinkInfo) -> None:
    """A bridge a device would join: it must not reach devices tungui did not create."""
    name = listed_name(bridge.name)
    if not devices.is_managed(bridge):
        decision.foreign(f"the bridge {name} was not created by tungui")
    elif any(not devices.is_managed(port) for port in devices.ports(bridge)):
        decision.foreign(f"the bridge {name} carries devices tungui did not create")


def _check_new_name(decision: Decision, policy: ManagePolicy, name: str) -> None:
    if not policy.name_allowed(name):
        decision.foreign(f"the name {name} is not among the names tungui may give")


def _check_owner(decision: Decision, who: Who, owner: int | None, group: int | None) -> None:
    if owner is not None and owner not in (-1, who.uid):
        decision.foreign(f"the device would belong to user {owner}")
    if group is not None and group != -1 and group not in who.gids:
        decision.foreign(f"the device would belong to group {group}, not one of yours")


def _check_addresses(
    decision: Decision, policy: ManagePolicy, addresses: Sequence[IpInterface]
) -> None:
    wide = policy.wide_addresses(addresses)
    if wide:
        decision.foreign(
            f"{wide[0]} makes a route wider than /{policy.ipv4_prefix} (IPv4) "
            f"or /{policy.ipv6_prefix} (IPv6)"
        )


def for_capture(link: LinkInfo) -> Authorization:
    """StartCapture: the capture action, naming the device."""
    name = listed_name(link.name)
    details = {DEVICE: name, REQUEST: f"read the packets that pass through {name}"}
    return Authorization(Action.CAPTURE, details, link.index)


def _summary(addresses: Sequence[IpInterface] | None) -> str:
    if not addresses:
        return ""
    shown = ", ".join(str(a) for a in addresses[:4])
    return f" with {shown}" + (f" and {len(addresses) - 4} more" if len(addresses) > 4 else "")


# ------------------------------------------------------------- per call


def for_create(
    devices: Devices, policy: ManagePolicy, who: Who, spec: DeviceSpec, bridge: LinkInfo | None
) -> Authorization:
    """CreateDevice: the new device's name, owner and addresses, and the bridge it joins."""
    decision = Decision(
        spec.name, f"create the {spec.mode.upper()} device {spec.name}{_summary(spec.addresses)}"
    )
    _check_new_name(decision, policy, spec.name)
    _check_owner(decision, who, spec.owner, spec.group)
    _check_addresses(decision, policy, spec.addresses)
    if bridge is not None:
        _check_bridge(decision, devices, bridge)
    return decision.result(bridge=bridge)


def for_bridge(policy: ManagePolicy, spec: BridgeSpec) -> Authorization:
    """CreateBridge: its name and addresses."""
    decision = Decision(spec.name, f"create the bridge {spec.name}{_summary(spec.addresses)}")
    _check_new_name(decision, policy, spec.name)
    _check_addresses(decision, policy, spec.addresses)
    return decision.result()


def for_change(
    devices: Devices,
    policy: ManagePolicy,
    who: Who,
    link: LinkInfo,
    changes: Changes,
    bridge: LinkInfo | None,
) -> Authorization:
    """ConfigureDevice: the device, what it becomes, and a bridge it joins."""
    keys = ", ".join(sorted(changes.given)) or "nothing"
    name = listed_name(link.name)
    decision = Decision(name, f"change {keys} of {name}{_summary(changes.addresses)}")
    _check_device(decision, devices, link, who)
    _check_owner(decision, who, changes.owner, changes.group)
    if changes.addresses is not None:
        _check_addresses(decision, policy, changes.addresses)
    if bridge is not None:
        _check_bridge(decision, devices, bridge)
    return decision.result(link.index, bridge)


def for_device(devices: Devices, who: Who, link: LinkInfo, request: str) -> Authorization:
    """DeleteDevice and InjectPacket: the device itself.

    Args:
        request: what is asked, as a verb phrase with ``{}`` for the device.
    """
    name = listed_name(link.name)
    decision = Decision(name, request.format(name))
    _check_device(decision, devices, link, who)
    return decision.result(link.index)
