"""Logging to a run (params, tags, metric points in one batch) and metric histories.

The batch is the hot path of tracking: it is validated in plain Python over
the columnar lists, then written in one transaction with one audit event: one
upsert of each key's latest point, which gives each key's series id, then one
statement for the points under those ids (an executemany on SQLite, a binary COPY
on PostgreSQL).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from sqlalchemy import update

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.db.driver import driver_cursor, driver_sql
from shipyard.errors import Conflict, InvalidInput
from shipyard.platform import Platform
from shipyard.tracking import summaries
from shipyard.tracking.liveness import clear_lost
from shipyard.tracking.runs import status_changes, writable_run
from shipyard.tracking.tables import RunRow, RunTagRow
from shipyard.tracking.types import ColumnarMetrics, RunBatch, check_keys, storable_metric
from shipyard.tracking.upserts import (
    Point,
    insert_metric_rows,
    insert_params,
    upsert_latest_metrics,
    upsert_tags,
)


class Points:
    """A batch's metric points as validated columns, and each key's latest point."""

    __slots__ = ("keys", "values", "steps", "timestamps", "latest")

    def __init__(self, metrics: ColumnarMetrics) -> None:
        keys, values = metrics.keys, metrics.values
        n = len(keys)
        steps = metrics.steps if metrics.steps is not None else [0] * n
        timestamps = metrics.timestamps if metrics.timestamps is not None else [now_ms()] * n
        if not len(values) == len(steps) == len(timestamps) == n:
            given = {"keys": keys, "values": values, "steps": metrics.steps}
            given["timestamps"] = metrics.timestamps
            lengths = ", ".join(f"{k} {len(v)}" for k, v in given.items() if v is not None)
            raise InvalidInput(f"metrics columns must have the same length; got {lengths}")
        check_keys(set(keys), "metric")
        isfinite = math.isfinite
        values = [v if v is None or isfinite(v) else storable_metric(v) for v in values]
        latest: dict[str, Point] = {}
        for key, value, step, ts in zip(keys, values, steps, timestamps, strict=True):
            best = latest.get(key)
            if best is None or step > best[0] or (step == best[0] and ts >= best[1]):
                latest[key] = (step, ts, value)
        self.keys, self.values, self.steps, self.timestamps = keys, values, steps, timestamps
        self.latest = latest

    def rows(self, series: dict[str, int]) -> Iterator[tuple[int, int, int, float | None]]:
        """The points as ``(series_id, step, timestamp, value)``, ``series`` giving
        each key's series id."""
        ids = map(series.__getitem__, self.keys)
        return zip(ids, self.steps, self.timestamps, self.values, strict=True)

    def __len__(self) -> int:
        return len(self.keys)


def relaxed_commit(platform: Platform) -> bool:
    """Whether a transaction of metric points only may commit on PostgreSQL without
    waiting for the WAL flush (``synchronous_commit = off`` for it alone).

    For batches of metric points only (the hot path): waiting for the disk is most
    of their cost. Params, tags, status changes and everything outside tracking
    stay durable. ``SHIPYARD_DURABLE_METRICS=true`` turns this off.
    """
    return not (platform.settings.durable_metrics or platform.db.is_sqlite)


def log_batch(ctx: RequestContext, run_id: str, batch: RunBatch) -> None:
    """Log params, tags and metric points to a run, all or nothing; then set its
    status and end time when the batch carries them (as ``update_run`` does).

    A param that is already logged with another value raises Conflict and
    nothing of the batch is stored.
    """
    points = Points(batch.metrics) if batch.metrics else None
    ending = batch.status is not None or batch.end_time is not None
    if not (points or batch.params or batch.tags or ending):
        return
    relaxed = bool(points) and not (batch.params or batch.tags or ending)
    with ctx.platform.db.write() as session:
        try:
            start_time, stored_end_time = writable_run(
                session, run_id, relaxed_commit=relaxed and relaxed_commit(ctx.platform)
            )
        except Conflict:
            raise Conflict(f"run {run_id!r} is deleted; restore it to log to it") from None
        changes = (
            status_changes(batch.status, batch.end_time, start_time, stored_end_time)
            if ending
            else {}
        )
        insert_params(session, run_id, batch.params)
        upsert_tags(session, RunTagRow, "run_id", run_id, batch.tags)
        if points:
            series = upsert_latest_metrics(session, run_id, points.latest)
            insert_metric_rows(session, points.rows(series))
        if points or batch.params or batch.tags:
            summaries.changed(session, [run_id])
        if changes:
            session.execute(update(RunRow).where(RunRow.id == run_id).values(**changes))
            if "status" in changes:
                clear_lost(session, run_id)
        details: dict[str, Any] = {
            "metrics": len(points or ()),
            "params": len(batch.params),
            "tags": len(batch.tags),
        }
        details.update(changes)
        ctx.audit(session, "runs.log_batch", "run", run_id, details)


SAME_POINT_ORDER = "value IS NULL, value"
"""How points of one step and one time are ordered (NULL last on both databases):
after step and time, this orders all but identical points, whose order cannot show.
Points have no id to order them by insertion."""
HISTORY_ORDER = f"step, timestamp, {SAME_POINT_ORDER}"
"""The native order of a history's points, in SQL."""

OF_SERIES = "series_id = (SELECT id FROM latest_metrics WHERE run_id = ? AND key = ?)"
"""The condition on ``metrics`` that keeps one series' points: a run's metric, whose
id is looked up once per statement; parameters ``(run_id, key)``."""

# History is read with the driver's own cursor: SQLAlchemy's Row objects cost
# several times the query itself on 100k points. Only the placeholder differs.
# The fast statement orders by step alone, which the (series_id, step) index
# gives without a sort; only when a step repeats (rare) is the full order needed.
_HISTORY_BY_STEP = f"SELECT step, timestamp, value FROM metrics WHERE {OF_SERIES} ORDER BY step"  # noqa: S608
_HISTORY_FULL = (
    f"SELECT step, timestamp, value FROM metrics WHERE {OF_SERIES} "  # noqa: S608
    f"ORDER BY {HISTORY_ORDER}"
)


def metric_history(platform: Platform, run_id: str, key: str) -> dict[str, Any]:
    """Every point of metric ``key`` of a run, ordered by step then time, as columns.

    Returns a plain dict shaped like MetricHistory (empty lists for an unknown
    key): big histories skip pydantic on the way out.
    """
    check_keys([key], "metric")
    with platform.db.read() as session:
        cursor, dialect = driver_cursor(session)
        try:
            cursor.execute(driver_sql(_HISTORY_BY_STEP, dialect), (run_id, key))
            rows = cursor.fetchall()
            steps = [r[0] for r in rows]
            if len(set(steps)) != len(steps):
                cursor.execute(driver_sql(_HISTORY_FULL, dialect), (run_id, key))
                rows = cursor.fetchall()
                steps = [r[0] for r in rows]
        finally:
            cursor.close()
    return {
        "key": key,
        "steps": steps,
        "values": [r[2] for r in rows],
        "timestamps": [r[1] for r in rows],
    }
