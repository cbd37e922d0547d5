"""tungui: a desktop manager for TUN/TAP virtual network devices.

``tungui.client``, ``tungui.cli`` and ``tungui.packets`` use no Qt; they ship with the
helper. ``tungui.gui`` is the window, the only part that imports Qt.
"""

from tungui_contract import __version__

__all__ = ["__version__"]
