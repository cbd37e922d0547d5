"""GUI tests: pytest-qt on Qt's offscreen platform.

Where PySide6 or pytest-qt is missing (the run against the distribution's
libraries has neither), the modules here are not collected at all and the
report header says why.  ``pytest.importorskip`` at this level would not do:
pytest 7 then skips the collection of the whole ``tests`` tree.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Before anything imports Qt: no display is needed or wanted.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_HERE = Path(__file__).parent
_MISSING = [name for name in ("PySide6", "pytestqt") if importlib.util.find_spec(name) is None]

if _MISSING:
    # Every test module here and in the folders below.
    collect_ignore_glob = ["test_*.py", "*/test_*.py"]


def pytest_report_header() -> str | None:
    """Say that the GUI tests were left out, and why."""
    if _MISSING:
        return f"GUI tests skipped: {' and '.join(_MISSING)} not installed"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let the offscreen platform's own complaint through, and no other warning.

    The offscreen plugin warns "This plugin does not support
    propagateSizeHints()" whenever a window with a layout is shown; that says
    nothing about our code, while any other Qt warning fails the test
    (``qt_log_level_fail`` in pyproject.toml).
    """
    if _MISSING:
        return
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(
                pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")
            )
