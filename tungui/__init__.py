"""tungui: a desktop manager for TUN/TAP virtual network devices.

``tungui.client`` and ``tungui.cli`` use no Qt; they ship with the helper.
"""

__version__ = "0.1.0"
