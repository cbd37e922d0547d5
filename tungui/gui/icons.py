"""Icons from the desktop's theme, with bundled SVG fallbacks.

The fallbacks live in ``resources/icons/actions`` (installed with the
package as ``tungui/gui/iconset``), one per freedesktop icon name.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICONSET = Path(__file__).resolve().parent / "iconset"
APP_ICON = "io.github.tungui.TunGui"


@cache
def icon(name: str) -> QIcon:
    """The theme's icon of that name, or tungui's own."""
    fallback = ICONSET / f"{name}.svg"
    if fallback.is_file():
        return QIcon.fromTheme(name, QIcon(str(fallback)))
    return QIcon.fromTheme(name)


@cache
def app_icon() -> QIcon:
    """tungui's application icon."""
    scalable = (
        Path(__file__).resolve().parents[2]
        / "resources/icons/hicolor/scalable/apps"
        / f"{APP_ICON}.svg"
    )
    if scalable.is_file():
        return QIcon.fromTheme(APP_ICON, QIcon(str(scalable)))
    return QIcon.fromTheme(APP_ICON)
