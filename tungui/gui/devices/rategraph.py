"""A detail pane that plots one device's receive and send rates over time.

The window feeds it one sample per Statistics tick (the helper's monotonic
timestamp and the RX and TX rates in bit/s); the graph keeps the last
``window_seconds * 10`` of them in fixed-size numpy ring buffers, so its
memory stays the same however long tungui runs, and draws the last
``window_seconds`` with pyqtgraph.  Redraws are coalesced to at most ten a
second, and none happen while the pane is hidden.

The x axis is in seconds relative to the newest sample (so the helper's
clock and the window's never need to agree); the y axis is in bit/s, with
pyqtgraph choosing the SI prefix (kbit/s, Mbit/s, ...).  Colours come from the
widget's palette and follow it when it changes, so the pane suits light and
dark themes.

pyqtgraph and numpy are optional dependencies of the window: importing this
module without them raises an ImportError that says so, and the window only
imports it when it shows the pane.
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QPalette, QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

# pyqtgraph would otherwise take whichever Qt binding it finds first.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

try:
    import numpy as np
    import numpy.typing as npt
    import pyqtgraph as pg
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"tungui's traffic graph needs pyqtgraph and numpy (pip install pyqtgraph): {error}"
    ) from error

if pg.Qt.QT_LIB != "PySide6":  # pragma: no cover - depends on the environment
    raise ImportError(
        f"tungui's traffic graph needs pyqtgraph on PySide6, but it uses {pg.Qt.QT_LIB} "
        "(PYQTGRAPH_QT_LIB is set to something else)"
    )

__all__ = ["PLACEHOLDER", "SAMPLES_PER_SECOND", "RateGraph"]

#: The title while no device is selected.
PLACEHOLDER = "Select a device to see its traffic"
#: Samples kept per second of window: the helper ticks at most every 100 ms.
SAMPLES_PER_SECOND = 10
#: At most this many redraws a second, however fast samples come.
_REDRAW_INTERVAL_MS = 100
#: The y axis never shows less than this, so an idle device is a flat line
#: at the bottom rather than noise blown up to full height.
_MIN_TOP_BITS = 1000.0
#: Candidate steps (seconds) between labelled ticks on the time axis.
_TICK_STEPS = (5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
#: Curve colours, for a light and for a dark window background.  A blue and
#: an orange stay apart for people with either common colour blindness.
_PENS = {
    False: {"rx": "#1c71d8", "tx": "#c64600"},
    True: {"rx": "#62a0ea", "tx": "#ffa348"},
}

#: Grid lines: the text colour at this alpha (0-255).
_GRID_ALPHA = 60

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, ... 8 times a power of ten) >= ``value``."""
    if value <= 0 or not math.isfinite(value):
        return _MIN_TOP_BITS
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if factor * power >= value:
            return factor * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _rate(bits_per_second: float) -> str:
    """A rate for the accessible description: "5.2 Mbit/s", or "unknown"."""
    if not math.isfinite(bits_per_second):
        return "unknown"
    return str(pg.siFormat(float(bits_per_second), suffix="bit/s"))


def _blend(color: QColor, background: QColor) -> QColor:
    """``color`` painted over an opaque ``background``, as an opaque colour."""
    alpha = color.alphaF()
    return QColor.fromRgbF(
        color.redF() * alpha + background.redF() * (1 - alpha),
        color.greenF() * alpha + background.greenF() * (1 - alpha),
        color.blueF() * alpha + background.blueF() * (1 - alpha),
    )


def _time_ticks(window_seconds: float) -> list[tuple[float, str]]:
    """Labelled ticks for the time axis: "5 min" ... "1 min", "now"."""
    step = next((s for s in _TICK_STEPS if window_seconds / s <= 6), _TICK_STEPS[-1])
    minutes = step % 60 == 0
    ticks: list[tuple[float, str]] = []
    age = 0
    while age <= window_seconds + 1e-9:
        if age == 0:
            text = "now"
        elif minutes:
            text = f"{age // 60} min"
        else:
            text = f"{age} s"
        ticks.append((-float(age), text))
        age += step
    return ticks


