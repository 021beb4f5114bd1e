"""Runs: create (with first params and tags), read, update, delete, restore, search."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import new_id, now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.tracking.planner import refresh_if_stale
from shipyard.tracking.resolvers import project_of_run
from shipyard.tracking.tables import (
    ExperimentRow,
    LatestMetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)
from shipyard.tracking.types import (
    ACTIVE,
    DELETED,
    TERMINAL_STATUSES,
    Run,
    RunCreate,
    RunSearch,
    RunUpdate,
)

_RUN_COLUMNS = (
    RunRow.id,
    RunRow.experiment_id,
    RunRow.name,
    RunRow.status,
    RunRow.user,
    RunRow.start_time,
    RunRow.end_time,
    RunRow.parent_run_id,
    RunRow.lifecycle,
    RunRow.description,
    RunRow.code_version,
    RunRow.environment,
)


def _among(column: Any, session: Session, ids: Sequence[str]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``, one parameter instead of 1,000."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(String)))
    return column.in_(ids)


def run_dicts(session: Session, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The runs ``ids`` as plain dicts shaped like :class:`Run`, in the order of ``ids``.

    Four ``IN`` queries whatever the number of runs: the rows, then their
    params, tags and latest metrics.
    """
    if not ids:
        return []
    by_id: dict[str, dict[str, Any]] = {}
    for r in session.execute(select(*_RUN_COLUMNS).where(_among(RunRow.id, session, ids))):
        by_id[r[0]] = {
            "id": r[0],
            "experiment_id": r[1],
            "name": r[2],
            "status": r[3],
            "user": r[4],
            "start_time": r[5],
            "end_time": r[6],
            "parent_run_id": r[7],
            "lifecycle": r[8],
            "description": r[9],
            "params": {},
            "metrics": {},
            "tags": {},
            "code_version": r[10],
            "environment": r[11],
        }
    for table, field in ((ParamRow, "params"), (RunTagRow, "tags"), (LatestMetricRow, "metrics")):
        rows = session.execute(
            select(table.run_id, table.key, table.value)
            .where(_among(table.run_id, session, ids))
            .order_by(table.run_id, table.key)
        )
        for run_id, key, value in rows:
            by_id[run_id][field][key] = value
    return [by_id[i] for i in ids if i in by_id]


def _run(session: Session, run_id: str) -> Run:
    found = run_dicts(session, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} not found")
    return Run(**found[0])


def create_run(ctx: RequestContext, experiment_id: int, spec: RunCreate) -> Run:
    """Start a run in an active experiment, with its first params and tags, in one go."""
    run_id = new_id()
    start_time = spec.start_time if spec.start_time is not None else now_ms()
    name = spec.name or f"run-{run_id[:8]}"
    user = ctx.principal.username
    with ctx.platform.db.write() as session:
        lifecycle = session.scalar(
            select(ExperimentRow.lifecycle).where(ExperimentRow.id == experiment_id)
        )
        if lifecycle is None:
            raise NotFound(f"experiment {experiment_id} not found")
        if lifecycle != ACTIVE:
            raise Conflict(f"experiment {experiment_id} is deleted; restore it to add runs")
        if spec.parent_run_id is not None:
            try:
                parent_project = project_of_run(ctx.platform, spec.parent_run_id)
            except NotFound:
                parent_project = None
            if parent_project != ctx.project_id:
                raise NotFound(f"parent run {spec.parent_run_id!r} not found in this project")
        session.execute(
            insert(RunRow.__table__),
            {
                "id": run_id,
                "experiment_id": experiment_id,
                "parent_run_id": spec.parent_run_id,
                "name": name,
                "status": "running",
                "user": user,
                "start_time": start_time,
                "end_time": None,
                "lifecycle": ACTIVE,
                "deleted_at": None,
                "description": "",
                "code_version": spec.code_version,
                "environment": spec.environment,
            },
        )
        for table, values in ((ParamRow, spec.params), (RunTagRow, spec.tags)):
            if values:
                session.execute(
                    insert(table.__table__),
                    [{"run_id": run_id, "key": k, "value": values[k]} for k in sorted(values)],
                )
        ctx.audit(
            session,
            "runs.create",
            "run",
            run_id,
            {"experiment_id": experiment_id, "name": name, "parent_run_id": spec.parent_run_id},
        )
    return Run(
        id=run_id,
        experiment_id=experiment_id,
        name=name,
        status="running",
        user=user,
        start_time=start_time,
        end_time=None,
        parent_run_id=spec.parent_run_id,
        lifecycle=ACTIVE,
        description="",
        params=dict(sorted(spec.params.items())),
        metrics={},
        tags=dict(sorted(spec.tags.items())),
        code_version=spec.code_version,
        environment=spec.environment,
    )


