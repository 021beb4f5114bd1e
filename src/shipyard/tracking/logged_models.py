"""Logged models (MLflow 3's LoggedModel): named sets of files, usually from a run.

A logged model belongs to an experiment, usually names the run that produced it
(``run_id``), and has its own tags and params; a run may also list it among its
outputs (``run_outputs``). Its files are blobs recorded in
``logged_model_files`` under checked paths, like a run's artifacts; a
registered model version made from a logged model copies those rows (no blob
is copied). A model is never removed: deleting sets its lifecycle.

A model has no metric history of its own: its metrics are its source run's
latest metrics (what the run measured when it produced the model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from sqlalchemy import ColumnElement, Select, and_, case, exists, not_, or_, select, update
from sqlalchemy.orm import Session, aliased

from shipyard.auth.authz import RequestContext
from shipyard.auth.resolvers import CachedResolver
from shipyard.blobs import BlobRef
from shipyard.clock import new_id, now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.paging import decode_page_token, next_token
from shipyard.platform import Platform
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.artifacts import path_clash
from shipyard.tracking.paths import normalize_artifact_path, normalize_artifact_prefix
from shipyard.tracking.resolvers import experiment_project
from shipyard.tracking.runs import writable_run
from shipyard.tracking.search import check_op, value_test  # the one comparison compiler
from shipyard.tracking.search_parser import (
    And,
    Comparison,
    Expr,
    Not,
    Or,
    Parser,
    parse_error,
)
from shipyard.tracking.tables import (
    ExperimentRow,
    LatestMetricRow,
    LoggedModelFileRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    RunInputRow,
    RunOutputRow,
    RunRow,
)
from shipyard.tracking.types import ACTIVE, DELETED
from shipyard.tracking.upserts import dialect_insert, upsert_tags

LOGGED_MODEL_PREFIX = "m-"

MAX_NAME = 500
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100
# MLflow refuses these in a model name: they would be ambiguous in `models:/` URIs.
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


@dataclass
class LoggedModel:
    """A logged model with its tags, params and (its source run's) latest metrics."""

    id: str
    experiment_id: int
    run_id: str | None
    name: str
    model_type: str
    status: str
    status_message: str
    lifecycle: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # (key, value or None for NaN, step, timestamp) of the source run's latest metrics.
    metrics: list[tuple[str, float | None, int, int]] = field(default_factory=list)


# --- lookups -------------------------------------------------------------------------------


def logged_model_row(session: Session, model_id: str) -> LoggedModelRow:
    """The logged model ``model_id``; NotFound when there is none."""
    row = session.get(LoggedModelRow, model_id) if _MODEL_ID.fullmatch(model_id) else None
    if row is None:
        raise NotFound(f"logged model {model_id!r} not found")
    return row


def logged_model_files(session: Session, model_id: str) -> list[tuple[str, str, int]]:
    """``(path, blob_hash, size)`` of every file of a logged model, by path."""
    rows = session.execute(
        select(
            LoggedModelFileRow.path, LoggedModelFileRow.blob_hash, LoggedModelFileRow.size
        ).where(LoggedModelFileRow.model_id == model_id)
    ).all()
    # Sorted here, not in SQL: PostgreSQL collations order "/" differently from SQLite.
    return sorted((path, digest, size) for path, digest, size in rows)


def _lookup_experiment(platform: Platform, model_id: str) -> int:
    with platform.db.read() as session:
        return logged_model_row(session, model_id).experiment_id


model_experiment = CachedResolver("logged_model", "model_id", _lookup_experiment)
"""The experiment of the ``{model_id}`` path parameter (a model never moves)."""


def project_of_logged_model(platform: Platform, model_id: str) -> int:
    """The project a logged model belongs to; NotFound when there is no such model."""
    return experiment_project.resolve(platform, str(model_experiment.resolve(platform, model_id)))


def _load(session: Session, rows: Sequence[LoggedModelRow]) -> list[LoggedModel]:
    """Models with their tags, params and source-run metrics (three queries in all)."""
    ids = [r.id for r in rows]
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    for table, out in ((LoggedModelTagRow, tags), (LoggedModelParamRow, params)):
        for model_id, key, value in session.execute(
            select(table.model_id, table.key, table.value).where(table.model_id.in_(ids))
        ):
            out[model_id][key] = value
    run_ids = {r.run_id for r in rows if r.run_id}
    metrics: dict[str, list[tuple[str, float | None, int, int]]] = {}
    if run_ids:
        for run_id, key, value, step, ts in session.execute(
            select(
                LatestMetricRow.run_id,
                LatestMetricRow.key,
                LatestMetricRow.value,
                LatestMetricRow.step,
                LatestMetricRow.timestamp,
            ).where(LatestMetricRow.run_id.in_(run_ids))
        ):
            metrics.setdefault(run_id, []).append((key, value, step, ts))
    return [
        LoggedModel(
            id=r.id,
            experiment_id=r.experiment_id,
            run_id=r.run_id,
            name=r.name,
            model_type=r.model_type,
            status=r.status,
            status_message=r.status_message,
            lifecycle=r.lifecycle,
            created_at=r.created_at,
            updated_at=r.updated_at,
            tags=dict(sorted(tags[r.id].items())),
            params=dict(sorted(params[r.id].items())),
            metrics=sorted(metrics.get(r.run_id or "", [])),
        )
        for r in rows
    ]


def get_logged_model(
    platform: Platform, model_id: str, *, allow_deleted: bool = False
) -> LoggedModel:
    """One logged model; NotFound when unknown (or deleted, unless ``allow_deleted``)."""
    with platform.db.read() as session:
        row = logged_model_row(session, model_id)
        if row.lifecycle == DELETED and not allow_deleted:
            raise NotFound(f"logged model {model_id!r} not found (it is deleted)")
        return _load(session, [row])[0]


# --- changes -------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if len(name) > MAX_NAME:
        raise InvalidInput(f"logged model name is longer than {MAX_NAME} characters")
    if any(c in name for c in _BAD_NAME_CHARS):
        raise InvalidInput(
            f"invalid logged model name {name[:200]!r}: it cannot contain any of "
            + " ".join(_BAD_NAME_CHARS)
        )


def _check_pairs(what: str, pairs: dict[str, str], max_value: int | None = None) -> None:
    for key, value in pairs.items():
        if not key or len(key) > MAX_KEY:
            raise InvalidInput(f"{what} key {key[:100]!r} must be 1 to {MAX_KEY} characters")
        if max_value is not None and len(value) > max_value:
            raise InvalidInput(f"{what} {key!r}: value is longer than {max_value} characters")


def _writable(session: Session, model_id: str) -> LoggedModelRow:
    row = logged_model_row(session, model_id)
    if row.lifecycle == DELETED:
        raise Conflict(f"logged model {model_id!r} is deleted; it cannot change")
    return row


def _touch(session: Session, model_id: str) -> None:
    session.execute(
        update(LoggedModelRow).where(LoggedModelRow.id == model_id).values(updated_at=now_ms())
    )


def create_logged_model(
    ctx: RequestContext,
    experiment_id: int,
    *,
    name: str | None = None,
    model_type: str = "",
    run_id: str | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> LoggedModel:
    """A new logged model (status ``pending``) in an active experiment of the caller's
    project; ``run_id``, when given, must be a run of the same project."""
    model_id = LOGGED_MODEL_PREFIX + new_id()
    name = name or f"model-{model_id[2:10]}"
    _check_name(name)
    if len(model_type) > MAX_NAME:
        raise InvalidInput(f"model_type is longer than {MAX_NAME} characters")
    params, tags = dict(params or {}), dict(tags or {})
    _check_pairs("param", params, MAX_PARAM_VALUE)
    _check_pairs("tag", tags)
    now = now_ms()
    with ctx.platform.db.write() as session:
        experiment = session.get(ExperimentRow, experiment_id)
        if experiment is None or experiment.project_id != ctx.project_id:
            raise NotFound(f"experiment {experiment_id} not found")
        if experiment.lifecycle != ACTIVE:
            raise Conflict(f"experiment {experiment_id} is deleted; restore it to add models")
        if run_id is not None:
            run_project = session.scalar(
                select(ExperimentRow.project_id)
                .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
                .where(RunRow.id == run_id)
            )
            if run_project != ctx.project_id:
                raise NotFound(f"source run {run_id!r} not found in this project")
        session.add(
            LoggedModelRow(
                id=model_id,
                experiment_id=experiment_id,
                run_id=run_id,
                name=name,
                model_type=model_type,
                status="pending",
                status_message="",
                lifecycle=ACTIVE,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        upsert_tags(session, LoggedModelTagRow, "model_id", model_id, tags)
        _insert_params(session, model_id, params)
        ctx.audit(
            session,
            "logged_models.create",
            "logged_model",
            model_id,
            {"experiment_id": experiment_id, "name": name, "run_id": run_id},
        )
        return _load(session, [logged_model_row(session, model_id)])[0]


def _insert_params(session: Session, model_id: str, params: dict[str, str]) -> None:
    """Add params; one already there with another value is a Conflict (params are
    immutable), and the caller's transaction rolls back whole."""
    if not params:
        return
    keys = sorted(params)
    stmt = dialect_insert(session, LoggedModelParamRow.__table__).on_conflict_do_nothing(
        index_elements=["model_id", "key"]
    )
    session.execute(stmt, [{"model_id": model_id, "key": k, "value": params[k]} for k in keys])
    stored = dict(
        session.execute(
            select(LoggedModelParamRow.key, LoggedModelParamRow.value).where(
                LoggedModelParamRow.model_id == model_id, LoggedModelParamRow.key.in_(keys)
            )
        ).all()
    )
    changed = [k for k in keys if stored.get(k) != params[k]]
    if changed:
        key = changed[0]
        raise Conflict(
            f"param {key!r} of logged model {model_id} is already {stored.get(key)!r}; it "
            f"cannot change to {params[key]!r} (nothing of this request was stored)",
            {"keys": changed},
        )


def log_params(ctx: RequestContext, model_id: str, params: dict[str, str]) -> None:
    """Add params to a logged model (same value again is fine, another is a Conflict)."""
    _check_pairs("param", params, MAX_PARAM_VALUE)
    with ctx.platform.db.write() as session:
        _writable(session, model_id)
        _insert_params(session, model_id, params)
        _touch(session, model_id)
        ctx.audit(
            session, "logged_models.log_params", "logged_model", model_id, {"keys": sorted(params)}
        )


def set_tags(ctx: RequestContext, model_id: str, tags: dict[str, str]) -> None:
    """Set (insert or overwrite) tags of a logged model."""
    _check_pairs("tag", tags)
    with ctx.platform.db.write() as session:
        _writable(session, model_id)
        upsert_tags(session, LoggedModelTagRow, "model_id", model_id, tags)
        _touch(session, model_id)
        ctx.audit(session, "logged_models.set_tags", "logged_model", model_id, {"tags": tags})


def delete_tag(ctx: RequestContext, model_id: str, key: str) -> None:
    """Remove one tag; NotFound when the model has no such tag."""
    with ctx.platform.db.write() as session:
        _writable(session, model_id)
        tag = session.get(LoggedModelTagRow, (model_id, key))
        if tag is None:
            raise NotFound(f"logged model {model_id} has no tag {key[:250]!r}")
        session.delete(tag)
        _touch(session, model_id)
        ctx.audit(session, "logged_models.delete_tag", "logged_model", model_id, {"key": key})


def finalize(ctx: RequestContext, model_id: str, status: str, message: str = "") -> LoggedModel:
    """Set the model's status to ``ready`` or ``failed`` (files uploaded, or not)."""
    if status not in ("ready", "failed"):
        raise InvalidInput(f"a logged model is finalized as 'ready' or 'failed', not {status!r}")
    with ctx.platform.db.write() as session:
        row = _writable(session, model_id)
        row.status = status
        row.status_message = message
        row.updated_at = now_ms()
        ctx.audit(session, "logged_models.finalize", "logged_model", model_id, {"status": status})
        session.flush()
        return _load(session, [row])[0]


def delete_logged_model(ctx: RequestContext, model_id: str) -> None:
    """Mark a logged model deleted (its files and the versions made from it stay)."""
    with ctx.platform.db.write() as session:
        row = logged_model_row(session, model_id)
        row.lifecycle = DELETED
        row.updated_at = now_ms()
        ctx.audit(session, "logged_models.delete", "logged_model", model_id)


def record_outputs(ctx: RequestContext, run_id: str, outputs: Sequence[tuple[str, int]]) -> None:
    """Record that run ``run_id`` produced the logged models ``(model_id, step)`` (again:
    the step is updated). Every model must be in the run's project."""
    if not outputs:
        return
    steps = dict(outputs)
    with ctx.platform.db.write() as session:
        writable_run(session, run_id)
        known = set(
            session.scalars(
                select(LoggedModelRow.id)
                .join(ExperimentRow, ExperimentRow.id == LoggedModelRow.experiment_id)
                .where(LoggedModelRow.id.in_(steps), ExperimentRow.project_id == ctx.project_id)
            )
        )
        missing = sorted(set(steps) - known)
        if missing:
            raise NotFound(f"logged model {missing[0]!r} not found in this project")
        stmt = dialect_insert(session, RunOutputRow.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "model_id"], set_={"step": stmt.excluded.step}
        )
        session.execute(
            stmt, [{"run_id": run_id, "model_id": m, "step": steps[m]} for m in sorted(steps)]
        )
        ctx.audit(session, "runs.log_outputs", "run", run_id, {"models": sorted(steps)})


# --- files ---------------------------------------------------------------------------------


def _check_file_writable(session: Session, model_id: str, path: str) -> None:
    _writable(session, model_id)
    file_above, is_folder = path_clash(
        session, LoggedModelFileRow.path, LoggedModelFileRow.model_id == model_id, path
    )
    if file_above is not None:
        raise Conflict(
            f"file {file_above!r} of the model is a file, so {path!r} cannot be under it"
        )
    if is_folder:
        raise Conflict(f"{path!r} of the model is a folder; it cannot be replaced by a file")


def check_file_upload(platform: Platform, model_id: str, path: str) -> str:
    """Refuse an upload before any byte is read (bad path, unknown or deleted model, a
    clash with a file or folder). Returns the checked path."""
    path = normalize_artifact_path(path)
    with platform.db.read() as session:
        _check_file_writable(session, model_id, path)
    return path


def record_file(ctx: RequestContext, model_id: str, path: str, blob: BlobRef) -> ArtifactInfo:
    """Point the model's file ``path`` at a stored blob, replacing any earlier one."""
    path = normalize_artifact_path(path)
    with ctx.platform.db.write() as session:
        _check_file_writable(session, model_id, path)
        stmt = dialect_insert(session, LoggedModelFileRow.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["model_id", "path"],
            set_={k: stmt.excluded[k] for k in ("blob_hash", "size", "created_at")},
        )
        session.execute(
            stmt,
            {
                "model_id": model_id,
                "path": path,
                "blob_hash": blob.hash,
                "size": blob.size,
                "created_at": now_ms(),
            },
        )
        _touch(session, model_id)
        ctx.audit(
            session,
            "logged_models.upload",
            "logged_model",
            model_id,
            {"path": path, "hash": blob.hash, "size": blob.size},
        )
    return ArtifactInfo(path=path, is_dir=False, size=blob.size, hash=blob.hash)


def list_files(platform: Platform, model_id: str, prefix: str | None = "") -> list[ArtifactInfo]:
    """The direct children of folder ``prefix`` of the model, like ``ls`` (a file path
    lists that file). NotFound for an unknown model or a path that is neither."""
    prefix = normalize_artifact_prefix(prefix)
    with platform.db.read() as session:
        logged_model_row(session, model_id)
        rows = logged_model_files(session, model_id)
    if prefix:
        for path, digest, size in rows:
            if path == prefix:
                return [ArtifactInfo(path=path, size=size, hash=digest)]
    base = f"{prefix}/" if prefix else ""
    out: list[ArtifactInfo] = []
    seen_dirs: set[str] = set()
    for path, digest, size in rows:
        if not path.startswith(base):
            continue
        child, sep, _ = path[len(base) :].partition("/")
        if not sep:
            out.append(ArtifactInfo(path=path, size=size, hash=digest))
        elif child not in seen_dirs:
            seen_dirs.add(child)
            out.append(ArtifactInfo(path=base + child, is_dir=True))
    if prefix and not out:
        raise NotFound(f"logged model {model_id} has no file {prefix!r}")
    return sorted(out, key=lambda a: a.path)


def get_file(platform: Platform, model_id: str, path: str) -> ArtifactInfo:
    """One file of the model (NotFound for an unknown model, a folder or a missing path)."""
    path = normalize_artifact_path(path)
    with platform.db.read() as session:
        logged_model_row(session, model_id)
        row = session.get(LoggedModelFileRow, (model_id, path))
    if row is None:
        raise NotFound(f"logged model {model_id} has no file {path!r}")
    return ArtifactInfo(path=path, size=row.size, hash=row.blob_hash)


# --- search --------------------------------------------------------------------------------

# Attribute spellings MLflow accepts -> (column, kind).
_ATTRIBUTES: dict[str, tuple[Any, Literal["text", "number"]]] = {
    "name": (LoggedModelRow.name, "text"),
    "model_id": (LoggedModelRow.id, "text"),
    "model_type": (LoggedModelRow.model_type, "text"),
    "status": (LoggedModelRow.status, "text"),
    "source_run_id": (LoggedModelRow.run_id, "text"),
    "experiment_id": (LoggedModelRow.experiment_id, "number"),
    "creation_timestamp": (LoggedModelRow.created_at, "number"),
    "last_updated_timestamp": (LoggedModelRow.updated_at, "number"),
}
_ALIASES = {
    **{name: name for name in _ATTRIBUTES},
    "id": "model_id",
    "creation_time": "creation_timestamp",
    "creation_timestamp_ms": "creation_timestamp",
    "last_updated_time": "last_updated_timestamp",
    "last_updated_timestamp_ms": "last_updated_timestamp",
}
_VALID = ", ".join(sorted(_ALIASES))
# MLflow's status names -> stored ones.
_STATUS_WORDS = {
    "ready": "ready",
    "logged_model_ready": "ready",
    "pending": "pending",
    "logged_model_pending": "pending",
    "failed": "failed",
    "upload_failed": "failed",
    "logged_model_upload_failed": "failed",
}


class _FilterParser(Parser):
    """The run search language with the logged model's attributes."""

    def attribute(self, name: str, pos: int) -> str:
        canonical = _ALIASES.get(name.lower())
        if canonical is None:
            parse_error(
                self.what, f"unknown attribute {name!r}", pos, f"valid attributes: {_VALID}"
            )
        return canonical


def _parse(source: str) -> Expr | None:
    parser = _FilterParser(source, "filter")
    if parser.tok.kind == "eof":
        return None
    expr = parser.or_expr()
    parser.end("AND, OR or the end of the filter")
    return expr


def _compile(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, And):
        return and_(*(_compile(e) for e in expr.items))
    if isinstance(expr, Or):
        return or_(*(_compile(e) for e in expr.items))
    if isinstance(expr, Not):
        return not_(_compile(expr.item))
    return _comparison(expr)


def _comparison(cmp: Comparison) -> ColumnElement[bool]:
    f = cmp.field
    if f.kind == "attribute":
        column, kind = _ATTRIBUTES[f.key]
        if cmp.op in ("IS NULL", "IS NOT NULL"):
            if f.key != "source_run_id":
                _bad(cmp, f"{cmp.op} does not apply to {f.label}: it is never null")
            return column.is_(None) if cmp.op == "IS NULL" else column.is_not(None)
        if f.key == "status":
            cmp = _status_comparison(cmp)
        check_op(cmp, kind)
        condition = value_test(column, cmp, kind)
        # Two-valued for the nullable source_run_id, so NOT (...) matches models without one.
        return and_(column.is_not(None), condition) if f.key == "source_run_id" else condition
    if f.kind == "dataset":
        _bad(cmp, f"{f.label} filters runs, not logged models")
    if f.kind == "metric":
        clauses: list[ColumnElement[bool]] = [
            LatestMetricRow.run_id == LoggedModelRow.run_id,
            LatestMetricRow.key == f.key,
        ]
        value_column: Any = LatestMetricRow.value
        kind = "number"
    else:
        table = LoggedModelTagRow if f.kind == "tag" else LoggedModelParamRow
        clauses = [table.model_id == LoggedModelRow.id, table.key == f.key]
        value_column = table.value
        kind = "text"
    if cmp.op in ("IS NULL", "IS NOT NULL"):
        present = exists().where(*clauses)
        return not_(present) if cmp.op == "IS NULL" else present
    check_op(cmp, kind)
    return exists().where(*clauses, value_test(value_column, cmp, kind))


def _status_comparison(cmp: Comparison) -> Comparison:
    def word(value: Any) -> Any:
        if isinstance(value, str):
            stored = _STATUS_WORDS.get(value.lower())
            if stored is None:
                _bad(cmp, f"unknown status {value!r}", "use READY, PENDING or FAILED")
            return stored
        return value

    value = cmp.value
    new = tuple(word(v) for v in value) if isinstance(value, tuple) else word(value)
    return Comparison(cmp.field, cmp.op, new, cmp.pos)


def _bad(cmp: Comparison, message: str, hint: str = "") -> NoReturn:
    text = f"filter: {message} at position {cmp.pos}" + (f"; {hint}" if hint else "")
    raise InvalidInput(text, {"position": cmp.pos})


@dataclass(frozen=True)
class OrderBy:
    """One ordering of a logged model search: an attribute or ``metrics.<key>``."""

    field_name: str
    ascending: bool = True


def _order(stmt: Select[Any], terms: Sequence[OrderBy]) -> Select[Any]:
    keys: list[Any] = []
    for index, term in enumerate(terms):
        name = term.field_name
        if name.startswith(("metrics.", "metric.")):
            key = name.split(".", 1)[1]
            if not key:
                raise InvalidInput(f"order_by[{index}]: {name!r} names no metric")
            alias = aliased(LatestMetricRow)
            stmt = stmt.outerjoin(
                alias, and_(alias.run_id == LoggedModelRow.run_id, alias.key == key)
            )
            column: Any = alias.value
        else:
            canonical = _ALIASES.get(name.lower().removeprefix("attributes."))
            if canonical is None:
                raise InvalidInput(
                    f"order_by[{index}]: cannot order logged models by {name[:100]!r}; "
                    f"use metrics.<key> or one of {_VALID}"
                )
            column = _ATTRIBUTES[canonical][0]
        # Models without the value go last, either direction (as in MLflow).
        keys.append(case((column.is_(None), 1), else_=0))
        keys.append(column.asc() if term.ascending else column.desc())
    return stmt.order_by(*keys, LoggedModelRow.created_at.desc(), LoggedModelRow.id.asc())


def search_logged_models(
    platform: Platform,
    experiment_ids: Sequence[int],
    *,
    filter_string: str | None = None,
    datasets: Sequence[tuple[str, str | None]] = (),
    order_by: Sequence[OrderBy] = (),
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[LoggedModel], str | None]:
    """A page of the active logged models of ``experiment_ids`` matching the filter
    (the run search language over name, model_id, model_type, status, source_run_id,
    creation/last-updated timestamps, ``tags.*``, ``params.*`` and ``metrics.*``, the
    source run's latest metrics), newest first unless ordered. ``datasets``
    ``(name, digest or None)`` keeps models whose source run read one of them.
    Returns the page and the next page's token (None on the last page)."""
    limit = DEFAULT_MAX_RESULTS if max_results is None else max_results
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_RESULTS}, got {limit}")
    offset = decode_page_token(page_token)
    stmt = select(LoggedModelRow).where(
        LoggedModelRow.experiment_id.in_(list(experiment_ids)),
        LoggedModelRow.lifecycle == ACTIVE,
    )
    expr = _parse(filter_string) if filter_string else None
    if expr is not None:
        stmt = stmt.where(_compile(expr))
    if datasets:
        read = [
            and_(RunInputRow.name == name, *([RunInputRow.digest == digest] if digest else []))
            for name, digest in datasets
        ]
        stmt = stmt.where(exists().where(RunInputRow.run_id == LoggedModelRow.run_id, or_(*read)))
    stmt = _order(stmt, order_by).offset(offset).limit(limit + 1)
    with platform.db.read() as session:
        rows = list(session.scalars(stmt))
        models = _load(session, rows[:limit])
    return models, next_token(len(rows), offset, limit)
