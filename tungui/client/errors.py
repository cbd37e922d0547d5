"""The errors of the client library beyond the contract's: the helper being away.

A reply of the bus itself (no owner for the name, no reply, a lost
connection) means the helper cannot be reached, which a window shows
differently from a refusal of the helper's.
"""

from __future__ import annotations

from tungui_contract.errors import TunguiError, from_reply


class HelperUnavailable(TunguiError):
    """The helper is not installed, not running, or left the bus."""

    error_name = "org.freedesktop.DBus.Error.ServiceUnknown"


#: Replies of the bus, rather than of the helper, that mean it is away.
UNAVAILABLE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.Spawn.ChildExited",
        "org.freedesktop.DBus.Error.Spawn.ExecFailed",
    }
)


def error_of(name: str, message: str) -> TunguiError:
    """The exception an error reply stands for."""
    if name in UNAVAILABLE:
        return HelperUnavailable(message, name=name)
    return from_reply(name, message)
