"""tungui: a desktop manager for TUN/TAP virtual network devices.

``tungui.client`` and ``tungui.cli`` use no Qt; they ship with the helper.
"""

from tungui_contract import __version__

__all__ = ["__version__"]
