"""Logging to a run (params, tags, metric points in one batch) and metric histories.

The batch is the hot path of tracking: it is validated in plain Python over
the columnar lists, written with one statement for the points (an executemany on
SQLite, one INSERT over unnest() arrays on PostgreSQL) and one bulk
upsert for the latest values, in one transaction with one audit event.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.tracking.tables import RunRow, RunTagRow
from shipyard.tracking.types import DELETED, ColumnarMetrics, RunBatch, check_keys
from shipyard.tracking.upserts import (
    insert_metric_points,
    insert_params,
    upsert_latest_metrics,
    upsert_tags,
)

MetricPoint = tuple[int, int, float | None]  # step, timestamp, value


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
        # NaN and infinities are stored as NULL (SQLite has no NaN; JSON has neither).
        values = [v if v is None or isfinite(v) else None for v in values]
        latest: dict[str, MetricPoint] = {}
        for key, value, step, ts in zip(keys, values, steps, timestamps, strict=True):
            best = latest.get(key)
            if best is None or step > best[0] or (step == best[0] and ts >= best[1]):
                latest[key] = (step, ts, value)
        self.keys, self.values, self.steps, self.timestamps = keys, values, steps, timestamps
        self.latest = latest

    def __len__(self) -> int:
        return len(self.keys)


def _check_writable(session: Session, run_id: str) -> None:
    lifecycle = session.scalar(select(RunRow.lifecycle).where(RunRow.id == run_id))
    if lifecycle is None:
        raise NotFound(f"run {run_id!r} not found")
    if lifecycle == DELETED:
        raise Conflict(f"run {run_id!r} is deleted; restore it to log to it")


def log_batch(ctx: RequestContext, run_id: str, batch: RunBatch) -> None:
    """Log params, tags and metric points to a run, all or nothing.

    A param that is already logged with another value raises Conflict and
    nothing of the batch is stored.
    """
    points = Points(batch.metrics) if batch.metrics else None
    if not (points or batch.params or batch.tags):
        return
    with ctx.platform.db.write() as session:
        _check_writable(session, run_id)
        insert_params(session, run_id, batch.params)
        upsert_tags(session, RunTagRow, "run_id", run_id, batch.tags)
        if points:
            insert_metric_points(
                session, run_id, points.keys, points.values, points.steps, points.timestamps
            )
            upsert_latest_metrics(session, run_id, points.latest)
        ctx.audit(
            session,
            "runs.log_batch",
            "run",
            run_id,
            {"metrics": len(points or ()), "params": len(batch.params), "tags": len(batch.tags)},
        )


# History is read with the driver's own cursor: SQLAlchemy's Row objects cost
# several times the query itself on 100k points. Only the placeholder differs.
_HISTORY_SQL = {
    "sqlite": "SELECT step, timestamp, value FROM metrics WHERE run_id = ? AND key = ? "
    "ORDER BY step, timestamp, id",
    "postgresql": "SELECT step, timestamp, value FROM metrics WHERE run_id = %s AND key = %s "
    "ORDER BY step, timestamp, id",
}


def metric_history(platform: Platform, run_id: str, key: str) -> dict[str, Any]:
    """Every point of metric ``key`` of a run, ordered by step then time, as columns.

    Returns a plain dict shaped like MetricHistory (empty lists for an unknown
    key): big histories skip pydantic on the way out.
    """
    check_keys([key], "metric")
    with platform.db.read() as session:
        connection = session.connection()
        cursor = connection.connection.cursor()
        try:
            cursor.execute(_HISTORY_SQL[connection.dialect.name], (run_id, key))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    if not rows:
        return {"key": key, "steps": [], "values": [], "timestamps": []}
    steps, timestamps, values = zip(*rows, strict=True)
    return {"key": key, "steps": steps, "values": values, "timestamps": timestamps}
