"""A device as the ``ip`` commands that would make it, for "Copy as command".

So a person can script what they clicked.  Pure functions, no Qt.
"""

from __future__ import annotations

import shlex
from typing import Any

from .accounts import group_name, user_name

Device = dict[str, Any]


def ip_commands(device: Device) -> str:
    """The commands that recreate ``device`` as it is now, one per line."""
    name = shlex.quote(str(device["name"]))
    kind = device.get("kind")
    lines: list[str] = []
    if kind == "bridge":
        lines.append(f"ip link add name {name} type bridge")
    else:
        words = ["ip", "tuntap", "add", "dev", name, "mode", str(kind)]
        if int(device.get("owner", -1)) >= 0:
            words += ["user", shlex.quote(user_name(int(device["owner"])))]
        if int(device.get("group", -1)) >= 0:
            words += ["group", shlex.quote(group_name(int(device["group"])))]
        for key in ("pi", "vnet_hdr", "multi_queue"):
            if device.get(key):
                words.append(key)
        if not device.get("persist"):
            lines.append(
                "# tungui holds this device only while it runs; `ip tuntap add` makes it "
                "persistent (remove it with `ip tuntap del`)."
            )
        lines.append(" ".join(words))
    link = []
    if device.get("mtu"):
        link += ["mtu", str(device["mtu"])]
    if device.get("mac") and kind != "tun":
        link += ["address", str(device["mac"])]
    if link:
        lines.append(f"ip link set dev {name} " + " ".join(link))
    if device.get("master"):
        lines.append(f"ip link set dev {name} master {shlex.quote(str(device['master']))}")
    for address in device.get("addresses", []):
        lines.append(f"ip address add {shlex.quote(str(address))} dev {name}")
    if device.get("up"):
        lines.append(f"ip link set dev {name} up")
    return "\n".join(lines) + "\n"
