"""How each D-Bus method of the helper is declared: its polkit action(s) and its checkers.

Every exported method is declared with :func:`method`, which names the
polkit action it needs, :func:`one_of` the actions it may need with the
rule that picks one per call, or says, explicitly, that it is
:data:`PUBLIC`.  :class:`~.dispatch.Dispatcher` reads these declarations
and refuses to start if one is missing or names no action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from dbus_fast import Variant

from tungui_contract.bus import Action

from .authorize import Authorization
from .netlink import LinkInfo


class Public:
    """Marks a method anyone may call; a deliberate, visible choice."""

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = Public()


#: ``find(service, *checked_args)``: the device and the bridge a call names,
#: as the table has them now (None where it names none).
Find = Callable[..., tuple[LinkInfo | None, LinkInfo | None]]


@dataclass(frozen=True)
class OneOf:
    """A method that needs one of ``actions``, chosen per call by ``decide``.

    ``decide(service, caller, device, bridge, *checked_args)`` looks at the
    device and bridge ``find`` found (a device tungui did not create needs
    the stronger action) and returns the :class:`Authorization`, with the
    details polkit is told.  The same rule is asked again under the device
    lock once polkit has answered, on the devices as they are then
    (:attr:`Authorization.recheck`).  An action it picks that the
    declaration does not name is refused.
    """

    actions: frozenset[Action]
    find: Find
    decide: Callable[..., Authorization]


def one_of(*actions: Action, find: Find, decide: Callable[..., Authorization]) -> OneOf:
    """Declare the actions a method may need, and the rule that picks one per call."""
    return OneOf(frozenset(actions), find, decide)


#: How a method declares its authorization: a fixed action, PUBLIC, or
#: :func:`one_of` the actions it may need.
ActionRule = Action | Public | OneOf

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class FdReply:
    """A reply that passes file descriptors; the helper's copies close once it is sent."""

    body: list[Any]
    fds: list[int]
    #: Called after the reply went out (say, to start streaming).
    sent: Callable[[], None] | None = None


@dataclass(frozen=True)
class Declaration:
    """What :func:`method` records on a handler."""

    member: str
    action: ActionRule
    parsers: tuple[Callable[[Any], Any], ...]


def method(
    member: str, *, action: ActionRule, parse: tuple[Callable[[Any], Any], ...] = ()
) -> Callable[[F], F]:
    """Declare a handler for the D-Bus method ``member``.

    Args:
        member: the method's name in the interface XML.
        action: the polkit action it needs, PUBLIC, or :func:`one_of` the
            actions it may need with the rule that picks one.
        parse: one checker per in-argument, run before authorization; each
            takes the unwrapped argument and returns the checked value.

    The handler is called as ``handler(caller, *checked_args)`` with the
    :class:`~.callers.Caller` and returns the reply body as a list, a
    :class:`~.marshalled.MarshalledBody` or an :class:`FdReply`.  A handler
    with an ``authorized`` parameter also gets the
    :class:`~.authorize.Authorization` polkit granted, to act on exactly the
    device that was authorized.
    """

    def decorate(func: F) -> F:
        func._tungui_declaration = Declaration(member, action, parse)  # type: ignore[attr-defined]
        return func

    return decorate


def unwrap(value: Any) -> Any:
    """Turn an a{sv} of variants into key -> (signature, value) for the validators."""
    if isinstance(value, dict) and all(isinstance(v, Variant) for v in value.values()):
        return {key: (v.signature, v.value) for key, v in value.items()}
    return value
