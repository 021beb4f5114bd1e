"""Histograms drawn on the server: geometry, what cannot be drawn, labels, and escaping."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from shipyard.ui.render import environment
from shipyard.ui.svg_charts import HEIGHT, MIN_BAR, WIDTH, edge_label, histogram_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_scale_to_the_fullest_bin() -> None:
    chart = histogram_chart([0.0, 1.0, 2.0, 3.0, 4.0], [10, 5, 0, 1000])
    assert chart is not None
    heights = [b.height for b in chart.bars]
    assert heights[3] == HEIGHT  # the fullest bin fills the chart
    assert heights[1] == MIN_BAR  # 5 of 1000 would be invisible: kept at the minimum
    assert heights[2] == 0  # an empty bin draws nothing
    assert all(math.isclose(b.y + b.height, HEIGHT) for b in chart.bars)  # on one baseline
    xs = [b.x for b in chart.bars]
    assert xs == sorted(xs) and xs[0] == 0
    assert chart.bars[-1].x + chart.bars[-1].width <= WIDTH
    assert [b.count for b in chart.bars] == [10, 5, 0, 1000]
    assert chart.bars[3].label == "3 – 4: 1,000"
    assert (chart.low, chart.high, chart.max_count) == ("0", "4", 1000)


def test_a_single_value_is_one_full_bar() -> None:
    chart = histogram_chart([7.0, 7.0], [42])
    assert chart is not None
    [bar] = chart.bars
    assert (bar.x, bar.height) == (0, HEIGHT)
    assert bar.width > WIDTH * 0.9


def test_all_empty_bins_draw_no_bars() -> None:
    chart = histogram_chart([0.0, 1.0, 2.0], [0, 0])
    assert chart is not None
    assert [b.height for b in chart.bars] == [0, 0]


@pytest.mark.parametrize(
    ("edges", "counts"),
    [
        ([], []),
        ([0.0, 1.0], []),
        ([0.0, 1.0, 2.0], [1]),  # one edge too many
        ([0.0, 1.0], [1, 2]),  # one edge too few
        ([0.0, math.inf], [3]),
        ([math.nan, 1.0], [3]),
        ([0.0, 1.0], [-1]),
    ],
)
def test_what_cannot_be_drawn_honestly_is_not_drawn(edges: list[float], counts: list[int]) -> None:
    assert histogram_chart(edges, counts) is None


def test_edges_are_written_for_the_column_type() -> None:
    day = 19_723 * 86_400.0  # 2024-01-01 in epoch seconds
    assert edge_label("date32[day]")(day) == "2024-01-01"
    assert edge_label("timestamp[us, tz=UTC]")(day + 3_600 * 13.5) == "2024-01-01 13:30"
    assert edge_label("time64[us]")(3_661.0) == "01:01:01"
    assert edge_label("duration[s]")(90.0) == "90 s"
    assert edge_label("double")(0.123456) == "0.1235"
    assert edge_label("int64")(1234.0) == "1234"
    assert edge_label("int64")(1_234_567.4) == "1,234,567"
    assert edge_label("double")(-2.5e20) == "-2.5e+20"
    # Beyond the calendar: the number itself rather than an error.
    assert edge_label("timestamp[s]")(1e18) == "1e+18"


def test_the_drawing_escapes_what_it_shows() -> None:
    chart = histogram_chart([0.0, 1.0, 2.0], [3, 4], label=lambda v: f"<b>{v}</b>")
    assert chart is not None
    macro = environment().get_template("datasets/macros.html").module.hist  # type: ignore[attr-defined]
    html = str(macro(chart, '<script>alert("x")</script>'))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
    svg = ET.fromstring(
        html[html.index("<svg") : html.index("</svg>") + 6].replace(
            "<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1
        )
    )
    rects = svg.findall(f"{SVG}rect")
    assert len(rects) == 2
    assert [r.find(f"{SVG}title").text for r in rects] == [  # type: ignore[union-attr]
        "<b>0.0</b> – <b>1.0</b>: 3",
        "<b>1.0</b> – <b>2.0</b>: 4",
    ]