def get_run(platform: Platform, run_id: str) -> Run:
    """One run with its params, tags and latest metrics."""
    with platform.db.read() as session:
        return _run(session, run_id)


def update_run(ctx: RequestContext, run_id: str, spec: RunUpdate) -> Run:
    """Change a run's status, end time, name or description.

    A terminal status without an end time ends the run now; going back to
    ``running`` clears the end time unless one is given.
    """
    with ctx.platform.db.write() as session:
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFound(f"run {run_id!r} not found")
        if row.lifecycle == DELETED:
            raise Conflict(f"run {run_id!r} is deleted; restore it to change it")
        changes = spec.model_dump(exclude_none=True)
        if spec.status in TERMINAL_STATUSES and spec.end_time is None and row.end_time is None:
            changes["end_time"] = now_ms()
        elif spec.status == "running" and spec.end_time is None:
            changes["end_time"] = None
        end_time = changes.get("end_time", row.end_time)
        if end_time is not None and end_time < row.start_time:
            raise InvalidInput(
                f"end_time {end_time} is before the run's start_time {row.start_time}"
            )
        if changes:
            session.execute(update(RunRow).where(RunRow.id == run_id).values(**changes))
        ctx.audit(session, "runs.update", "run", run_id, changes)
        return _run(session, run_id)


def set_run_lifecycle(ctx: RequestContext, run_id: str, lifecycle: str) -> None:
    """Delete (``deleted``) or restore (``active``) a run; search hides deleted runs."""
    deleted_at = now_ms() if lifecycle == DELETED else None
    with ctx.platform.db.write() as session:
        result = session.execute(
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(lifecycle=lifecycle, deleted_at=deleted_at)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"run {run_id!r} not found")
        action = "runs.delete" if lifecycle == DELETED else "runs.restore"
        ctx.audit(session, action, "run", run_id)


# --- search -------------------------------------------------------------------------------


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii"))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput(f"invalid page_token {token!r}") from None
    if offset < 0:
        raise InvalidInput(f"invalid page_token {token!r}")
    return offset


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode("ascii")).decode("ascii")


def search_runs(platform: Platform, project_id: int, spec: RunSearch) -> dict[str, Any]:
    """A page of the project's runs matching ``spec``, as a plain dict shaped like RunPage.

    One query finds the page's run ids (filtered and ordered by the search
    language), then :func:`run_dicts` loads just those runs.
    """
    from shipyard.tracking.search import build_search_query

    offset = _decode_token(spec.page_token)
    experiments = select(ExperimentRow.id).where(ExperimentRow.project_id == project_id)
    if not spec.include_deleted:
        experiments = experiments.where(ExperimentRow.lifecycle == ACTIVE)
    refresh_if_stale(platform.db)
    with platform.db.read() as session:
        if spec.experiment_ids is not None:
            wanted = set(spec.experiment_ids)
            found = set(
                session.scalars(
                    select(ExperimentRow.id).where(
                        ExperimentRow.project_id == project_id, ExperimentRow.id.in_(wanted)
                    )
                )
            )
            if wanted - found:
                missing = sorted(wanted - found)
                raise NotFound(f"experiment {missing[0]} not found in this project")
            experiments = experiments.where(ExperimentRow.id.in_(wanted))
        stmt = select(RunRow.id).where(RunRow.experiment_id.in_(experiments))
        if not spec.include_deleted:
            stmt = stmt.where(RunRow.lifecycle == ACTIVE)
        stmt = build_search_query(stmt, spec.filter, spec.order_by)
        ids = list(session.scalars(stmt.offset(offset).limit(spec.max_results + 1)))
        more = len(ids) > spec.max_results
        runs = run_dicts(session, ids[: spec.max_results])
    token = _encode_token(offset + spec.max_results) if more else None
    return {"runs": runs, "next_page_token": token}
