"""What a caller holding only ``io.github.tungui.manage`` may ask for.

``manage`` lets a user make and change tungui's own devices, with a cached
password or none at all (administrators often grant it to a group).  The
kernel doc that tungui grew from warns that users who may assign network
devices can "assign bogus network interfaces to trick firewalls or
administrators", so ``manage`` alone is bounded; whatever goes past the
bounds needs ``io.github.tungui.manage-foreign`` (a password every time):

- **names**: a new device's name (or template) must match one of the
  administrator's patterns: no ``wg0`` or ``docker0``, names firewall rules
  trust;
- **addresses**: no address whose prefix is shorter than the bounds (an
  IPv6 ``/0`` installs a default route that beats the router's; an IPv4
  ``/1`` covers half the Internet);
- **owners**: a device may be given to the caller's own user or one of its
  groups only;
- **other users' devices**: a transient device the helper holds for another
  user, and whatever a bridge connects to a device tungui did not create,
  are foreign (see :mod:`tungui_helper.authorize`).

The bounds are read from ``/etc/tungui/helper.toml`` (docs/security.md has
an example); without it the defaults below hold.
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tungui_contract.checks import IpInterface

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("/etc/tungui/helper.toml")

#: Names ``manage`` may give: the kernel's and tungui's own templates
#: (tun%d, tap%d, br%d) and the prefixes tungui suggests.
DEFAULT_NAMES = ("tun*", "tap*", "br[0-9]*", "tg*", "lab*")
#: The shortest prefixes ``manage`` may add: a /16 or a /48 site at most.
DEFAULT_IPV4_PREFIX = 16
DEFAULT_IPV6_PREFIX = 48


class PolicyError(Exception):
    """The administrator's policy file cannot be used."""


@dataclass(frozen=True)
class ManagePolicy:
    """The bounds of ``io.github.tungui.manage``."""

    #: fnmatch patterns a new name (a template with ``%d`` as 0) must match.
    names: tuple[str, ...] = DEFAULT_NAMES
    #: Addresses with a shorter prefix need ``manage-foreign``.
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX

    def name_allowed(self, name: str) -> bool:
        """Whether ``manage`` may give a device this name or template."""
        concrete = name.replace("%d", "0")
        return any(fnmatch.fnmatchcase(concrete, pattern) for pattern in self.names)

    def address_allowed(self, address: IpInterface) -> bool:
        """Whether ``manage`` may add this address (and the route its prefix makes)."""
        bound = self.ipv4_prefix if address.version == 4 else self.ipv6_prefix
        return address.network.prefixlen >= bound

    def wide_addresses(self, addresses: Sequence[IpInterface]) -> list[IpInterface]:
        """The addresses past the bounds."""
        return [a for a in addresses if not self.address_allowed(a)]

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> ManagePolicy:
        """Read the administrator's bounds; the defaults where there is no file.

        Raises:
            PolicyError: the file exists but is not a policy (the helper
                refuses to start rather than guess).
        """
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read {path}: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path} is not TOML: {exc}") from None
        return cls.from_table(data.get("manage", {}), str(path))

    @classmethod
    def from_table(cls, table: Any, where: str = "the policy") -> ManagePolicy:
        """Build the bounds from the ``[manage]`` table of the policy file."""
        if not isinstance(table, dict):
            raise PolicyError(f"[manage] in {where} must be a table")
        unknown = set(table) - {"names", "ipv4_prefix", "ipv6_prefix"}
        if unknown:
            raise PolicyError(f"unknown keys in [manage] of {where}: {', '.join(sorted(unknown))}")
        names = table.get("names", list(DEFAULT_NAMES))
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise PolicyError(f"'names' in {where} must be a list of patterns")
        ipv4 = table.get("ipv4_prefix", DEFAULT_IPV4_PREFIX)
        ipv6 = table.get("ipv6_prefix", DEFAULT_IPV6_PREFIX)
        for key, value, longest in (("ipv4_prefix", ipv4, 32), ("ipv6_prefix", ipv6, 128)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= longest:
                raise PolicyError(f"'{key}' in {where} must be a prefix length, 0 to {longest}")
        return cls(tuple(names), ipv4, ipv6)
