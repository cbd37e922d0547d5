"""The table: both runs side by side, and whether issue 4's targets were met."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .runs import Run, backlog
from .sampling import CLOCK_TICK, MB, Sample
from .vm import DEVICE, FRAME_BYTES


def core_percent(ticks: int, seconds: float) -> float:
    return ticks / CLOCK_TICK / seconds * 100


def mb(value: float) -> str:
    return f"{value / MB:,.1f}"


@dataclass
class Figures:
    seconds: float
    frames: int
    rate: float
    slowest: float
    helper_cpu: float
    front_cpu: float
    threads: dict[str, float]
    helper_us: float
    writer_cpu: float
    front_us: float
    bus_rate: float
    statistics_rate: float
    bus_kinds: list[tuple[str, float]]
    helper_rss: list[int]
    front_rss: list[int]
    list_updates: float
    late_median: float
    late_max: float


def figures(run: Run) -> Figures:
    first, last = run.samples[0], run.samples[-1]
    seconds = last.at - first.at
    frames = last.frames - first.frames
    per_second = [
        (b.frames - a.frames) / (b.at - a.at)
        for a, b in zip(run.samples[1:-1], run.samples[2:-1], strict=False)
    ]
    helper_ticks = last.helper_ticks - first.helper_ticks
    front_ticks = last.front_ticks - first.front_ticks
    bus = last.bus - first.bus
    late = [float(s.window.get("late_ms", 0.0)) for s in run.samples[1:]]
    return Figures(
        seconds=seconds,
        frames=frames,
        rate=frames / seconds,
        slowest=min(per_second) if per_second else frames / seconds,
        helper_cpu=core_percent(helper_ticks, seconds),
        front_cpu=core_percent(front_ticks, seconds),
        threads={
            name: core_percent(last.thread_ticks[name] - first.thread_ticks.get(name, 0), seconds)
            for name in last.thread_ticks
        },
        helper_us=helper_ticks / CLOCK_TICK / max(frames, 1) * 1e6,
        writer_cpu=core_percent(last.writer_ticks - first.writer_ticks, seconds),
        front_us=front_ticks / CLOCK_TICK / max(frames, 1) * 1e6,
        bus_rate=sum(bus.values()) / seconds,
        statistics_rate=bus["sig Statistics"] / seconds,
        bus_kinds=[(kind, n / seconds) for kind, n in bus.most_common(4)],
        helper_rss=[s.helper_rss for s in run.samples],
        front_rss=[s.front_rss for s in run.samples],
        list_updates=(last.window.get("updates", 0) - first.window.get("updates", 0)) / seconds,
        late_median=statistics.median(late) if late else 0.0,
        late_max=max(late) if late else 0.0,
    )


def every_ten_seconds(run: Run) -> list[Sample]:
    """The first sample, one each 10 s after it, and the last."""
    start = run.samples[0].at
    kept: dict[int, Sample] = {}
    for s in run.samples:
        if round(s.at - start) % 10 == 0:
            kept.setdefault(round(s.at - start), s)
    kept[round(run.samples[-1].at - start)] = run.samples[-1]
    return list(kept.values())


def warm_growth(rss: list[int]) -> int:
    """Growth from a sixth of the way in (10 s of a 60 s flood) to the end."""
    return rss[-1] - rss[len(rss) // 6]


def report(runs: Sequence[Run], args: argparse.Namespace) -> str:
    from PySide6 import __version__ as pyside

    ref, flood = runs
    a, b = figures(ref), figures(flood)
    rows: list[tuple[str, str, str]] = []

    def row(name: str, fmt: Callable[[Figures, Run], str]) -> None:
        rows.append((name, fmt(a, ref), fmt(b, flood)))

    row("rate asked (frames/s)", lambda f, r: f"{r.rate:,}")
    row("rate reached, kernel rx (frames/s)", lambda f, r: f"{f.rate:,.0f}")
    row("  slowest second", lambda f, r: f"{f.slowest:,.0f}")
    row("frames through flood0", lambda f, r: f"{f.frames:,} in {f.seconds:.1f} s")
    row("helper CPU (% of one core)", lambda f, r: f"{f.helper_cpu:.1f}")
    row("  per frame (µs)", lambda f, r: f"{f.helper_us:.2f}" if f.frames else "no frames")
    row("front end CPU (% of one core)", lambda f, r: f"{f.front_cpu:.1f}")

    def thread(name: str) -> Callable[[Figures, Run], str]:
        return lambda f, r: f"{f.threads.get(name, 0.0):.1f}"

    for name, label in (("gui", "GUI"), ("reader", "capture reader"), ("bus", "bus")):
        row(f"  {label} thread", thread(name))
    row("  per frame (µs)", lambda f, r: f"{f.front_us:.2f}" if f.frames else "no frames")
    row("flood writer CPU, kernel's share in", lambda f, r: f"{f.writer_cpu:.1f}")
    row("D-Bus messages/s, all", lambda f, r: f"{f.bus_rate:.2f}")
    row("  of which Statistics signals", lambda f, r: f"{f.statistics_rate:.2f}")
    row(
        "helper RSS start / end (MB)",
        lambda f, r: f"{mb(f.helper_rss[0])} / {mb(f.helper_rss[-1])}",
    )
    row("helper peak, VmHWM (MB)", lambda f, r: mb(r.final_helper_hwm))
    row(
        "helper growth: whole / after 1/6 (MB)",
        lambda f, r: (
            f"{(f.helper_rss[-1] - f.helper_rss[0]) / MB:+.1f} / "
            f"{warm_growth(f.helper_rss) / MB:+.1f}"
        ),
    )
    row(
        "front end RSS start / end (MB)",
        lambda f, r: f"{mb(f.front_rss[0])} / {mb(f.front_rss[-1])}",
    )
    row("front end peak, VmHWM (MB)", lambda f, r: mb(r.final_front_hwm))
    row(
        "front end growth: whole / after 1/6 (MB)",
        lambda f, r: (
            f"{(f.front_rss[-1] - f.front_rss[0]) / MB:+.1f} / {warm_growth(f.front_rss) / MB:+.1f}"
        ),
    )

    def window(key: str) -> Callable[[Figures, Run], str]:
        return lambda f, r: f"{int(r.final_window.get(key, 0)):,}"

    row("window: packets its capture thread read", window("parsed"))
    row("  put in the list", window("listed"))
    row("  in the list at the end", window("rows"))
    row("  let go to keep the list bounded", window("pushed_out"))
    row("  skipped, faster than the list", window("skipped"))
    row("  dropped before reaching tungui", window("dropped"))
    row("  sampled out by the helper (about)", window("sampled"))
    row(
        "  queued in the front end: flood end / last",
        lambda f, r: f"{r.behind_at_end:,} / {backlog(r.final_window):,}",
    )
    row(
        "  caught up after the flood in",
        lambda f, r: (
            "not within limit" if r.caught_up_after is None else f"{r.caught_up_after:.1f} s"
        ),
    )
    row("list updates (row insertions) per second", lambda f, r: f"{f.list_updates:.1f}")
    row(
        "GUI event loop late, median / max (ms)",
        lambda f, r: f"{f.late_median:.0f} / {f.late_max:,.0f}",
    )

    width = max(len(r[0]) for r in rows) + 2
    head_a, head_b = f"reference ({ref.rate:,}/s)", f"flood ({flood.rate:,}/s)"
    lines = [
        f"Python {platform.python_version()}, PySide6 {pyside}, kernel {platform.release()}, "
        f"{os.cpu_count()} CPUs; Qt offscreen; front end as root",
        f"TAP {DEVICE} held by a C program writing {FRAME_BYTES}-byte UDP frames into it; "
        f"one window watching (Watch Packets + main window with its graph); "
        f"{args.seconds:g} s each",
        "",
        f"{'':<{width}}{head_a:>24}{head_b:>26}",
    ]
    lines += [f"{name:<{width}}{x:>24}{y:>26}" for name, x, y in rows]
    for run in runs:
        if run.cut_short:
            lines.append(f"{run.label}: {run.cut_short}")

    lines += ["", "RSS every 10 s (MB): helper, front end"]
    for run in runs:
        start = run.samples[0].at
        points = "  ".join(
            f"{s.at - start:>3.0f}s {mb(s.helper_rss)}, {mb(s.front_rss)}"
            for s in every_ten_seconds(run)
        )
        lines.append(f"  {run.label:<9} {points}")
    lines += ["", "Busiest bus messages (per second):"]
    for run, f in ((ref, a), (flood, b)):
        kinds = ", ".join(f"{kind} {n:.2f}" for kind, n in f.bus_kinds)
        lines.append(f"  {run.label:<9} {kinds}")

    same_bus = abs(b.bus_rate - a.bus_rate) <= max(0.5, 0.1 * a.bus_rate)
    flat = {
        "helper": warm_growth(b.helper_rss) <= 5 * MB,
        "front end": warm_growth(b.front_rss) <= 5 * MB,
    }
    lines += [
        "",
        f"bus messages/s constant whatever the rate: {a.bus_rate:.2f} vs {b.bus_rate:.2f} "
        f"({'met' if same_bus else 'MISSED'}; within 10% or 0.5/s)",
        "memory flat over the flood (at most 5 MB of growth after the first sixth): "
        + ", ".join(f"{who} {'met' if ok else 'MISSED'}" for who, ok in flat.items()),
    ]
    return "\n".join(lines)
