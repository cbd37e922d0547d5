"""A form's problems, gathered field by field: shared by the device and the send forms.

Qt-free: the Send Packet form (:mod:`tungui.packets.sendform`) ships with
``tunguictl``, the device dialog's form with the window.
"""

from __future__ import annotations


class Problems:
    """Gathers a form's problems field by field, in the order the fields are checked."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        #: The first problem of each field that has one.
        self.by_field: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        self.problems.append(message)
        self.by_field.setdefault(key, message)
