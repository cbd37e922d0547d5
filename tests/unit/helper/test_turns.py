"""Lines and Turns: one line per user, started in turn, paced by the bus socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tungui_helper.turns import Lines, Turns


def test_keys_are_served_in_turn_and_each_line_in_order() -> None:
    lines: Lines[str] = Lines()
    for n in range(5):
        lines.add("flood", f"flood{n}")
    lines.add("root", "root0")
    lines.add("root", "root1")
    lines.add("other", "other0")
    assert len(lines) == 8
    taken = [lines.take() for _ in range(8)]
    assert taken == [
        "flood0",
        "root0",
        "other0",
        "flood1",
        "root1",
        "flood2",
        "flood3",
        "flood4",
    ]
    assert lines.take() is None and len(lines) == 0


def test_a_key_that_comes_later_waits_for_one_item_of_each_other_key_at_most() -> None:
    lines: Lines[str] = Lines()
    for n in range(1000):
        lines.add(n % 3, f"flood{n}")
    assert lines.take() == "flood0"
    lines.add("late", "late")
    ahead = []
    while (item := lines.take()) != "late":
        ahead.append(item)
    # One of each key that waits, whatever the length of its line.
    assert ahead == ["flood1", "flood2", "flood3"]


def test_one_item_is_started_per_round_of_the_loop() -> None:
    async def scenario() -> list[str]:
        started: list[str] = []
        turns: Turns[str] = Turns(started.append, None)
        for n in range(100):
            turns.add("flood", f"flood{n}")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # What comes in between two rounds (a read of the socket) is next.
        turns.add("root", "root")
        while turns:
            await asyncio.sleep(0)
        return started

    started = asyncio.run(scenario())
    assert started.index("root") <= 3
    assert [s for s in started if s != "root"] == [f"flood{n}" for n in range(100)]


def test_nothing_is_started_while_replies_wait_for_the_socket() -> None:
    async def scenario() -> None:
        waiting: list[Callable[[], None]] = []
        backlog = [True]

        def when_written(callback: Callable[[], None]) -> bool:
            if not backlog[0]:
                return False
            waiting.append(callback)
            return True

        started: list[str] = []
        turns: Turns[str] = Turns(started.append, when_written)
        turns.add("flood", "flood0")
        turns.add("root", "root0")
        for _ in range(10):
            await asyncio.sleep(0)
        assert started == [] and len(turns) == 2 and len(waiting) == 1
        backlog[0] = False
        waiting.pop()()
        for _ in range(10):
            await asyncio.sleep(0)
        assert started == ["flood0", "root0"] and not waiting

    asyncio.run(scenario())
