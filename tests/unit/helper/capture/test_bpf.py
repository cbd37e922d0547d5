"""The classic BPF program a capture runs in the kernel: cut, and sample at random.

The program is attached to a unix datagram socket (the kernel filters what
a socket receives the same way for every family), so no link is touched.
"""

from __future__ import annotations

import socket

import pytest

from tungui_helper.capture.bpf import attach_filter, capture_filter
from tungui_helper.capture.sampler import MAX_SAMPLING, sampling_for


def received(program: bytes, count: int, size: int = 100) -> list[int]:
    """Lengths of what a socket with ``program`` receives of ``count`` datagrams."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sender, receiver:
        attach_filter(receiver, program)
        receiver.setblocking(False)
        lengths = []
        for _ in range(count):
            sender.send(b"x" * size)
            try:
                while True:
                    lengths.append(len(receiver.recv(4096)))
            except BlockingIOError:
                pass
        return lengths


def test_every_packet_is_cut_to_the_snap_length() -> None:
    assert received(capture_filter(64), 50) == [64] * 50
    assert received(capture_filter(4096), 5) == [100] * 5


def test_one_packet_in_n_is_kept_at_random() -> None:
    lengths = received(capture_filter(16, keep_one_in=4), 8000)
    assert set(lengths) == {16}
    # Binomial(8000, 1/4): mean 2000, standard deviation about 39.
    assert 1700 < len(lengths) < 2300


@pytest.mark.parametrize(
    ("offered", "max_rate", "expected"),
    [
        (500.0, 2000, 1),
        (2000.0, 2000, 1),
        (2001.0, 2000, 2),
        (500_000.0, 2000, 250),
        (1e9, 1, MAX_SAMPLING),
        (1e6, 0, 1),
    ],
)
def test_sampling_brings_the_rate_under_the_bound(
    offered: float, max_rate: int, expected: int
) -> None:
    assert sampling_for(offered, max_rate) == expected
