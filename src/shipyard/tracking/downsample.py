"""A metric's history downsampled for charts, keeping its spikes.

The step range of the metric is cut into ``points // 2`` equal buckets and each
bucket keeps its lowest and its highest point, in x order: a single spike in a
million points still shows. The work happens in the database, never in a Python
loop over points:

- PostgreSQL: one ``GROUP BY`` over the bucket number; ``min(ARRAY[value, step,
  timestamp])`` finds the lowest value and the point that holds it in the same
  pass (``max`` with a negated step finds the highest, earliest first).
- SQLite: one small aggregate per bucket, an index range scan on
  ``(series_id, step)``; SQLite's ``MIN()``/``MAX()`` return the other columns
  of the row they picked. Faster than one ``GROUP BY`` there, which sorts.

Buckets are ranges of steps for both x axes; with ``x="time"`` the chosen points
are placed at their timestamps (ordered by time). Histories no longer than the
budget are returned whole, as is ``points=0`` up to :data:`RAW_CAP` points.

A step window (``start``..``end``, inclusive) narrows all of it to that range, so a
chart that is zoomed in asks again for its window and gets finer buckets, down to
every logged point: zooming is how a reader reaches raw values in any history.
"""

from __future__ import annotations

from typing import Any

from shipyard.db.driver import driver_cursor, driver_sql
from shipyard.errors import InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.tracking.metrics import HISTORY_ORDER, OF_SERIES, SAME_POINT_ORDER
from shipyard.tracking.types import check_keys

X_AXES: tuple[str, ...] = ("step", "time")
DEFAULT_POINTS = 1000
RAW_CAP = 100_000
"""The most points one answer holds: ``points=0`` (raw) past this is downsampled to it."""
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
"""Steps are 64-bit integers; the window defaults to all of them."""

Point = tuple[int, int, float | None]  # step, timestamp, value

# Counting every point costs a scan; whether there are more than the budget costs only
# the budget. A downsampled history's total is counted by the bucketing pass itself.
# Every statement reads one step window of one series, an index range on
# (series_id, step): parameters (run_id, key, start, end) first.
_WINDOW = f"{OF_SERIES} AND step BETWEEN ? AND ?"
_COUNT_UP_TO = f"SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE {_WINDOW} LIMIT ?) AS head"  # noqa: S608
# Two subqueries: each is one index probe (one query with both scans on SQLite).
_STEP_RANGE = (
    f"SELECT (SELECT MIN(step) FROM metrics WHERE {_WINDOW}), "  # noqa: S608
    f"(SELECT MAX(step) FROM metrics WHERE {_WINDOW})"
)
_RAW = {
    # The orders are constants of tracking/metrics.py.
    "step": f"SELECT step, timestamp, value FROM metrics WHERE {_WINDOW} "  # noqa: S608
    f"ORDER BY {HISTORY_ORDER}",
    "time": f"SELECT step, timestamp, value FROM metrics WHERE {_WINDOW} "  # noqa: S608
    f"ORDER BY timestamp, step, {SAME_POINT_ORDER}",
}
# SQLite: the low and the high point of one bucket (steps lo..hi inclusive), in one statement.
_SQLITE_BUCKET = (
    f"SELECT step, timestamp, MIN(value), COUNT(*) FROM metrics WHERE {_WINDOW} "  # noqa: S608
    f"UNION ALL SELECT step, timestamp, MAX(value), 0 FROM metrics WHERE {_WINDOW}"
)
# PostgreSQL: every bucket in one pass. Arrays compare element by element, so the
# minimum of [value, step, timestamp] is the lowest value at its earliest step;
# steps are exact up to 2**53 as float8, far beyond any real training loop.
_PG_BUCKETS = (
    "SELECT min(ARRAY[value, step::float8, timestamp::float8]) FILTER (WHERE value IS NOT NULL), "  # noqa: S608
    "max(ARRAY[value, -step::float8, timestamp::float8]) FILTER (WHERE value IS NOT NULL), "
    "count(*) "
    f"FROM metrics WHERE {driver_sql(_WINDOW, 'postgresql')} "
    "GROUP BY floor((step::float8 - %s) * %s / %s)"
)


def check_series_request(
    points: int, x_axis: str, start: int | None = None, end: int | None = None
) -> None:
    """Raise InvalidInput for a point budget, an x axis or a step window the series
    cannot have."""
    for name, bound in (("start", start), ("end", end)):
        if bound is not None and not STEP_MIN <= bound <= STEP_MAX:
            raise InvalidInput(f"{name} must be a 64-bit step; got {bound}", {name: str(bound)})
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"start ({start}) must not be after end ({end})", {"start": start, "end": end}
        )
    if x_axis not in X_AXES:
        raise InvalidInput(
            f"x must be one of {', '.join(X_AXES)}; got {x_axis[:40]!r}", {"x": x_axis[:40]}
        )
    if points != 0 and not 2 <= points <= RAW_CAP:
        raise InvalidInput(
            f"points must be 0 (raw values) or between 2 and {RAW_CAP:,}; got {points}",
            {"points": points},
        )