class RateGraph(QWidget):
    """RX and TX rates of one device over the last ``window_seconds``.

    Args:
        parent: the parent widget.
        window_seconds: how far back the graph reaches.
    """

    def __init__(self, parent: QWidget | None = None, *, window_seconds: float = 300) -> None:
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError(f"window_seconds must be positive, not {window_seconds!r}")
        super().__init__(parent)
        self._ready = False  # changeEvent may come before the plot exists
        self.setObjectName("TrafficGraph")
        self.setAccessibleName("Traffic graph")
        self._window_seconds = float(window_seconds)
        self._window_ns = round(window_seconds * 1e9)
        self._capacity = max(2, math.ceil(window_seconds * SAMPLES_PER_SECOND))
        # The rings: slot ``_next`` is written next; ``_count`` slots are in use.
        self._times: IntArray = np.zeros(self._capacity, dtype=np.int64)
        self._rx: FloatArray = np.zeros(self._capacity, dtype=np.float64)
        self._tx: FloatArray = np.zeros(self._capacity, dtype=np.float64)
        self._next = 0
        self._count = 0
        self._device: str | None = None
        self._title = PLACEHOLDER
        self._dirty = False

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(_REDRAW_INTERVAL_MS)
        self._redraw_timer.timeout.connect(self._redraw_if_shown)

        self._view = pg.PlotWidget(self)
        self._view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._view.setAccessibleName("Traffic graph plot")
        plot = self._view.getPlotItem()
        self._plot = plot
        # A display, not an instrument: no panning, zooming or context menu.
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setXRange(-self._window_seconds, 0, padding=0)
        plot.setYRange(0, _MIN_TOP_BITS, padding=0)
        plot.getViewBox().disableAutoRange()
        plot.setLabel("left", "Rate", units="bit/s")
        # The grid comes from the top and right axes, which show no values:
        # pyqtgraph drops the end labels ("0", "5 min", "now") of an axis
        # that draws grid lines.  They also frame the plot and keep "now"
        # clear of the widget's edge.
        plot.showAxis("top")
        plot.showAxis("right")
        plot.layout.setContentsMargins(4, 4, 20, 4)
        for name in ("top", "right"):
            plot.getAxis(name).setStyle(showValues=False, maxTickLevel=0)
            plot.getAxis(name).setGrid(_GRID_ALPHA)
        for name in ("left", "bottom"):
            # Major ticks only (minor grid lines are noise here); labels may
            # reach past the axis' ends.
            plot.getAxis(name).setStyle(maxTickLevel=0, hideOverlappingLabels=24)
        ticks = [_time_ticks(self._window_seconds)]
        plot.getAxis("top").setTicks(ticks)
        plot.getAxis("bottom").setTicks(ticks)
        self._legend = plot.addLegend(offset=(8, 4), colCount=2, labelTextSize=self._font_size())
        self._rx_curve = plot.plot(name="RX (received)", antialias=True)
        self._tx_curve = plot.plot(name="TX (sent)", antialias=True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self._apply_palette()
        self._legend.setVisible(False)
        self._ready = True

    # -- the public side --------------------------------------------------

    @property
    def window_seconds(self) -> float:
        """How many seconds the x axis spans."""
        return self._window_seconds

    @property
    def capacity(self) -> int:
        """How many samples the ring buffers hold at most."""
        return self._capacity

    @property
    def rx_curve(self) -> Any:
        """The RX curve (a pyqtgraph PlotDataItem)."""
        return self._rx_curve

    @property
    def tx_curve(self) -> Any:
        """The TX curve (a pyqtgraph PlotDataItem)."""
        return self._tx_curve

    @property
    def plot_item(self) -> Any:
        """The pyqtgraph PlotItem the curves are drawn in."""
        return self._plot

    def device(self) -> str | None:
        """The device whose traffic is shown, or None."""
        return self._device

    def title(self) -> str:
        """The plot's title as plain text."""
        return self._title

    def set_device(self, name: str | None) -> None:
        """Show ``name``'s traffic from now on, or nothing for None.

        The history is cleared, even when ``name`` is the device already shown.
        """
        self._device = name
        self._title = PLACEHOLDER if name is None else f"RX and TX of {name}"
        self.clear()
        self._legend.setVisible(name is not None)
        self._show_title()

    def clear(self) -> None:
        """Forget every sample and empty the plot at once."""
        self._next = 0
        self._count = 0
        self._dirty = False
        self._redraw_timer.stop()
        self._redraw()

    def add_sample(
        self, timestamp_ns: int, rx_bits_per_second: float, tx_bits_per_second: float
    ) -> None:
        """Add one tick's rates; the plot follows within a tenth of a second.

        Ignored while no device is set, and for a timestamp equal to the
        newest one's.  A timestamp before the newest one (a clock that went
        back) starts the history afresh.  A rate that is not a finite number
        is kept as NaN: a gap in its curve.
        """
        if self._device is None:
            return
        if self._count:
            newest = int(self._times[(self._next - 1) % self._capacity])
            if timestamp_ns == newest:
                return
            if timestamp_ns < newest:
                self._next = 0
                self._count = 0
        slot = self._next
        self._times[slot] = timestamp_ns
        self._rx[slot] = rx_bits_per_second if math.isfinite(rx_bits_per_second) else math.nan
        self._tx[slot] = tx_bits_per_second if math.isfinite(tx_bits_per_second) else math.nan
        self._next = (slot + 1) % self._capacity
        self._count = min(self._count + 1, self._capacity)
        self._dirty = True
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def flush(self) -> None:
        """Draw the pending samples now rather than on the next timer tick."""
        self._redraw_timer.stop()
        if self._dirty:
            self._redraw()

    def samples(self) -> tuple[IntArray, FloatArray, FloatArray]:
        """Copies of the held samples, oldest first: timestamps (ns), RX and TX (bit/s)."""
        return (
            self._ordered(self._times).copy(),
            self._ordered(self._rx).copy(),
            self._ordered(self._tx).copy(),
        )

    def point_count(self) -> int:
        """How many points the RX curve shows now."""
        x_data, _ = self._rx_curve.getData()
        return 0 if x_data is None else len(x_data)

    # -- Qt events ---------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        """Follow palette changes (a switch between light and dark themes) and font changes."""
        super().changeEvent(event)
        if not self._ready:
            return
        if event.type() == QEvent.Type.FontChange:
            self._legend.setLabelTextSize(self._font_size())
            self._apply_palette()  # which sets the labels' text again, in the new size
        elif event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    def showEvent(self, event: QShowEvent) -> None:
        """Draw what came in while the pane was hidden."""
        super().showEvent(event)
        if self._dirty:
            self._redraw()

    # -- the drawing -------------------------------------------------------

    def _ordered(self, ring: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The used part of a ring, oldest first (a view when it has not wrapped)."""
        if self._count < self._capacity:
            return ring[: self._count]
        return np.concatenate((ring[self._next :], ring[: self._next]))

    def _redraw_if_shown(self) -> None:
        if self.isVisible():
            self._redraw()

    def _redraw(self) -> None:
        """Put the samples within the window (and one before it) on the curves."""
        self._dirty = False
        if not self._count:
            self._rx_curve.setData([], [])
            self._tx_curve.setData([], [])
            self._plot.setYRange(0, _MIN_TOP_BITS, padding=0)
            self.setAccessibleDescription("")
            return
        times = self._ordered(self._times)
        newest = int(times[-1])
        # One point past the left edge, so the lines reach it.
        first = max(int(np.searchsorted(times, newest - self._window_ns, side="left")) - 1, 0)
        x = (times[first:] - newest).astype(np.float64) / 1e9
        rx = self._ordered(self._rx)[first:].copy()
        tx = self._ordered(self._tx)[first:].copy()
        self._rx_curve.setData(x, rx)
        self._tx_curve.setData(x, tx)
        # fmax skips NaN (gaps), and all-NaN comes out as the initial 0.
        peak = max(float(np.fmax.reduce(rx, initial=0.0)), float(np.fmax.reduce(tx, initial=0.0)))
        # Headroom above the peak keeps the lines clear of the legend.
        top = max(_nice_ceiling(peak * 1.2), _MIN_TOP_BITS)
        self._plot.setYRange(0, top, padding=0)
        self.setAccessibleDescription(f"Now receiving {_rate(rx[-1])}, sending {_rate(tx[-1])}")

    def _show_title(self) -> None:
        palette = self.palette()
        color = palette.color(QPalette.ColorRole.WindowText)
        if self._device is None:
            # Rich text ignores a colour's alpha: blend it over the background.
            color = _blend(
                palette.color(QPalette.ColorRole.PlaceholderText),
                palette.color(QPalette.ColorRole.Window),
            )
        self._plot.setTitle(html.escape(self._title), color=color.name(), size=self._font_size())

    def _font_size(self) -> str:
        size = self.font().pointSizeF()
        return f"{size if size > 0 else 9:g}pt"

    def _apply_palette(self) -> None:
        """Take the background, text and curve colours from the palette."""
        palette = self.palette()
        window = palette.color(QPalette.ColorRole.Window)
        text = palette.color(QPalette.ColorRole.WindowText)
        dark = window.lightnessF() < 0.5
        self._view.setBackground(window)
        for name in ("left", "bottom", "top", "right"):
            axis = self._plot.getAxis(name)
            axis.setPen(text)
            axis.setTextPen(text)
        legend_back = QColor(window)
        legend_back.setAlphaF(0.8)
        self._legend.setBrush(legend_back)
        self._legend.setPen(None)
        self._legend.setLabelTextColor(text)
        # pyqtgraph 0.14 stores the new colour but leaves the labels as drawn.
        for _sample, label in self._legend.items:
            label.setText(label.text)
        pens = _PENS[dark]
        self._rx_curve.setPen(pg.mkPen(pens["rx"], width=2))
        self._tx_curve.setPen(pg.mkPen(pens["tx"], width=2))
        self._show_title()
