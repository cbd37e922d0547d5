"""Named errors the helper reports.

Each maps to one ``io.github.tungui.Error.*`` D-Bus error.  The message is a
sentence for a person; it never carries a traceback.
"""

from __future__ import annotations

from .contract import ErrorName


class HelperError(Exception):
    """Base of every error the helper reports to a caller."""

    error_name: ErrorName = ErrorName.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(HelperError):
    """An argument is malformed or asks for something impossible."""

    error_name = ErrorName.INVALID_ARGUMENT


class NotFound(HelperError):
    """No device of that name exists."""

    error_name = ErrorName.NOT_FOUND


class Exists(HelperError):
    """A device of that name already exists."""

    error_name = ErrorName.EXISTS


class NotAuthorized(HelperError):
    """polkit did not authorize the caller."""

    error_name = ErrorName.NOT_AUTHORIZED


class Failed(HelperError):
    """The kernel refused an operation that was valid on its face."""

    error_name = ErrorName.FAILED


class LimitsExceeded(HelperError):
    """The caller's user reached one of the helper's caps; nothing was done."""

    error_name = ErrorName.LIMITS_EXCEEDED


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
