"""Small charts drawn on the server as inline SVG: no script needed to see them.

This module computes geometry only; templates emit the ``<svg>`` elements, so every
label passes through autoescaping like any other value on a page. Charts stretch to
their box (``preserveAspectRatio="none"``), so their text is written in HTML next to
them, where it keeps its size at any width.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shipyard.ui.render import format_number

WIDTH = 320.0
HEIGHT = 100.0
MIN_BAR = 2.0  # a bin holding anything stays visible next to one holding millions


def number(value: float) -> str:
    """An edge or quantile: 4 significant digits, but whole thousands written out
    (``12,345`` reads better than ``1.234e+04`` under an axis)."""
    if math.isfinite(value) and 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return format_number(value)


@dataclass(frozen=True)
class Bar:
    """One bin: its rectangle in the chart's coordinates and what it holds, for people."""

    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # "10 – 20: 42"


@dataclass(frozen=True)
class HistogramChart:
    """A histogram ready to draw in a ``viewBox`` of ``width`` by ``height``."""

    width: float
    height: float
    bars: list[Bar]
    low: str  # the first edge, formatted
    high: str  # the last edge, formatted
    max_count: int


def histogram_chart(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    label: Callable[[float], str] = number,
    width: float = WIDTH,
    height: float = HEIGHT,
) -> HistogramChart | None:
    """Bars for ``counts`` between consecutive ``edges`` (one more edge than counts).

    Returns None for what cannot be drawn honestly: no bins, edges that do not match
    the counts, or edges that are not finite numbers. Bins are drawn at equal widths
    (profiles use equal-width bins; a single-value column has one bin of zero width).
    """
    if not counts or len(edges) != len(counts) + 1:
        return None
    if not all(isinstance(e, int | float) and math.isfinite(e) for e in edges):
        return None
    if any(not isinstance(c, int) or c < 0 for c in counts):
        return None
    top = max(counts)
    step = width / len(counts)
    gap = min(1.0, step * 0.1)  # a hairline between bars, none when bins are very thin
    bars = []
    for i, count in enumerate(counts):
        h = 0.0 if top == 0 or count == 0 else max(MIN_BAR, height * count / top)
        bars.append(
            Bar(
                x=round(i * step, 2),
                y=round(height - h, 2),
                width=round(max(step - gap, 0.5), 2),
                height=round(h, 2),
                count=count,
                label=f"{label(edges[i])} – {label(edges[i + 1])}: {count:,}",
            )
        )
    return HistogramChart(
        width=width,
        height=height,
        bars=bars,
        low=label(edges[0]),
        high=label(edges[-1]),
        max_count=top,
    )


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def _or_number(fmt: Callable[[float], str]) -> Callable[[float], str]:
    """``fmt``, falling back to the plain number for values outside the calendar."""

    def label(value: float) -> str:
        try:
            return fmt(value)
        except (OverflowError, ValueError):
            return number(value)

    return label


def edge_label(column_type: str) -> Callable[[float], str]:
    """How to write a histogram edge of a column of Arrow type ``column_type``.

    Profiles keep temporal histograms in seconds: since the epoch for dates and
    timestamps, after midnight for times of day, and plain seconds for durations.
    """
    if column_type.startswith("date"):
        return _or_number(lambda s: _utc(s).date().isoformat())
    if column_type.startswith("timestamp"):
        return _or_number(lambda s: _utc(s).strftime("%Y-%m-%d %H:%M"))
    if column_type.startswith("time"):
        return _or_number(lambda s: _utc(s % 86_400).strftime("%H:%M:%S"))
    if column_type.startswith("duration"):
        return lambda s: f"{number(s)} s"
    return number
