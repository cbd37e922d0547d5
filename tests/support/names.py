"""Names and paths the stack is built from: the shipped files, bus names, polkit's.

The tests know the helper as any client does, by the names written here,
and prove the shipped D-Bus and polkit files by installing them.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBUS_POLICY_FILE = REPO_ROOT / "resources" / "dbus" / "io.github.tungui.Helper1.conf"
POLKIT_POLICY_FILE = REPO_ROOT / "resources" / "polkit" / "io.github.tungui.policy"
HELPER_SOURCE_DIR = REPO_ROOT / "helper"  # the package tungui_helper (see pyproject.toml)

HELPER_BUS_NAME = "io.github.tungui.Helper1"
HELPER_OBJECT_PATH = "/io/github/tungui/Helper1"
HELPER_INTERFACE = "io.github.tungui.Helper1"

ACTION_MANAGE = "io.github.tungui.manage"
ACTION_MANAGE_FOREIGN = "io.github.tungui.manage-foreign"
ACTION_CAPTURE = "io.github.tungui.capture"
ACTIONS = (ACTION_MANAGE, ACTION_MANAGE_FOREIGN, ACTION_CAPTURE)

DBUS_NAME = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
POLKIT_BUS_NAME = "org.freedesktop.PolicyKit1"
POLKIT_PATH = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_INTERFACE = "org.freedesktop.PolicyKit1.Authority"

DBUS_DAEMON = "dbus-daemon"
POLKITD = Path("/usr/lib/polkit-1/polkitd")
POLKIT_ACTIONS_DIR = Path("/usr/share/polkit-1/actions")
POLKIT_RULES_DIR = Path("/etc/polkit-1/rules.d")

#: RequestName flag and replies (D-Bus specification).
DBUS_NAME_FLAG_DO_NOT_QUEUE = 4
DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER = 1

#: Prefixes of what a test session leaves on the machine; the pid of the
#: pytest process follows, so leftovers of a killed session can be found.
NETNS_PREFIX = "tungui-test-"
RULES_PREFIX = "49-tungui-test-"
