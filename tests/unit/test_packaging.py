"""What the packages install: the Debian split, the helper's unit and its D-Bus policy.

packaging/debian/rules names the modules and folders of ``tungui`` that go into
the tungui-helper package (client library, tunguictl, packets); the rest (gui/) go into the
window's package, which the helper's users may not have installed. The
systemd unit and the D-Bus policy keep the confinement the helper relies
on (tests/integration/test_bus_policy.py tries the policy on a real bus).
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
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
        match = re.search(rf"^{field}:\n((?: .*\n)+)", stanza, re.MULTILINE)
        if match:
            lines = match.group(1).splitlines()
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


# --------------------------------------------------------------------------
# What is installed around the helper: its systemd unit and its D-Bus policy.

UNIT = REPO / "resources/systemd/tungui-helper.service"
DBUS_POLICY = REPO / "resources/dbus/io.github.tungui.Helper1.conf"
BUS_NAME = "io.github.tungui.Helper1"
#: The interfaces anyone may call on the helper: its own and the standard ones.
CALLABLE = {
    BUS_NAME,
    "org.freedesktop.DBus.Introspectable",
    "org.freedesktop.DBus.Properties",
    "org.freedesktop.DBus.Peer",
}


def unit_settings(section: str = "Service") -> dict[str, list[str]]:
    """The unit's settings in ``section``: each key with its values, in order."""
    settings: dict[str, list[str]] = {}
    current = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_debian_unit_is_the_shipped_unit() -> None:
    # A symlink, so that the two cannot drift apart.
    debian = REPO / "packaging/debian/tungui-helper.service"
    assert debian.is_symlink()
    assert debian.resolve() == UNIT.resolve()


def test_the_unit_sets_a_descriptor_limit() -> None:
    (limit,) = unit_settings()["LimitNOFILE"]
    # One value: soft and hard alike, above the 1024 soft default.
    assert limit.isdigit(), limit
    assert 4096 <= int(limit) <= 65536


def test_the_unit_keeps_the_confinement_the_helper_relies_on() -> None:
    service = unit_settings()
    assert service["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ProtectKernelTunables"] == ["yes"]
    # The only writable part of /sys, and /dev read-only on top of the
    # device cgroup.
    assert service["ReadWritePaths"] == ["/sys/devices/virtual/net"]
    assert service["ReadOnlyPaths"] == ["/dev"]
    assert service["DevicePolicy"] == ["closed"]
    assert service["DeviceAllow"] == ["/dev/net/tun rw"]
    assert service["IPAddressDeny"] == ["any"]
    # uid 0 with two capabilities, for the reasons written in the unit;
    # switching to a user of its own must revisit them (and the D-Bus policy).
    for key in ("User", "DynamicUser", "AmbientCapabilities", "PrivateUsers"):
        assert key not in service, key


def policy_rules() -> list[tuple[str, str, dict[str, str]]]:
    """Every rule of the D-Bus policy: (context, allow or deny, attributes)."""
    rules = []
    for policy in ET.parse(DBUS_POLICY).getroot().iter("policy"):  # our own file
        context = policy.get("context") or f"user={policy.get('user')}"
        for rule in policy:
            rules.append((context, rule.tag, dict(rule.attrib)))
    return rules


def test_only_root_may_own_the_name() -> None:
    owners = [(c, kind) for c, kind, a in policy_rules() if a.get("own") == BUS_NAME]
    assert owners == [("user=root", "allow"), ("default", "deny")]
    for _, _, attributes in policy_rules():
        assert "own_prefix" not in attributes
        assert attributes.get("own") in (None, BUS_NAME)


def test_the_default_policy_has_no_blanket_allow_for_the_name() -> None:
    default = [(kind, a) for c, kind, a in policy_rules() if c == "default"]
    # First everything sent to the helper alone is refused (broadcasts are
    # left to the helper's subscriptions: polkitd's Changed must reach it)...
    assert default[:2] == [
        ("deny", {"own": BUS_NAME}),
        ("deny", {"send_destination": BUS_NAME, "send_broadcast": "false"}),
    ]
    # ...then each allow names the helper and lets through method calls on
    # one callable interface without descriptors, or replies it asked for.
    interfaces = set()
    for kind, attributes in default[2:]:
        assert kind == "allow", attributes
        assert attributes.get("send_destination") == BUS_NAME, attributes
        assert not any(key.startswith("receive_") for key in attributes), attributes
        if attributes.get("send_type") == "method_call":
            assert set(attributes) == {
                "send_destination",
                "send_type",
                "send_interface",
                "max_fds",
            }
            assert attributes["max_fds"] == "0"
            interfaces.add(attributes["send_interface"])
        else:
            # An <allow> matches only requested replies unless told otherwise.
            assert attributes == {
                "send_destination": BUS_NAME,
                "send_type": attributes["send_type"],
            }
            assert attributes["send_type"] in ("method_return", "error")
    assert interfaces == CALLABLE


def test_no_rule_opens_anything_to_everyone() -> None:
    for context, kind, attributes in policy_rules():
        if kind != "allow":
            continue
        assert "*" not in attributes.values(), (context, attributes)
        assert attributes.get("send_destination", BUS_NAME) == BUS_NAME, (context, attributes)
        assert attributes.get("send_requested_reply") != "false", (context, attributes)
        assert attributes.get("eavesdrop") != "true", (context, attributes)


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
