"""The privileged side imports nothing it does not need."""

from __future__ import annotations

import subprocess
import sys


def test_helper_never_imports_qt_or_the_front_end() -> None:
    code = (
        "import sys, tungui_helper.main, tungui_helper.service, tungui_helper.devices;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'tungui'));"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_client_and_cli_need_no_qt() -> None:
    code = (
        "import sys, tungui.cli, tungui.client, tungui.clicapture, tungui.decode;"
        "qt = ('PySide6', 'shiboken6');"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in qt)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
