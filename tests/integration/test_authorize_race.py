"""What was authorized is what is acted on, however long polkit took.

nobody's call waits at a real password prompt (the polkit_agent fixture)
while the test changes the world under it; then the test answers the
prompt.  The helper must act on the device it asked polkit about, by its
interface index, and only if that device needs no more now than what was
authorized.  Each race is made deterministic by the prompt.
"""

from __future__ import annotations

import pytest

from tests.support.helper import HelperProcess
from tests.support.helperbus import create, create_bridge, variants
from tests.support.netns import Netns
from tests.support.polkitagent import PolkitAgents
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MANAGE = "io.github.tungui.manage"
NOT_AUTHORIZED = "io.github.tungui.Error.NotAuthorized"
NOT_FOUND = "io.github.tungui.Error.NotFound"


def test_a_name_taken_by_another_device_meanwhile_does_not_redirect_the_act(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    name = create(mode="tap", name="tap%d", persist=True)
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("DeleteDevice", "s", name)
        prompt = agent.wait_for_prompt()
        assert prompt.action_id == MANAGE
        assert prompt.message == f"Authentication is required to remove {name}"
        # While the user types: tungui's TAP is renamed, and a device
        # tungui did not make takes its name.
        clean_netns.ip("link", "set", name, "name", "moved0")
        clean_netns.ip("tuntap", "add", "mode", "tap", "name", name)
        prompt.authenticate()
        assert call.result() == []
    # The authorized device is gone; the other program's device is untouched.
    wait_until(lambda: clean_netns.link("moved0") is None, what="the authorized TAP removed")
    other = clean_netns.link(name)
    assert other is not None and other.get("ifalias", "") != "tungui"


def test_a_device_that_needs_more_once_authorized_is_left_alone(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    bridge = create_bridge(name="br%d", up=True)
    tap = create(mode="tap", name="tap%d", persist=True, master=bridge)
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("ConfigureDevice", "sa{sv}", tap, variants(mtu=1280))
        prompt = agent.wait_for_prompt()
        assert prompt.action_id == MANAGE
        # While the user types: the bridge gets a port tungui did not make;
        # through it, the TAP now reaches that LAN (manage-foreign's).
        clean_netns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        clean_netns.ip("link", "set", "lan0", "master", bridge)
        prompt.authenticate()
        refused = call.error()
    assert refused.name == NOT_AUTHORIZED
    assert "changed while you were being asked" in refused.message
    assert clean_netns.link(tap)["mtu"] == 1500  # type: ignore[index]


def test_a_device_gone_meanwhile_is_not_made_again(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    tap = create(mode="tap", name="tap%d", persist=True)
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        packet = b"\xff" * 6 + bytes(54)
        call = caller.call("InjectPacket", "say", tap, packet)
        prompt = agent.wait_for_prompt()
        clean_netns.ip("link", "del", tap)
        prompt.authenticate()
        refused = call.error()
    assert refused.name == NOT_FOUND, refused
    assert "went away" in refused.message
    assert clean_netns.link_names() == ["lo"]