def metric_series(
    platform: Platform,
    run_id: str,
    key: str,
    points: int = DEFAULT_POINTS,
    x_axis: str = "step",
    start: int | None = None,
    end: int | None = None,
) -> dict[str, Any]:
    """Metric ``key`` of a run for a chart: at most ``points`` points (0 = raw, up to
    :data:`RAW_CAP`), keeping each bucket's lowest and highest value, of the steps
    ``start``..``end`` (inclusive; each open when None).

    Returns a plain dict: ``key``, ``x_axis``, ``total`` (points logged in the
    window), ``downsampled``, and the columns ``x`` and ``y`` (``y`` is null where
    NaN was logged). Raises InvalidInput for a bad budget, axis or window, NotFound
    when the run has no such metric (an empty window of a metric it has is no error).
    """
    check_keys([key], "metric")
    check_series_request(points, x_axis, start, end)
    budget = points or RAW_CAP
    window = (
        run_id,
        key,
        STEP_MIN if start is None else start,
        STEP_MAX if end is None else end,
    )
    with platform.db.read() as session:
        cursor, dialect = driver_cursor(session)
        try:
            cursor.execute(driver_sql(_COUNT_UP_TO, dialect), (*window, budget + 1))
            total = cursor.fetchone()[0]
            if not total and (start is not None or end is not None):
                everywhere = (run_id, key, STEP_MIN, STEP_MAX, 1)
                cursor.execute(driver_sql(_COUNT_UP_TO, dialect), everywhere)
                if cursor.fetchone()[0]:
                    return _answer(key, x_axis, 0, False, [])
            if not total:
                raise NotFound(f"run {run_id!r} has no metric {key!r}", {"key": key})
            downsampled = total > budget
            if not downsampled:
                cursor.execute(driver_sql(_RAW[x_axis], dialect), window)
                chosen: list[Point] = cursor.fetchall()
            else:
                cursor.execute(driver_sql(_STEP_RANGE, dialect), window * 2)
                lo, hi = cursor.fetchone()
                buckets = budget // 2
                if dialect == "postgresql":
                    chosen, total = _buckets_postgresql(cursor, run_id, key, lo, hi, buckets)
                else:
                    chosen, total = _buckets_sqlite(cursor, run_id, key, lo, hi, buckets)
                # In x order: a bucket's low may come after its high.
                index = 0 if x_axis == "step" else 1
                chosen.sort(key=lambda p: (p[index], p[1 - index]))
        finally:
            cursor.close()
    return _answer(key, x_axis, total, downsampled, chosen)


def _answer(
    key: str, x_axis: str, total: int, downsampled: bool, chosen: list[Point]
) -> dict[str, Any]:
    column = 0 if x_axis == "step" else 1
    return {
        "key": key,
        "x_axis": x_axis,
        "total": total,
        "downsampled": downsampled,
        "x": [p[column] for p in chosen],
        "y": [p[2] for p in chosen],
    }


def _buckets_sqlite(
    cursor: Any, run_id: str, key: str, lo: int, hi: int, buckets: int
) -> tuple[list[Point], int]:
    """The low and high point of each of ``buckets`` step ranges over lo..hi, and how
    many points there are in all."""
    span = hi - lo + 1  # Python ints: no overflow whatever the steps
    edges = [lo + span * i // buckets for i in range(buckets + 1)]
    chosen: list[Point] = []
    total = 0
    for first, after in zip(edges, edges[1:], strict=False):
        if after <= first:  # fewer distinct steps than buckets
            continue
        cursor.execute(_SQLITE_BUCKET, (run_id, key, first, after - 1) * 2)
        low, high = cursor.fetchall()
        total += low[3]
        if low[2] is None:  # empty, or nothing but NaN (stored as null) in this range
            continue
        chosen.append(low[:3])
        if high[:2] != low[:2]:
            chosen.append(high[:3])
    return chosen, total


def _buckets_postgresql(
    cursor: Any, run_id: str, key: str, lo: int, hi: int, buckets: int
) -> tuple[list[Point], int]:
    """As :func:`_buckets_sqlite`, in one statement."""
    cursor.execute(_PG_BUCKETS, (run_id, key, lo, hi, lo, buckets, hi - lo + 1))
    chosen: list[Point] = []
    total = 0
    for low, high, count in cursor.fetchall():
        total += count
        if low is None:  # nothing but NaN in this bucket
            continue
        chosen.append((int(low[1]), int(low[2]), low[0]))
        if (-high[1], high[2]) != (low[1], low[2]):
            chosen.append((int(-high[1]), int(high[2]), high[0]))
    return chosen, total
