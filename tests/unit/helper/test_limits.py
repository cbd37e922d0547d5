"""The caps' bookkeeping, and that their budget adds up."""

from __future__ import annotations

import pytest

from tungui_contract.errors import LimitsExceeded
from tungui_helper import limits
from tungui_helper.limits import Tally


def test_a_tally_refuses_past_its_cap_and_counts_nothing_then() -> None:
    tally = Tally(3, "At most {cap}.")
    tally.take(1000, 2)
    with pytest.raises(LimitsExceeded, match=r"^At most 3\.$"):
        tally.take(1000, 2)
    assert tally[1000] == 2
    tally.take(1000)
    tally.take(1001, 3)
    tally.give_back(1000, 3)
    assert tally[1000] == 0
    assert len(tally) == 1, "a key holding nothing is forgotten"


def test_the_descriptor_budget_covers_the_caps() -> None:
    per_user = (
        limits.CAPTURES_PER_USER * 4
        + 2 * limits.HELD_QUEUES_PER_USER  # the queues, and a capture's duplicates
        + limits.CALLS_PER_USER
    )
    assert per_user <= limits.FDS_PER_USER
    assert limits.CALLS_PER_CONNECTION <= limits.CALLS_PER_USER
    assert limits.PROMPTS_PER_USER <= limits.CALLS_PER_USER
    assert limits.CHECK_TIMEOUT < limits.INTERACTIVE_TIMEOUT


def test_transient_caps_count_every_connection_of_a_user_and_devices_on_their_way() -> None:
    from tungui_helper.limits import HELD_QUEUES_PER_USER, TRANSIENT_DEVICES_PER_USER, TransientCaps

    uids = {":1.1": 1000, ":1.2": 1000, ":1.3": 1001}
    holdings = [(":1.1", 1), (":1.2", 3), (":1.3", 5)]
    caps = TransientCaps(lambda: holdings, uids.get)
    assert caps.held(1000) == (2, 4)
    with caps.making(1000, 2):
        assert caps.held(1000) == (3, 6)
        assert caps.held(1001) == (1, 5)
    assert caps.held(1000) == (2, 4)
    with pytest.raises(LimitsExceeded, match="would have more than"):
        caps.making(1000, HELD_QUEUES_PER_USER - 3).__enter__()
    holdings.extend([(":1.1", 1)] * (TRANSIENT_DEVICES_PER_USER - 2))
    with pytest.raises(LimitsExceeded, match="already has"):
        caps.making(1000, 1).__enter__()
    assert caps.held(1000)[0] == TRANSIENT_DEVICES_PER_USER, "a refusal counts nothing"
