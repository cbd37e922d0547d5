"""The boundaries between the packages, read from every module's imports.

``tungui_contract`` is the only package the root helper and the front end
share; it needs nothing but the standard library.  The helper never imports
the front end or Qt; the front end never imports the helper (a Flatpak of
the window must not carry root code).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Source folder -> import package.
PACKAGES = {"contract": "tungui_contract", "helper": "tungui_helper", "tungui": "tungui"}
QT = frozenset({"PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph"})


def imported(folder: str) -> dict[str, set[str]]:
    """Top-level packages each module of a source folder imports (relative ones resolved)."""
    package = PACKAGES[folder]
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.add(package if node.level else (node.module or "").split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


def test_the_contract_needs_the_standard_library_only() -> None:
    for module, names in imported("contract").items():
        outside = {
            n for n in names - {"tungui_contract", "__future__"} if n not in sys.stdlib_module_names
        }
        assert not outside, f"{module} imports {outside}"


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("contract", {"tungui", "tungui_helper"} | QT),
        ("helper", {"tungui"} | QT),
        ("tungui", {"tungui_helper"}),
    ],
)
def test_no_package_imports_across_the_boundary(folder: str, forbidden: set[str]) -> None:
    crossing = {module: names & forbidden for module, names in imported(folder).items()}
    assert {module: names for module, names in crossing.items() if names} == {}


def test_the_scan_sees_imports() -> None:
    """The rule above would pass on a scan that found nothing."""
    helper = imported("helper")
    assert "tungui_contract" in helper["helper/service.py"]
    assert "dbus_fast" in helper["helper/service.py"]
    assert "PySide6" in set().union(*imported("tungui").values())


def test_only_the_gui_folder_imports_qt() -> None:
    """Qt is the window's: the client library, tunguictl and the packet code ship without it."""
    gui = f"tungui{os.sep}gui{os.sep}"
    importing_qt = {
        module: names & QT for module, names in imported("tungui").items() if names & QT
    }
    outside = {
        module: names for module, names in importing_qt.items() if not module.startswith(gui)
    }
    assert outside == {}
    # The scan sees Qt where it is.
    assert f"{gui}mainwindow.py" in importing_qt


def test_the_qt_rule_catches_a_module_outside_gui(tmp_path: Path) -> None:
    """A module outside gui/ that imports Qt (even inside a function) is found."""
    module = tmp_path / "late.py"
    module.write_text("def f() -> None:\n    from PySide6.QtCore import QObject\n")
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    assert names & QT == {"PySide6"}


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


def test_client_cli_and_packets_need_no_qt() -> None:
    code = (
        "import sys, tungui.cli.main, tungui.cli.capture, tungui.client, tungui.packets.decode,"
        " tungui.packets.stream, tungui.packets.pcapng, tungui.packets.sendform;"
        "qt = ('PySide6', 'shiboken6');"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in qt)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
