"""Turns: one line per user, served in turn."""

from __future__ import annotations

from tungui_helper.turns import Turns


def test_keys_are_served_in_turn_and_each_line_in_order() -> None:
    turns: Turns[str] = Turns()
    for n in range(5):
        turns.add("flood", f"flood{n}")
    turns.add("root", "root0")
    turns.add("root", "root1")
    turns.add("other", "other0")
    assert len(turns) == 8
    taken = [turns.take() for _ in range(8)]
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
    assert turns.take() is None and len(turns) == 0


def test_a_key_that_comes_later_waits_for_one_item_of_each_other_key_at_most() -> None:
    turns: Turns[str] = Turns()
    for n in range(1000):
        turns.add(n % 3, f"flood{n}")
    assert turns.take() == "flood0"
    turns.add("late", "late")
    ahead = []
    while (item := turns.take()) != "late":
        ahead.append(item)
    # One of each key that waits, whatever the length of its line.
    assert ahead == ["flood1", "flood2", "flood3"]
