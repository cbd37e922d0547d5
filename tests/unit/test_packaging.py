"""The Debian split: tungui-helper's modules of the tungui package stand on their own.

packaging/debian/rules names the modules of ``tungui`` that go into the
tungui-helper package (client library, tunguictl); the rest go into the
window's package, which the helper's users may not have installed.
"""

from __future__ import annotations

import ast
import re
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
    found = set()
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
