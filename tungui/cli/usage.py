"""What every ``tunguictl`` command shares: its exit codes and its usage error.

Exit status: 0 success; 1 the helper or the kernel refused (no such device,
name taken, kernel error); 2 bad usage or an invalid argument; 4 not
authorized; 69 the helper cannot be reached (EX_UNAVAILABLE).
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_AUTHORIZED = 4
EXIT_UNAVAILABLE = 69


class UsageError(Exception):
    """A command-line value that cannot be used."""
