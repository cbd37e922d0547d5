"""What the packages install: the Debian split, the packager's checklist.

packaging/debian/rules names the modules and folders of ``tungui`` that go into
the tungui-helper package (client library, tunguictl, packets); the rest (gui/) go into the
window's package, which the helper's users may not have installed.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tungui"
CONTRACT = REPO / "contract"


def helper_side() -> set[str]:
    """The entries of the tungui package (modules and whole folders) tungui-helper ships."""
    rules = (REPO / "packaging/debian/rules").read_text()
    match = re.search(r"^HELPER_SIDE = ((?:.*\\\n)*.*)$", rules, re.MULTILINE)
    assert match is not None, "HELPER_SIDE is gone from packaging/debian/rules"
    return set(match.group(1).replace("\\\n", " ").split())


def helper_files() -> list[Path]:
    """The Python files of the tungui package that tungui-helper ships."""
    files: list[Path] = []
    for entry in sorted(helper_side()):
        path = PACKAGE / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if f.suffix == ".py"]


def entry_of(module: str) -> str:
    """The top-level entry of the tungui package that holds a dotted module name."""
    parts = module.split(".")
    assert parts[0] == "tungui", module
    if len(parts) == 1:
        return "__init__.py"
    return parts[1] if (PACKAGE / parts[1]).is_dir() else parts[1] + ".py"


def tungui_imports(module: Path) -> set[str]:
    """The entries of the tungui package that ``module`` imports, at any depth of its code."""
    package = list(module.relative_to(REPO).with_suffix("").parts)[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        if name != "tungui" and not name.startswith("tungui."):
            continue
        found.add(entry_of(name))
        if name == "tungui":  # from tungui import x: a module, or a name from __init__.py
            found.update(
                entry_of(f"tungui.{alias.name}")
                for alias in node.names
                if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
            )
    return found


def test_the_helper_package_has_every_module_its_modules_import() -> None:
    shipped = helper_side()
    assert {"cli", "client", "packets"} <= shipped
    assert "gui" not in shipped
    for path in helper_files():
        missing = tungui_imports(path) - shipped
        assert not missing, f"{path} imports {sorted(missing)}, which tungui-helper lacks"


def test_the_scan_sees_the_tungui_imports() -> None:
    """The rule above would pass on a scan that found nothing."""
    assert tungui_imports(PACKAGE / "cli" / "capture.py") >= {"client", "packets"}
    assert "gui" in tungui_imports(PACKAGE / "gui" / "devices" / "controller.py")


def test_the_install_file_lists_the_same_modules() -> None:
    install = (REPO / "packaging/debian/tungui-helper.install").read_text()
    listed = set(re.findall(r"dist-packages/tungui/(\S+)", install))
    assert listed == helper_side()
    # The contract, which both the helper and the client library import.
    assert "usr/lib/python3*/dist-packages/tungui_contract\n" in install


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
    return names - set(sys.stdlib_module_names) - {"tungui", "tungui_helper", "tungui_contract"}


def debian_relations(package: str) -> set[str]:
    """The packages a binary package depends on or recommends."""
    control = (REPO / "packaging/debian/control").read_text()
    stanza = control.split(f"Package: {package}\n", 1)[1].split("\nPackage: ", 1)[0]
    found: set[str] = set()
    for field in ("Depends", "Recommends"):
        # Comment lines (#) may stand between the relations.
        match = re.search(rf"^{field}:\n((?:[ #].*\n)+)", stanza, re.MULTILINE)
        if match:
            lines = [line for line in match.group(1).splitlines() if line.startswith(" ")]
            found.update(line.strip().rstrip(",").split()[0] for line in lines)
    return found


def test_every_import_is_known() -> None:
    files = [*PACKAGE.rglob("*.py"), *(REPO / "helper").glob("*.py"), *CONTRACT.glob("*.py")]
    assert third_party(files) <= set(THIRD_PARTY) | FROM_THE_RUNTIME


def test_debian_packages_bring_what_their_modules_import() -> None:
    shipped = helper_files()
    helper_side_files = [*(REPO / "helper").glob("*.py"), *CONTRACT.glob("*.py"), *shipped]
    window_files = [p for p in PACKAGE.rglob("*.py") if p not in shipped]
    helper_has = debian_relations("tungui-helper")
    window_has = debian_relations("tungui") | helper_has
    for files, has in ((helper_side_files, helper_has), (window_files, window_has)):
        for name in third_party(files):
            assert THIRD_PARTY[name][0] in has, f"{THIRD_PARTY[name][0]} is missing"


def test_the_flatpak_pins_what_the_window_imports() -> None:
    manifest = (REPO / "packaging/flatpak/io.github.tungui.TunGui.yml").read_text()
    pinned = set(re.findall(r"^\s+([A-Za-z0-9_.-]+)==\S+ \\$", manifest, re.MULTILINE))
    imported = third_party([*PACKAGE.rglob("*.py"), *(REPO / "helper").glob("*.py")])
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


def test_every_import_package_is_built() -> None:
    """pyproject.toml lists the packages by hand: a new folder must be among them."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    folders = {"tungui": "tungui", **project["package-dir"]}
    found = set()
    for package, folder in folders.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *relative)))
    assert "tungui.gui.devices" in found and "tungui_helper.capture" in found
    assert listed == found


