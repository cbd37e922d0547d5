"""User and group names for ids, and ids for names, without Qt.

The window, the dialogs, ``tunguictl`` and "Copy as command" all show a
device's owner and group by name and take them by name or number.
"""

from __future__ import annotations

import grp
import pwd
from functools import cache


@cache
def user_name(uid: int) -> str:
    """A uid as a user name; the number when it has none; "" for none (-1)."""
    if uid < 0:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@cache
def group_name(gid: int) -> str:
    """A gid as a group name; the number when it has none; "" for none (-1)."""
    if gid < 0:
        return ""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def uid_of(text: str) -> int:
    """A user name or a uid written in digits, as a uid.

    Raises:
        KeyError: no user has that name.
    """
    if text.isascii() and text.isdigit():
        return int(text)
    return pwd.getpwnam(text).pw_uid


def gid_of(text: str) -> int:
    """A group name or a gid written in digits, as a gid.

    Raises:
        KeyError: no group has that name.
    """
    if text.isascii() and text.isdigit():
        return int(text)
    return grp.getgrnam(text).gr_gid
