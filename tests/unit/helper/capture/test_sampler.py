"""The one sampler both capture sources use: at most max_rate packets a second."""

from __future__ import annotations

from tungui_helper.capture.sampler import FIRST_LOOK, SAMPLING_PERIOD, Sampler


def test_a_flood_is_sampled_down_to_the_rate_at_the_first_look() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.offered(100)  # 100 packets in 10 ms: 10,000 a second
    assert not sampler.choose(FIRST_LOOK / 2)
    assert sampler.choose(FIRST_LOOK)
    assert sampler.keep_one_in == 10


def test_later_looks_come_once_a_period() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.choose(FIRST_LOOK)
    sampler.offered(20_000)
    assert not sampler.choose(FIRST_LOOK + SAMPLING_PERIOD / 2)
    assert sampler.choose(FIRST_LOOK + SAMPLING_PERIOD)
    assert sampler.keep_one_in == 80  # 20,000 in 0.25 s


def test_a_burst_is_acted_on_at_once() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.offered(50, burst=50_000.0)
    assert sampler.choose(0.001)
    assert sampler.keep_one_in == 50


def test_small_wobbles_of_the_rate_change_nothing() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.offered(1000)
    sampler.choose(0.01)
    assert sampler.keep_one_in == 100
    sampler.offered(int(105 * 1000 * SAMPLING_PERIOD))  # 5% more
    assert not sampler.choose(0.01 + SAMPLING_PERIOD)
    assert sampler.keep_one_in == 100
    sampler.offered(int(150 * 1000 * SAMPLING_PERIOD))  # 50% more
    assert sampler.choose(0.01 + 2 * SAMPLING_PERIOD)
    assert sampler.keep_one_in == 150


def test_a_quiet_device_is_no_longer_sampled() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.offered(1000)
    sampler.choose(0.01)
    sampler.offered(10)
    assert sampler.choose(0.01 + SAMPLING_PERIOD)
    assert sampler.keep_one_in == 1


def test_asking_for_every_packet_stops_sampling_at_once() -> None:
    sampler = Sampler(1000, now=0.0)
    sampler.offered(1000)
    sampler.choose(0.01)
    sampler.set_max_rate(0, now=0.02)
    assert sampler.keep_one_in == 1
    sampler.offered(1_000_000)
    assert not sampler.choose(1.0)
    assert sampler.keep_one_in == 1
