"""The named errors of the contract, one class per D-Bus error name.

The helper raises them and replies with their name and sentence; the client
turns a reply back into the same class (:func:`from_reply`).  The message is
a sentence for a person; it never carries a traceback.
"""

from __future__ import annotations

from typing import ClassVar

from .bus import ErrorName


class TunguiError(Exception):
    """Base of every error the helper reports to a caller.

    Attributes:
        name: the D-Bus error name (the class's own, unless the reply named
            another that no class stands for).
        message: the explanation, for a person.
    """

    error_name: ClassVar[str] = ErrorName.FAILED

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name or self.error_name


class InvalidArgument(TunguiError):
    """An argument is malformed or asks for something impossible."""

    error_name = ErrorName.INVALID_ARGUMENT


class NotFound(TunguiError):
    """No device of that name exists."""

    error_name = ErrorName.NOT_FOUND


class Exists(TunguiError):
    """A device of that name already exists."""

    error_name = ErrorName.EXISTS


class NotAuthorized(TunguiError):
    """polkit did not authorize the caller."""

    error_name = ErrorName.NOT_AUTHORIZED


class Failed(TunguiError):
    """The kernel refused an operation that was valid on its face, or the helper failed."""

    error_name = ErrorName.FAILED


class LimitsExceeded(TunguiError):
    """The caller's user reached one of the helper's caps; nothing was done."""

    error_name = ErrorName.LIMITS_EXCEEDED


#: Each error name of the contract and the class that stands for it.
BY_NAME: dict[str, type[TunguiError]] = {
    cls.error_name: cls
    for cls in (InvalidArgument, NotFound, Exists, NotAuthorized, Failed, LimitsExceeded)
}


def from_reply(name: str, message: str) -> TunguiError:
    """The error a D-Bus error reply stands for; :class:`Failed` for names outside the contract."""
    return BY_NAME.get(name, Failed)(message, name=name)


#: Characters of a caller's input an error message repeats at most.
SHOWN_CHARS = 40


def shown(value: str | bytes, limit: int = SHOWN_CHARS) -> str:
    """A caller's input as an error message may repeat it: quoted, escaped, cut short.

    Errors name what was wrong, but a reply must never grow with the input
    (a 9 MB name would make a 36 MB error, which the bus refuses, taking the
    helper's connection with it).  Only the first ``limit`` characters are
    looked at, so the cost does not grow with the input either.
    """
    text = ascii(value[:limit])
    if len(value) > limit:
        return f"{text}... ({len(value)} long)"
    return text
