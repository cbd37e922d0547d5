"""What goes wrong while the stack comes up, goes down or is called."""

from __future__ import annotations

from collections.abc import Sequence


class StackError(Exception):
    """Something in the test stack did not come up or go down as it should."""


class CommandError(StackError):
    """A command exited non-zero; the message carries its output."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"{' '.join(argv)} exited {returncode}\n"
            f"--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        )


class DBusCallError(StackError):
    """A D-Bus call was answered with an error."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")
