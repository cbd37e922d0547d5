"""The traffic graph: ring buffers, curves, redraw coalescing and palette."""

from __future__ import annotations

import math
from typing import Any

import pytest

pytest.importorskip("pyqtgraph")

import numpy as np
from PySide6.QtGui import QColor, QPalette

from tungui.gui.devices.rategraph import PLACEHOLDER, RateGraph

SECOND = 1_000_000_000
T0 = 5_000 * SECOND  # an arbitrary monotonic clock reading


@pytest.fixture
def graph(qtbot: Any) -> RateGraph:
    widget = RateGraph(window_seconds=10)
    qtbot.addWidget(widget)
    widget.resize(480, 240)
    widget.set_device("tap0")
    return widget


def feed(graph: RateGraph, count: int, step_ns: int = SECOND // 10, start: int = 0) -> None:
    for i in range(start, start + count):
        graph.add_sample(T0 + i * step_ns, 1_000.0 * i, 10.0 * i)


def test_samples_become_curve_points_in_seconds_before_the_newest(graph: RateGraph) -> None:
    rates = [(5e6, 1e6), (5.5e6, 1.2e6), (4.5e6, 0.8e6), (6e6, 1.1e6)]
    for i, (rx, tx) in enumerate(rates):
        graph.add_sample(T0 + i * SECOND, rx, tx)
    graph.flush()

    x, y = graph.rx_curve.getData()
    np.testing.assert_allclose(x, [-3.0, -2.0, -1.0, 0.0])
    np.testing.assert_allclose(y, [rx for rx, _ in rates])
    x, y = graph.tx_curve.getData()
    np.testing.assert_allclose(x, [-3.0, -2.0, -1.0, 0.0])
    np.testing.assert_allclose(y, [tx for _, tx in rates])
    assert graph.point_count() == 4

    times, rx_samples, tx_samples = graph.samples()
    assert times.tolist() == [T0 + i * SECOND for i in range(4)]
    assert rx_samples.tolist() == [5e6, 5.5e6, 4.5e6, 6e6]
    assert tx_samples.tolist() == [1e6, 1.2e6, 0.8e6, 1.1e6]
    # The y axis reaches above the peak and scales its unit.
    bottom, top = graph.plot_item.viewRange()[1]
    assert bottom == 0
    assert top >= 6e6
    assert "Mbit/s" in graph.plot_item.getAxis("left").labelString()
    assert graph.accessibleDescription() == "Now receiving 6 Mbit/s, sending 1.1 Mbit/s"


def test_the_curve_shows_the_window_and_one_point_before_it(graph: RateGraph) -> None:
    feed(graph, 30, step_ns=SECOND)  # 30 s of samples, a 10 s window
    graph.flush()
    x, _ = graph.rx_curve.getData()
    assert x[0] == -11.0
    assert x[-1] == 0.0
    assert graph.point_count() == 12
    assert len(graph.samples()[0]) == 30  # held, though not shown


def test_the_ring_buffer_stays_at_its_capacity_and_drops_the_oldest(graph: RateGraph) -> None:
    capacity = graph.capacity
    assert capacity == 100  # 10 s at 10 samples a second
    arrays = (graph._times, graph._rx, graph._tx)
    nbytes = [a.nbytes for a in arrays]

    feed(graph, 10 * capacity)
    graph.flush()

    assert (graph._times, graph._rx, graph._tx) == arrays
    assert [a.nbytes for a in arrays] == nbytes
    assert all(a.size == capacity for a in arrays)
    times, rx, tx = graph.samples()
    assert len(times) == len(rx) == len(tx) == capacity
    newest = 10 * capacity - 1
    oldest = newest - capacity + 1
    assert times[0] == T0 + oldest * SECOND // 10
    assert times[-1] == T0 + newest * SECOND // 10
    assert rx.tolist() == [1_000.0 * i for i in range(oldest, newest + 1)]
    assert tx.tolist() == [10.0 * i for i in range(oldest, newest + 1)]
    assert np.all(np.diff(times) > 0)
    assert graph.point_count() == capacity
    _, y = graph.rx_curve.getData()
    assert y.tolist() == rx.tolist()


def test_set_device_clears_and_titles_the_plot(graph: RateGraph) -> None:
    feed(graph, 20)
    graph.flush()
    assert graph.title() == "RX and TX of tap0"
    assert graph.point_count() == 20

    graph.set_device("tap1")
    assert graph.device() == "tap1"
    assert graph.title() == "RX and TX of tap1"
    assert graph.point_count() == 0
    assert all(len(a) == 0 for a in graph.samples())
    feed(graph, 3)
    graph.flush()
    assert graph.point_count() == 3

    graph.set_device(None)
    assert graph.title() == PLACEHOLDER == "Select a device to see its traffic"
    assert graph.point_count() == 0
    feed(graph, 3)  # nobody's samples: ignored
    graph.flush()
    assert graph.point_count() == 0
    assert len(graph.samples()[0]) == 0


def test_a_device_name_is_not_taken_for_markup(graph: RateGraph) -> None:
    graph.set_device("a<b>&c")
    assert graph.title() == "RX and TX of a<b>&c"
    assert "a&lt;b&gt;&amp;c" in graph.plot_item.titleLabel.item.toHtml()


def test_a_repeated_timestamp_is_ignored_and_one_from_the_past_starts_afresh(
    graph: RateGraph,
) -> None:
    graph.add_sample(T0, 1.0, 2.0)
    graph.add_sample(T0 + SECOND, 3.0, 4.0)
    graph.add_sample(T0 + SECOND, 5.0, 6.0)
    assert graph.samples()[1].tolist() == [1.0, 3.0]
    graph.add_sample(T0 - SECOND, 7.0, 8.0)
    times, rx, _ = graph.samples()
    assert times.tolist() == [T0 - SECOND]
    assert rx.tolist() == [7.0]


def test_a_burst_of_samples_is_drawn_in_a_few_redraws(qtbot: Any) -> None:
    graph = RateGraph()  # 300 s, room for 3,000 samples
    qtbot.addWidget(graph)
    graph.set_device("tap0")
    graph.show()
    qtbot.waitExposed(graph)
    redraws = []
    original = graph.rx_curve.setData

    def counting(*args: Any, **kwargs: Any) -> Any:
        redraws.append(len(args[0]))
        return original(*args, **kwargs)

    graph.rx_curve.setData = counting
    feed(graph, 1_000)
    assert graph.point_count() == 0  # not yet: redraws wait for the timer
    qtbot.waitUntil(lambda: graph.point_count() == 1_000, timeout=2_000)
    assert redraws == [1_000]
    x, y = graph.rx_curve.getData()
    assert x[0] == pytest.approx(-99.9)
    assert y[-1] == 999_000.0
    graph.grab()  # and it paints without complaint


def test_nothing_is_drawn_while_hidden_until_shown(graph: RateGraph, qtbot: Any) -> None:
    feed(graph, 5)
    qtbot.wait(250)  # the redraw timer has fired by now
    assert graph.point_count() == 0
    graph.show()
    qtbot.waitExposed(graph)
    assert graph.point_count() == 5


def test_colours_follow_the_palette(graph: RateGraph) -> None:
    palette = QPalette(graph.palette())
    palette.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor("#e8eaed"))
    graph.setPalette(palette)

    view = graph.findChild(type(graph.plot_item.getViewWidget()))
    assert view is not None
    assert view.backgroundBrush().color() == QColor("#202124")
    for name in ("left", "bottom"):
        axis = graph.plot_item.getAxis(name)
        assert axis.pen().color() == QColor("#e8eaed")
        assert axis.textPen().color() == QColor("#e8eaed")
    legend = graph.plot_item.legend
    assert legend.isVisible()
    for _sample, label in legend.items:
        assert "#e8eaed" in label.item.toHtml()
    # Lighter curve colours on a dark background.
    assert graph.rx_curve.opts["pen"].color().lightnessF() > 0.5


