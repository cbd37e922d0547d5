"""The caps' bookkeeping, and that their budget adds up."""

from __future__ import annotations

import pytest

from tungui_helper import limits
from tungui_helper.errors import LimitsExceeded
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
