"""The Debian split: tungui-helper's modules of the tungui package stand on their own.

packaging/debian/rules names the modules of ``tungui`` that go into the
tungui-helper package (client library, tunguictl); the rest go into the
window's package, which the helper's users may not have installed.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tungui"


def helper_side() -> set[str]:
    rules = (REPO / "packaging/debian/rules").read_text()
    match = re.search(r"^HELPER_SIDE = ((?:.*\\\n)*.*)$", rules, re.MULTILINE)
    assert match is not None, "HELPER_SIDE is gone from packaging/debian/rules"
    return set(match.group(1).replace("\\\n", " ").split())


def tungui_imports(module: Path) -> set[str]:
    """The modules of the tungui package that ``module`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0] + ".py")
            else:  # from . import x: a module, or a name from __init__.py
                found.update(
                    alias.name + ".py"
                    for alias in node.names
                    if (PACKAGE / f"{alias.name}.py").exists()
                )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tungui."):
            found.add((node.module or "").split(".")[1] + ".py")
    return found


def test_the_helper_package_has_every_module_its_modules_import() -> None:
    shipped = helper_side()
    assert {"cli.py", "client.py"} <= shipped
    for name in sorted(shipped - {"py.typed"}):
        missing = tungui_imports(PACKAGE / name) - shipped
        assert not missing, f"{name} imports {sorted(missing)}, which tungui-helper lacks"


def test_the_install_file_lists_the_same_modules() -> None:
    install = (REPO / "packaging/debian/tungui-helper.install").read_text()
    listed = set(re.findall(r"dist-packages/tungui/(\S+)", install))
    assert listed == helper_side()


#: Top-level import name -> Debian package and PyPI distribution.
THIRD_PARTY = {
    "dbus_fast": ("python3-dbus-fast", "dbus-fast"),
    "pyroute2": ("python3-pyroute2", "pyroute2"),
    "dpkt": ("python3-dpkt", "dpkt"),
    "pyqtgraph": ("python3-pyqtgraph", "pyqtgraph"),
    "numpy": ("python3-numpy", "numpy"),
    "PySide6": ("python3-pyside6.qtcore", "PySide6"),
}
#: The Flatpak's runtime (io.qt.PySide.BaseApp) brings these.
FROM_THE_RUNTIME = {"PySide6", "shiboken6"}


def third_party(paths: list[Path]) -> set[str]:
    """Top-level names imported by these files that are not ours or the standard library."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"tungui", "tungui_helper"}


def debian_relations(package: str) -> set[str]:
    """The packages a binary package depends on or recommends."""
    control = (REPO / "packaging/debian/control").read_text()
    stanza = control.split(f"Package: {package}\n", 1)[1].split("\nPackage: ", 1)[0]
    found: set[str] = set()
    for field in ("Depends", "Recommends"):
        match = re.search(rf"^{field}:\n((?: .*\n)+)", stanza, re.MULTILINE)
        if match:
            lines = match.group(1).splitlines()
            found.update(line.strip().rstrip(",").split()[0] for line in lines)
    return found


def test_every_import_is_known() -> None:
    files = [*PACKAGE.glob("*.py"), *(REPO / "helper").glob("*.py")]
    assert third_party(files) <= set(THIRD_PARTY) | FROM_THE_RUNTIME


def test_debian_packages_bring_what_their_modules_import() -> None:
    helper_files = [*(REPO / "helper").glob("*.py")] + [
        PACKAGE / name for name in helper_side() if name.endswith(".py")
    ]
    window_files = [p for p in PACKAGE.glob("*.py") if p.name not in helper_side()]
    helper_has = debian_relations("tungui-helper")
    window_has = debian_relations("tungui") | helper_has
    for files, has in ((helper_files, helper_has), (window_files, window_has)):
        for name in third_party(files):
            assert THIRD_PARTY[name][0] in has, f"{THIRD_PARTY[name][0]} is missing"


def test_the_flatpak_pins_what_the_window_imports() -> None:
    manifest = (REPO / "packaging/flatpak/io.github.tungui.TunGui.yml").read_text()
    pinned = set(re.findall(r"^\s+([A-Za-z0-9_.-]+)==\S+ \\$", manifest, re.MULTILINE))
    imported = third_party([*PACKAGE.glob("*.py"), *(REPO / "helper").glob("*.py")])
    for name in imported - FROM_THE_RUNTIME:
        assert THIRD_PARTY[name][1] in pinned, f"the Flatpak does not pin {THIRD_PARTY[name][1]}"


def test_the_package_with_the_c_module_is_built_per_architecture() -> None:
    # setup.py builds tungui_helper._drain (a C module): the package holding
    # tungui_helper must be built per architecture and depend on its libraries.
    setup = (REPO / "setup.py").read_text()
    assert '"tungui_helper._drain"' in setup
    control = (REPO / "packaging/debian/control").read_text()
    stanza = control.split("Package: tungui-helper\n", 1)[1].split("\nPackage: ", 1)[0]
    assert re.search(r"^Architecture: any$", stanza, re.MULTILINE)
    assert "${shlibs:Depends}" in stanza
    assert re.search(r"^ python3-all-dev,$", control, re.MULTILINE)
