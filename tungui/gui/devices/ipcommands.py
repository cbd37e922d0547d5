"""A device as the ``ip`` commands that would make it, for "Copy as command".

So a person can script what they clicked.  Pure functions, no Qt.
"""

from __future__ import annotations

import shlex

from tungui.accounts import group_name, user_name
from tungui_contract.device import Device


def ip_commands(device: Device) -> str:
    """The commands that recreate ``device`` as it is now, one per line."""
    name = shlex.quote(device.name)
    kind = device.kind
    lines: list[str] = []
    if kind == "bridge":
        lines.append(f"ip link add name {name} type bridge")
    else:
        words = ["ip", "tuntap", "add", "dev", name, "mode", kind]
        if device.owner >= 0:
            words += ["user", shlex.quote(user_name(device.owner))]
        if device.group >= 0:
            words += ["group", shlex.quote(group_name(device.group))]
        flags = {"pi": device.pi, "vnet_hdr": device.vnet_hdr, "multi_queue": device.multi_queue}
        words += [flag for flag, on in flags.items() if on]
        if not device.persist:
            lines.append(
                "# tungui holds this device only while it runs; `ip tuntap add` makes it "
                "persistent (remove it with `ip tuntap del`)."
            )
        lines.append(" ".join(words))
    link = []
    if device.mtu:
        link += ["mtu", str(device.mtu)]
    if device.mac and kind != "tun":
        link += ["address", device.mac]
    if link:
        lines.append(f"ip link set dev {name} " + " ".join(link))
    if device.master:
        lines.append(f"ip link set dev {name} master {shlex.quote(device.master)}")
    for address in device.addresses:
        lines.append(f"ip address add {shlex.quote(address)} dev {name}")
    if device.up:
        lines.append(f"ip link set dev {name} up")
    return "\n".join(lines) + "\n"
