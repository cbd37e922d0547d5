"""The client library of tungui's helper, for the window and ``tunguictl``.

An asyncio client on dbus-fast, without Qt: :class:`HelperClient` makes the
calls, and helper errors come back as the exceptions of
:mod:`tungui_contract.errors` (and :class:`HelperUnavailable` when the helper
is away), each carrying the helper's sentence for a person.  Devices come
back as :class:`tungui_contract.device.Device` records.
"""

from tungui_contract.errors import (
    Exists,
    Failed,
    InvalidArgument,
    LimitsExceeded,
    NotAuthorized,
    NotFound,
    TunguiError,
)

from .connection import HelperClient
from .errors import HelperUnavailable
from .values import to_spec

__all__ = [
    "Exists",
    "Failed",
    "HelperClient",
    "HelperUnavailable",
    "InvalidArgument",
    "LimitsExceeded",
    "NotAuthorized",
    "NotFound",
    "TunguiError",
    "to_spec",
]
