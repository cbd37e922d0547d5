"""The polkit_agent fixture: a real password prompt, held open and answered by the test.

nobody calls the helper interactively; polkit (no rule, so the actions'
defaults: auth_admin_keep for manage, auth_admin for manage-foreign) sends
the prompt to the test's agent.  What the prompt shows, what the helper does
while it waits, and what each answer leads to.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import pytest
from dbus_fast import Variant

from tests.support.helper import HelperProcess
from tests.support.helperbus import devices, variants
from tests.support.names import POLKIT_POLICY_FILE
from tests.support.netns import Netns
from tests.support.polkit import PolkitDaemon, bus_name_subject
from tests.support.polkitagent import CALLER_PID, SUBJECT_PID, PolkitAgents, process_subject
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MANAGE = "io.github.tungui.manage"
FOREIGN = "io.github.tungui.manage-foreign"
NOT_AUTHORIZED = "io.github.tungui.Error.NotAuthorized"
ROOT = [("unix-user", {"uid": Variant("u", 0)})]
TAP = variants(mode="tap", name="tap%d", persist=True)
#: What polkit shows for TAP: the action's message with the helper's details.
CREATE_TAP = "Authentication is required to create the TAP device tap%d"


def policy_message(action_id: str) -> str:
    """The message our .policy file gives an action (what polkit shows by default)."""
    root = ElementTree.parse(POLKIT_POLICY_FILE).getroot()  # our own, trusted file
    action = next(a for a in root.iter("action") if a.attrib["id"] == action_id)
    return action.findtext("message") or ""


def start_time(pid: int) -> int | None:
    """The start time polkit knows a process by; None once it is gone."""
    try:
        return int(process_subject(pid)[1]["start-time"].value)
    except FileNotFoundError:
        return None


def test_the_call_waits_at_the_prompt_until_it_is_authenticated(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    before = clean_netns.link_names()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        prompt = agent.wait_for_prompt()
        assert prompt.action_id == MANAGE
        assert policy_message(MANAGE) == "Authentication is required to $(request)"
        assert prompt.message == CREATE_TAP
        assert prompt.identities == ROOT  # nobody is in Debian's admin group (sudo)
        assert prompt.subject_pid == caller.pid
        # The helper waits on polkit: no reply yet, and nothing made.
        assert not call.done()
        assert clean_netns.link_names() == before
        prompt.authenticate()
        (name,) = call.result()
    assert prompt.outcome == "authenticated"
    link = clean_netns.link(name)
    assert link is not None and link["linkinfo"]["info_data"]["type"] == "tap"


def test_a_cancelled_prompt_refuses_the_call_and_makes_nothing(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    before = clean_netns.link_names()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        agent.wait_for_prompt().cancel()
        assert call.error().name == NOT_AUTHORIZED
    assert clean_netns.link_names() == before


def test_a_prompt_left_open_is_cancelled_with_the_agent(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    before = clean_netns.link_names()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        prompt = agent.wait_for_prompt()
    assert prompt.outcome == "cancelled"
    assert call.error().name == NOT_AUTHORIZED
    assert clean_netns.link_names() == before


def test_polkit_withdraws_the_prompt_when_the_helper_leaves(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        prompt = agent.wait_for_prompt()
        try:
            helper.stop()
            assert prompt.ended.wait(5)
            assert prompt.outcome == "withdrawn"
            assert call.error().name == "org.freedesktop.DBus.Error.NoReply"
        finally:
            helper.start()


def test_only_an_interactive_call_reaches_the_prompt(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        refused = caller.call("CreateDevice", "a{sv}", TAP, interactive=False).error()
        assert refused.name == NOT_AUTHORIZED
        assert "allowing interactive authorization" in refused.message
        assert agent.prompts_seen == 0


def test_the_prompt_shows_polkits_own_details(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        prompt = agent.wait_for_prompt()
        prompt.cancel()
        call.error()
    # The helper's details never reach an agent (see the next test): the
    # details are polkit's, naming the helper (caller) and nobody (subject).
    assert prompt.details == {CALLER_PID: str(helper.pid), SUBJECT_PID: str(caller.pid)}
    # The prompt names the device through the message, which polkit expands
    # from the helper's details.
    assert prompt.message == CREATE_TAP


def test_details_reach_the_message_never_the_agent(
    helper: HelperProcess, polkit: PolkitDaemon, polkit_agent: PolkitAgents
) -> None:
    """What a mechanism passes (here the test, as root, asking for the
    caller as the helper does) and what the user is shown of it."""
    caller = polkit_agent.spawn_caller()
    details = {"device": "tg0", "polkit.message": "Change $(device) for $(user)?", "user": "x"}
    with polkit_agent.for_process(caller.pid) as agent, ThreadPoolExecutor(1) as pool:
        asked = pool.submit(
            polkit.check,
            MANAGE,
            bus_name_subject(caller.unique_name),
            details=details,
            allow_user_interaction=True,
        )
        prompt = agent.wait_for_prompt()
        assert prompt.message == "Change tg0 for x?"
        assert set(prompt.details) == {CALLER_PID, SUBJECT_PID}
        prompt.cancel()
        answer = asked.result()
    assert not answer.authorized and answer.details["polkit.dismissed"] == "true"


def test_a_kept_authorization_spares_that_process_alone_a_second_prompt(
    helper: HelperProcess, clean_netns: Netns, polkit: PolkitDaemon, polkit_agent: PolkitAgents
) -> None:
    first, second = polkit_agent.spawn_caller(), polkit_agent.spawn_caller()
    with polkit_agent.for_process(first.pid) as agent:
        call = first.call("CreateDevice", "a{sv}", TAP)
        agent.wait_for_prompt().authenticate()
        call.result()
        # auth_admin_keep: polkit keeps it for this process, and says so.
        kept = polkit.check(MANAGE, process_subject(first.pid))
        assert kept.authorized and "polkit.temporary_authorization_id" in kept.details
        (again,) = first.call("CreateDevice", "a{sv}", TAP).result()
        assert agent.prompts_seen == 1
    assert clean_netns.link(again) is not None
    # Another process of the same user is asked again.
    assert polkit.check(MANAGE, process_subject(second.pid)).challenge
    with polkit_agent.for_process(second.pid) as agent:
        call = second.call("CreateDevice", "a{sv}", TAP)
        agent.wait_for_prompt().cancel()
        assert call.error().name == NOT_AUTHORIZED


def test_a_one_time_authorization_prompts_every_time(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    for name in ("pkforeign0", "pkforeign1"):
        clean_netns.ip("link", "add", name, "type", "bridge")
    wait_until(lambda: {"pkforeign0", "pkforeign1"} <= devices().keys(), what="bridges listed")
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("DeleteDevice", "s", "pkforeign0")
        prompt = agent.wait_for_prompt()
        assert (prompt.action_id, prompt.message) == (
            FOREIGN,
            "Authentication is required to remove pkforeign0, "
            "because pkforeign0 was not created by tungui",
        )
        prompt.authenticate()
        assert call.result() == []
        # auth_admin: nothing kept, so the next call prompts again.
        call = caller.call("DeleteDevice", "s", "pkforeign1")
        prompt = agent.wait_for_prompt()
        assert prompt.action_id == FOREIGN
        prompt.cancel()
        assert call.error().name == NOT_AUTHORIZED
    assert clean_netns.link("pkforeign0") is None
    assert clean_netns.link("pkforeign1") is not None


#: The caller the next test leaves authorized: (pid, start time).
_left_behind: list[tuple[int, int | None]] = []


def test_a_test_leaves_a_kept_authorization_behind(
    helper: HelperProcess, clean_netns: Netns, polkit: PolkitDaemon, polkit_agent: PolkitAgents
) -> None:
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        agent.wait_for_prompt().authenticate()
        call.result()
    assert polkit.check(MANAGE, process_subject(caller.pid)).authorized
    _left_behind.append((caller.pid, start_time(caller.pid)))


def test_the_next_test_is_prompted_again(
    helper: HelperProcess, clean_netns: Netns, polkit_agent: PolkitAgents
) -> None:
    if not _left_behind:
        pytest.skip("runs after test_a_test_leaves_a_kept_authorization_behind")
    # polkit keeps it for that process (pid and start time); the fixture
    # ended the process, so it can never apply again.
    pid, started = _left_behind.pop()
    assert start_time(pid) != started
    caller = polkit_agent.spawn_caller()
    with polkit_agent.for_process(caller.pid) as agent:
        call = caller.call("CreateDevice", "a{sv}", TAP)
        prompt = agent.wait_for_prompt()
        assert not call.done()
        prompt.cancel()
        assert call.error().name == NOT_AUTHORIZED