def test_accessible_and_checked_arguments(qtbot: Any) -> None:
    graph = RateGraph()
    qtbot.addWidget(graph)
    assert graph.accessibleName() == "Traffic graph"
    assert graph.title() == PLACEHOLDER
    assert graph.window_seconds == 300
    assert graph.capacity == 3_000
    assert not graph.plot_item.legend.isVisible()
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="window_seconds"):
            RateGraph(window_seconds=bad)


def test_a_rate_that_is_not_a_number_is_a_gap(graph: RateGraph) -> None:
    for i, rx in enumerate([1e6, math.nan, 3e6, math.inf, 2e6]):
        graph.add_sample(T0 + i * SECOND, rx, 0.0)
    graph.flush()
    _, y = graph.rx_curve.getData()
    assert np.isnan(y).tolist() == [False, True, False, True, False]
    assert graph.plot_item.viewRange()[1][1] >= 3e6
    graph.add_sample(T0 + 5 * SECOND, math.nan, 0.0)
    graph.flush()
    assert graph.accessibleDescription() == "Now receiving unknown, sending 0 bit/s"
    graph.grab()


def test_the_text_follows_the_font_size(graph: RateGraph) -> None:
    font = graph.font()
    font.setPointSizeF(15)
    graph.setFont(font)
    assert "font-size:15pt" in graph.plot_item.titleLabel.item.toHtml()
    for _sample, label in graph.plot_item.legend.items:
        assert "font-size:15pt" in label.item.toHtml()
