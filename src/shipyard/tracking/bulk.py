"""Creating many whole runs in one request: one transaction, one statement per kind
of row.

Logging finished runs one by one costs two round trips each (create, then the
batch that ends it); a sweep, a backfill or an import has them all at hand. New
runs cannot collide with stored params or metrics, so every row is a plain
insert: one executemany (or COPY) per table for the whole request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from shipyard.auth import audit
from shipyard.auth.authz import RequestContext
from shipyard.clock import new_id, now_ms
from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking import summaries
from shipyard.tracking.metrics import Points
from shipyard.tracking.planner import note_writes
from shipyard.tracking.resolvers import project_of_run, run_project
from shipyard.tracking.runs import check_accepts_runs
from shipyard.tracking.tables import ParamRow, RunRow, RunTagRow
from shipyard.tracking.types import ACTIVE, TERMINAL_STATUSES, RunRecord, RunsCreate
from shipyard.tracking.upserts import insert_latest_metrics, insert_metric_rows


def _check_parents(ctx: RequestContext, records: list[RunRecord]) -> None:
    """Parents must be stored runs of this project."""
    for parent in {r.parent_run_id for r in records if r.parent_run_id}:
        try:
            project = project_of_run(ctx.platform, parent)
        except NotFound:
            project = None
        if project != ctx.project_id:
            raise NotFound(f"parent run {parent!r} not found in this project")


def _run_row(
    run_id: str, experiment_id: int, user: str, record: RunRecord, now: int
) -> dict[str, Any]:
    start = record.start_time if record.start_time is not None else now
    end = record.end_time
    if end is None and record.status in TERMINAL_STATUSES:
        end = max(now, start)
    if end is not None and end < start:
        raise InvalidInput(f"run {record.name or run_id!r}: end_time {end} is before {start}")
    return {
        "id": run_id,
        "experiment_id": experiment_id,
        "parent_run_id": record.parent_run_id,
        "name": record.name or f"run-{run_id[:8]}",
        "status": record.status,
        "user": user,
        "start_time": start,
        "end_time": end,
        "lifecycle": ACTIVE,
        "deleted_at": None,
        "description": "",
        "code_version": record.code_version,
        "environment": record.environment,
    }


def create_runs(ctx: RequestContext, experiment_id: int, spec: RunsCreate) -> list[str]:
    """Create ``spec.runs`` in an active experiment, with their params, tags, metric
    points and status, all or nothing; the new ids in order. One audit event per run."""
    records = spec.runs
    ids = [new_id() for _ in records]
    # Validate every metric column before touching the database.
    points = [Points(r.metrics) if r.metrics else None for r in records]
    now = now_ms()
    user = ctx.principal.username
    rows = [_run_row(i, experiment_id, user, r, now) for i, r in zip(ids, records, strict=True)]
    _check_parents(ctx, records)
    with ctx.platform.db.write() as session:
        check_accepts_runs(session, experiment_id)
        session.execute(insert(RunRow.__table__), rows)
        for table, attr in ((ParamRow, "params"), (RunTagRow, "tags")):
            kv = [
                {"run_id": run_id, "key": k, "value": v}
                for run_id, r in zip(ids, records, strict=True)
                for k, v in sorted(getattr(r, attr).items())
            ]
            if kv:
                session.execute(insert(table.__table__), kv)
        latest = [
            (run_id, k, *point)
            for run_id, p in zip(ids, points, strict=True)
            if p is not None
            for k, point in sorted(p.latest.items())
        ]
        series = insert_latest_metrics(session, latest)
        points_rows = [
            (series[run_id, k], step, ts, v)
            for run_id, p in zip(ids, points, strict=True)
            if p is not None
            for k, step, ts, v in zip(p.keys, p.steps, p.timestamps, p.values, strict=True)
        ]
        if points_rows:
            insert_metric_rows(session, points_rows)
        summaries.changed(session, ids)
        audit.record_many(
            session,
            actor=user,
            action="runs.create",
            object_type="run",
            project_id=ctx.project_id,
            source=ctx.source,
            objects=[
                (
                    row["id"],
                    {
                        "experiment_id": experiment_id,
                        "name": row["name"],
                        "parent_run_id": row["parent_run_id"],
                        "status": row["status"],
                        "bulk": True,
                    },
                )
                for row in rows
            ],
        )
    note_writes(
        ctx.platform.db,
        {
            "runs": len(rows),
            "params": sum(len(r.params) for r in records),
            "run_tags": sum(len(r.tags) for r in records),
            "latest_metrics": len(latest),
        },
    )
    if ctx.project_id is not None:
        for run_id in ids:
            run_project.remember(ctx.platform, run_id, ctx.project_id)
    return ids
