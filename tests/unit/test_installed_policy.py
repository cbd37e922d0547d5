"""What is installed around the helper: its systemd unit and its D-Bus policy.

They keep the confinement the helper relies on
(tests/integration/test_bus_policy.py tries the policy on a real bus).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
