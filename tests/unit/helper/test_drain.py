"""The read loop of a held device's capture: the C loop and its Python twin.

A TUN/TAP queue gives one packet a read, as a datagram socket does, so the
loops read unix datagram sockets here and no link is touched.  Both loops
read the same datagrams; everything they leave (slots, lengths, sampling)
must be the same.
"""

from __future__ import annotations

import errno
import os
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tungui_helper import drain
from tungui_helper.drain import SlotReader


def datagrams() -> tuple[socket.socket, socket.socket]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setblocking(False)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return sender, receiver


def test_the_c_loop_was_built() -> None:
    # Without it the helper still works, at about 60% of the drain rate:
    # a build that lost it must not pass unnoticed.
    assert drain.BUILT
    assert SlotReader(4, 64).native
    assert not SlotReader(4, 64, native=False).native


@pytest.mark.parametrize("native", [True, False])
def test_reads_until_the_queue_is_empty(native: bool) -> None:
    sender, receiver = datagrams()
    with sender, receiver:
        for size in (10, 40, 70):
            sender.send(bytes(range(size)))
        reader = SlotReader(8, 32, native=native)
        assert reader.read(receiver.fileno(), 0) == (3, 3, 0)
        assert list(reader.lengths[:3]) == [10, 40, 70]
        # Each slot holds what fitted; the rest of a long packet was let go.
        assert bytes(reader.buffer[:10]) == bytes(range(10))
        assert bytes(reader.buffer[32:64]) == bytes(range(32))
        assert bytes(reader.buffer[64:96]) == bytes(range(32))
        # Empty queue: nothing read, no error.
        assert reader.read(receiver.fileno(), 3) == (3, 0, 0)


@pytest.mark.parametrize("native", [True, False])
def test_stops_when_the_slots_are_full(native: bool) -> None:
    sender, receiver = datagrams()
    with sender, receiver:
        for i in range(5):
            sender.send(bytes([i]) * 8)
        reader = SlotReader(3, 8, native=native)
        assert reader.read(receiver.fileno(), 1) == (3, 2, 0)
        assert bytes(reader.buffer[8:24]) == b"\0" * 8 + b"\1" * 8
        assert reader.read(receiver.fileno(), 0) == (3, 3, 0)
        assert bytes(reader.buffer) == b"\2" * 8 + b"\3" * 8 + b"\4" * 8


@pytest.mark.parametrize("native", [True, False])
def test_sampled_out_packets_leave_the_last_in_the_next_slot(native: bool) -> None:
    sender, receiver = datagrams()
    with sender, receiver:
        for i in range(1, 8):
            sender.send(bytes([i]) * i)
        reader = SlotReader(8, 16, native=native)
        reader.sample(3)
        # Kept: the 3rd and 6th; the 7th was sampled out and waits in slot 2.
        assert reader.read(receiver.fileno(), 0) == (2, 7, 0)
        assert list(reader.lengths[:2]) == [3, 6]
        assert reader.skipped_length == 7
        assert bytes(reader.buffer[32:39]) == b"\7" * 7


@pytest.mark.parametrize("native", [True, False])
def test_a_read_error_ends_the_reading_with_its_errno(native: bool) -> None:
    read_end, write_end = os.pipe()
    try:
        reader = SlotReader(4, 16, native=native)
        assert reader.read(write_end, 0) == (0, 0, errno.EBADF)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_c_loop_refuses_a_count_beyond_the_slots() -> None:
    reader = SlotReader(2, 16)
    with pytest.raises(ValueError, match="count"):
        reader.read(0, 3)


@settings(max_examples=150, deadline=None)
@given(
    slots=st.integers(1, 6),
    stride=st.sampled_from([8, 16, 24]),
    rounds=st.lists(
        st.tuples(st.lists(st.integers(0, 60), max_size=12), st.integers(1, 5), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
def test_the_c_loop_and_the_python_loop_agree(
    slots: int, stride: int, rounds: list[tuple[list[int], int, bool]]
) -> None:
    pairs = [datagrams(), datagrams()]
    readers = [SlotReader(slots, stride, native=True), SlotReader(slots, stride, native=False)]
    counts = [0, 0]
    serial = 0
    try:
        for sizes, keep_one_in, send_now in rounds:
            for size in sizes:
                serial += 1
                for sender, _receiver in pairs:
                    sender.send(bytes([serial % 256]) * size)
            results = []
            for i, reader in enumerate(readers):
                reader.sample(keep_one_in)
                result = reader.read(pairs[i][1].fileno(), counts[i])
                counts[i] = 0 if send_now else result.used
                results.append(
                    (
                        result,
                        list(reader.lengths[: result.used]),
                        bytes(reader.buffer[: (result.used + 1) * stride]),
                        reader.skipped_length,
                    )
                )
            assert results[0] == results[1]
    finally:
        for sender, receiver in pairs:
            sender.close()
            receiver.close()
