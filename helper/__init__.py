"""tungui's privileged helper: TUN/TAP devices and bridges over the system bus.

This package runs as root.  It must never import Qt or the front end
(``tungui``); ``tests/unit/test_imports.py`` enforces that.
"""

from tungui_contract import __version__

__all__ = ["__version__"]