# --------------------------------------------------------------------------
# The packager's checklist: what packaging/README.md says to install builds,
# the relations survive a binNMU, and the programs have their man pages.


def control_field(field: str, stanza: str = "Source: tungui\n") -> list[str]:
    """The package names of a relation field of one stanza of debian/control."""
    control = (REPO / "packaging/debian/control").read_text()
    text = control.split(stanza, 1)[1].split("\n\n", 1)[0]
    match = re.search(rf"^{field}:\n((?:[ #].*\n)+)", text + "\n", re.MULTILINE)
    assert match is not None, f"{field} is missing"
    lines = [line for line in match.group(1).splitlines() if line.startswith(" ")]
    return [line.strip().rstrip(",").split()[0] for line in lines]


def readme_installs() -> list[set[str]]:
    """The packages of each ``sudo apt-get install`` of the README's Debian section."""
    readme = (REPO / "packaging/README.md").read_text()
    section = readme.split("## Debian packages", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    prefix = "sudo apt-get install "
    return [
        set(line[len(prefix) :].split()) for line in block.splitlines() if line.startswith(prefix)
    ]


def test_the_readme_installs_the_build_dependencies() -> None:
    build, indep = readme_installs()
    # debhelper provides debhelper-compat, dh-python dh-sequence-python3.
    provided = {"debhelper-compat": "debhelper", "dh-sequence-python3": "dh-python"}
    needed = {provided.get(name, name) for name in control_field("Build-Depends")}
    assert needed <= build, f"the README does not install {sorted(needed - build)}"
    assert "python3-dpkt" in needed  # tests/unit/packets/test_sendform.py imports dpkt
    # The window's man page runs "tungui --help", which imports its libraries.
    window = set(control_field("Build-Depends-Indep")) - needed
    assert window <= indep | {"python3-pyside6.qtcore", "python3-pyside6.qtgui"}


def test_the_window_depends_on_the_helper_in_a_binnmu_safe_way() -> None:
    # tungui is Architecture: all, tungui-helper any: a binNMU of the helper
    # (0.1.0+b1) must satisfy the window's relation (lintian:
    # not-binnmuable-all-depends-any).
    control = (REPO / "packaging/debian/control").read_text()
    stanza = control.split("Package: tungui\n", 1)[1]
    relations = re.findall(r"^ tungui-helper (\(.*\)),$", stanza, re.MULTILINE)
    assert relations == ["(>= ${source:Version})", "(<< ${source:Version}.1~)"]
    assert "${binary:Version}" not in stanza


def test_the_window_brings_the_plugin_that_draws_its_icons() -> None:
    assert list((PACKAGE / "gui" / "iconset").glob("*.svg"))
    assert "qt6-svg-plugins" in debian_relations("tungui")


def test_every_program_gets_a_man_page_from_its_help() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    programs = set(re.findall(r"^([a-z-]+) = \"[a-z_.]+:main\"$", pyproject, re.MULTILINE))
    assert programs == {"tungui", "tunguictl", "tungui-helper"}
    rules = (REPO / "packaging/debian/rules").read_text()
    installs = {
        package: (REPO / f"packaging/debian/{package}.install").read_text()
        for package in ("tungui", "tungui-helper")
    }
    for program in programs:
        made = re.search(rf"debian/manpage debian/tmp/usr/bin/{program} (\d)", rules)
        assert made is not None, f"no man page is made for {program}"
        page = f"usr/share/man/man{made.group(1)}/{program}.{made.group(1)}\n"
        owner = "tungui" if program == "tungui" else "tungui-helper"
        assert page in installs[owner], f"{owner} does not install {page.strip()}"


def test_the_completions_are_installed() -> None:
    install = (REPO / "packaging/debian/tungui-helper.install").read_text()
    assert (
        "packaging/completions/bash/tunguictl usr/share/bash-completion/completions/\n" in install
    )
    assert "packaging/completions/zsh/_tunguictl usr/share/zsh/vendor-completions/\n" in install


def test_the_autopkgtest_runs_the_integration_tests_on_a_machine_of_its_own() -> None:
    tests = (REPO / "packaging/debian/tests/control").read_text()
    stanza = tests.split("Tests: integration\n", 1)[1].split("\n\n", 1)[0]
    restrictions = re.search(r"^Restrictions: (.*)$", stanza, re.MULTILINE)
    assert restrictions is not None
    assert {"needs-root", "isolation-machine"} <= set(restrictions.group(1).split(", "))
    script = (REPO / "packaging/debian/tests/integration").read_text()
    assert "-m integration tests/integration" in script


def test_build_leftovers_are_ignored() -> None:
    assert ".pybuild/" in (REPO / ".gitignore").read_text().splitlines()
