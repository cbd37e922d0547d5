"""``tunguictl list --json`` and ``monitor`` print the helper's device dicts as they were.

The client library hands over Device records; the CLI prints their wire
form (``Device.to_wire``), so scripts that read its JSON see the same keys
and values as before the records (issue 11).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.devicedicts import lab_tap
from tungui.cli import main as cli
from tungui.cli.main import main
from tungui.client import HelperClient
from tungui_contract.device import Device

BRIDGE = {
    "name": "br-lab", "index": 3, "kind": "bridge", "managed": True, "operstate": "up",
    "up": True, "mtu": 1500, "mac": "fe:00:5e:10:00:02", "addresses": ["192.0.2.254/24"],
    "master": "",
}  # fmt: skip
TUN = {
    "name": "vpn0", "index": 9, "kind": "tun", "managed": False, "operstate": "down",
    "up": False, "mtu": 1400, "addresses": [], "master": "", "mode": "tun", "persist": True,
    "owner": -1, "group": -1, "pi": True, "vnet_hdr": False, "multi_queue": False,
    "queues_attached": 0, "disabled_queues": 0, "held": False, "transient": False,
}  # fmt: skip
WIRE: list[dict[str, Any]] = [lab_tap(), BRIDGE, TUN]


class _FakeClient:
    async def list_devices(self) -> list[Device]:
        return [Device.from_wire(d) for d in WIRE]

    async def close(self) -> None:
        pass


def test_list_json_is_the_helper_s_dicts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def connect(address: str | None = None) -> _FakeClient:
        return _FakeClient()

    monkeypatch.setattr(HelperClient, "connect", connect)
    assert main(["list", "--json"]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(WIRE, indent=2, sort_keys=True) + "\n"


def test_monitor_prints_each_change_as_its_dict(capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_change([Device.from_wire(TUN)], ["gone0"])
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"event": "changed", "device": TUN},
        {"event": "removed", "name": "gone0"},
    ]
