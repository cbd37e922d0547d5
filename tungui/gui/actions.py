"""What a person can do in tungui, defined once, as data.

Each :class:`ActionSpec` holds an action's text, icon, shortcut, tip and the
rule for when it can be used; :data:`ACTIONS` lists them.  The main window's
menus, its toolbar and the device list's context menu are built from these
tables (and a tray's menu will be too), and one function, :func:`enabled`,
says whether an action can be used in a given :class:`State`, so no view
enables an action by hand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from tungui_contract.device import Device

from . import icons


class Act(enum.Enum):
    """The actions, by name."""

    NEW_TUN = "new_tun"
    NEW_TAP = "new_tap"
    NEW_BRIDGE = "new_bridge"
    UP = "up"
    PROPERTIES = "properties"
    WATCH = "watch"
    SEND = "send"
    COPY = "copy"
    DELETE = "delete"
    FILTER = "filter"
    QUIT = "quit"


class Needs(enum.Flag):
    """What an action needs before it can be used."""

    NOTHING = 0
    #: The helper answers (it may be away, or not installed).
    HELPER = enum.auto()
    #: A device is selected.
    DEVICE = enum.auto()
    #: The selected device is a TUN or TAP device (not a bridge).
    TUNTAP = enum.auto()


@dataclass(frozen=True)
class ActionSpec:
    """One action as a person sees it, and when it can be used."""

    act: Act
    text: str
    icon: str
    #: A key sequence ("Ctrl+B") or one of the platform's standard keys.
    shortcut: str | QKeySequence.StandardKey | None
    tip: str
    needs: Needs


@dataclass(frozen=True)
class State:
    """What the rules of :class:`Needs` look at."""

    helper: bool
    device: Device | None


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        Act.NEW_TUN,
        "New &TUN…",
        "network-vpn",
        QKeySequence.StandardKey.New,
        "Create a TUN device (IP packets, for VPNs and tunnels)",
        Needs.HELPER,
    ),
    ActionSpec(
        Act.NEW_TAP,
        "New T&AP…",
        "network-wired",
        "Ctrl+Shift+N",
        "Create a TAP device (Ethernet frames, for VMs and emulators)",
        Needs.HELPER,
    ),
    ActionSpec(
        Act.NEW_BRIDGE,
        "New &Bridge…",
        "network-workgroup",
        "Ctrl+B",
        "Create a bridge to join TAP devices",
        Needs.HELPER,
    ),
    ActionSpec(
        Act.UP, "Bring &Up", "go-up", "Ctrl+U", "Bring the device up", Needs.HELPER | Needs.DEVICE
    ),
    ActionSpec(
        Act.PROPERTIES,
        "&Properties…",
        "document-properties",
        "F2",
        "Change the device",
        Needs.HELPER | Needs.DEVICE,
    ),
    ActionSpec(
        Act.WATCH,
        "&Watch Packets…",
        "edit-find",
        "Ctrl+Shift+W",
        "See the device's packets as they pass, and save them for Wireshark",
        Needs.HELPER | Needs.DEVICE,
    ),
    ActionSpec(
        Act.SEND,
        "&Send Packet…",
        "go-down",
        "Ctrl+Shift+S",
        "Put a packet into the device, as its program would (the host receives it)",
        Needs.HELPER | Needs.DEVICE | Needs.TUNTAP,
    ),
    ActionSpec(
        Act.COPY,
        "Copy as &Command",
        "edit-copy",
        "Ctrl+Shift+C",
        "Copy the ip commands that make this device",
        Needs.DEVICE,
    ),
    ActionSpec(
        Act.DELETE,
        "&Delete",
        "edit-delete",
        QKeySequence.StandardKey.Delete,
        "Remove the device",
        Needs.HELPER | Needs.DEVICE,
    ),
    ActionSpec(
        Act.FILTER,
        "&Filter",
        "edit-find",
        QKeySequence.StandardKey.Find,
        "Filter the device list",
        Needs.NOTHING,
    ),
    # Explicit: the platform's StandardKey.Quit is empty on some desktops.
    ActionSpec(Act.QUIT, "&Quit", "application-exit", "Ctrl+Q", "Quit tungui", Needs.NOTHING),
)

SPECS: dict[Act, ActionSpec] = {spec.act: spec for spec in ACTIONS}

#: A menu or a toolbar: actions in order, None for a separator.
Layout = tuple[Act | None, ...]

#: The actions on the selected device (the Device menu, the list's context menu).
DEVICE_ACTIONS: Layout = (Act.UP, Act.PROPERTIES, Act.WATCH, Act.SEND, Act.COPY, Act.DELETE)
#: The menu bar: each menu's title and its actions.
MENUS: tuple[tuple[str, Layout], ...] = (
    ("&File", (Act.NEW_TUN, Act.NEW_TAP, Act.NEW_BRIDGE, None, Act.QUIT)),
    ("&Device", DEVICE_ACTIONS),
    ("&View", (Act.FILTER,)),
)
TOOLBAR: Layout = (
    Act.NEW_TUN,
    Act.NEW_TAP,
    Act.NEW_BRIDGE,
    None,
    Act.UP,
    Act.PROPERTIES,
    Act.DELETE,
    Act.COPY,
)


def enabled(spec: ActionSpec, state: State) -> bool:
    """Whether the action can be used in this state."""
    if Needs.HELPER in spec.needs and not state.helper:
        return False
    if Needs.DEVICE in spec.needs and state.device is None:
        return False
    return not (Needs.TUNTAP in spec.needs and (state.device is None or not state.device.is_tuntap))


def make_action(spec: ActionSpec, parent: QWidget) -> QAction:
    """The QAction of a spec; added to ``parent`` so its shortcut works everywhere in it."""
    action = QAction(icons.icon(spec.icon), spec.text, parent)
    action.setObjectName(spec.act.value)
    if spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
    action.setToolTip(spec.tip)
    action.setStatusTip(spec.tip)
    if spec.act is Act.QUIT:
        action.setMenuRole(QAction.MenuRole.QuitRole)
    parent.addAction(action)
    return action
