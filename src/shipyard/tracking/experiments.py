"""Experiments: create, read, rename, tag, delete and restore."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound
from shipyard.platform import Platform
from shipyard.tracking.tables import ExperimentRow, ExperimentTagRow
from shipyard.tracking.types import (
    ACTIVE,
    DELETED,
    Experiment,
    ExperimentCreate,
    ExperimentUpdate,
)
from shipyard.tracking.upserts import upsert_tags


def _tags_of(session: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        rows = session.execute(
            select(ExperimentTagRow.experiment_id, ExperimentTagRow.key, ExperimentTagRow.value)
            .where(ExperimentTagRow.experiment_id.in_(ids))
            .order_by(ExperimentTagRow.key)
        )
        for experiment_id, key, value in rows:
            tags[experiment_id][key] = value
    return tags


def _to_api(row: ExperimentRow, tags: dict[str, str]) -> Experiment:
    return Experiment(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        description=row.description,
        lifecycle=row.lifecycle,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags=tags,
    )


def _load(session: Session, experiment_id: int) -> ExperimentRow:
    row = session.get(ExperimentRow, experiment_id)
    if row is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return row


def _name_taken(session: Session, project_id: int, name: str) -> bool:
    return (
        session.scalar(
            select(ExperimentRow.id).where(
                ExperimentRow.project_id == project_id, ExperimentRow.name == name
            )
        )
        is not None
    )


def create_experiment(ctx: RequestContext, spec: ExperimentCreate) -> Experiment:
    """Create an experiment in the context's project; Conflict when the name is taken."""
    project_id = ctx.project_id
    assert project_id is not None
    now = now_ms()
    with ctx.platform.db.write() as session:
        if _name_taken(session, project_id, spec.name):
            raise Conflict(f"experiment {spec.name!r} already exists in this project")
        row = ExperimentRow(
            project_id=project_id,
            name=spec.name,
            description=spec.description,
            lifecycle=ACTIVE,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        try:
            session.flush()
        except DBIntegrityError:  # a concurrent create of the same name won the race
            raise Conflict(f"experiment {spec.name!r} already exists in this project") from None
        upsert_tags(session, ExperimentTagRow, "experiment_id", row.id, spec.tags)
        ctx.audit(session, "experiments.create", "experiment", row.id, {"name": spec.name})
        return _to_api(row, dict(sorted(spec.tags.items())))


def list_experiments(
    platform: Platform, project_id: int, include_deleted: bool = False
) -> list[Experiment]:
    """The project's experiments by name (deleted ones only when asked)."""
    with platform.db.read() as session:
        stmt = select(ExperimentRow).where(ExperimentRow.project_id == project_id)
        if not include_deleted:
            stmt = stmt.where(ExperimentRow.lifecycle == ACTIVE)
        rows = list(session.scalars(stmt.order_by(ExperimentRow.name)))
        tags = _tags_of(session, [r.id for r in rows])
        return [_to_api(r, tags.get(r.id, {})) for r in rows]


def get_experiment(platform: Platform, experiment_id: int) -> Experiment:
    """One experiment by id (deleted ones too: their lifecycle says so)."""
    with platform.db.read() as session:
        row = _load(session, experiment_id)
        return _to_api(row, _tags_of(session, [row.id]).get(row.id, {}))


def get_experiment_by_name(platform: Platform, project_id: int, name: str) -> Experiment:
    """One experiment of the project by its name."""
    with platform.db.read() as session:
        row = session.scalar(
            select(ExperimentRow).where(
                ExperimentRow.project_id == project_id, ExperimentRow.name == name
            )
        )
        if row is None:
            raise NotFound(f"experiment {name!r} not found in this project")
        return _to_api(row, _tags_of(session, [row.id]).get(row.id, {}))


def update_experiment(
    ctx: RequestContext, experiment_id: int, spec: ExperimentUpdate
) -> Experiment:
    """Rename an experiment or change its description."""
    with ctx.platform.db.write() as session:
        row = _load(session, experiment_id)
        changes: dict[str, str] = {}
        if spec.name is not None and spec.name != row.name:
            if _name_taken(session, row.project_id, spec.name):
                raise Conflict(f"experiment {spec.name!r} already exists in this project")
            changes["name"] = spec.name
        if spec.description is not None:
            changes["description"] = spec.description
        if changes:
            for field, value in changes.items():
                setattr(row, field, value)
            row.updated_at = now_ms()
            try:
                session.flush()
            except DBIntegrityError:
                raise Conflict(f"experiment {spec.name!r} already exists in this project") from None
        ctx.audit(session, "experiments.update", "experiment", experiment_id, changes)
        return _to_api(row, _tags_of(session, [row.id]).get(row.id, {}))


def set_experiment_lifecycle(ctx: RequestContext, experiment_id: int, lifecycle: str) -> None:
    """Delete (``deleted``) or restore (``active``) an experiment.

    Its runs keep their own lifecycle; search hides the runs of deleted
    experiments unless asked to include deleted ones.
    """
    action = "experiments.delete" if lifecycle == DELETED else "experiments.restore"
    with ctx.platform.db.write() as session:
        result = session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(lifecycle=lifecycle, updated_at=now_ms())
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"experiment {experiment_id} not found")
        ctx.audit(session, action, "experiment", experiment_id)


def set_experiment_tags(ctx: RequestContext, experiment_id: int, tags: dict[str, str]) -> None:
    """Set (add or overwrite) tags of an experiment."""
    with ctx.platform.db.write() as session:
        _load(session, experiment_id)
        upsert_tags(session, ExperimentTagRow, "experiment_id", experiment_id, tags)
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(updated_at=now_ms())
        )
        ctx.audit(
            session, "experiments.set_tags", "experiment", experiment_id, {"keys": list(tags)}
        )
