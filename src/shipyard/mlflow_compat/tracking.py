"""MLflow tracking messages <-> Shipyard's tracking services.

The routes in :mod:`shipyard.mlflow_compat.tracking_routes` read a message, call
the functions here, and answer what they return. Everything that MLflow names
differently from Shipyard is translated in this module, once:

- experiment ids are Shipyard's integer ids as strings; ``"0"`` is the project's
  default experiment, the one Shipyard's SDK logs to when none is named (created on
  first use, :func:`default_experiment_id`); MLflow's name for it, ``Default``, finds it;
- a run's name is MLflow's ``run_name`` and its ``mlflow.runName`` tag; its parent is
  the ``mlflow.parentRunId`` tag; its description the ``mlflow.note.content`` tag;
- statuses are upper case in MLflow, lower case here;
- a NaN metric (stored as NULL) travels as ``"NaN"``, as protobuf's JSON spells it.

It also holds the two writes Shipyard's own API lacks (deleting one run tag or
one experiment tag), each with its audit event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext, authorize
from shipyard.auth.principal import Action
from shipyard.clock import now_ms
from shipyard.db.driver import driver_cursor, driver_sql
from shipyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from shipyard.int64 import numeric_id, parse_int64
from shipyard.mlflow_compat.errors import fail
from shipyard.mlflow_compat.protocol import DEFAULT_EXPERIMENT_ID, Message
from shipyard.paging import decode_page_token, encode_page_token
from shipyard.platform import Platform
from shipyard.tracking import experiments, runs, summaries
from shipyard.tracking.client import DEFAULT_EXPERIMENT
from shipyard.tracking.metrics import HISTORY_ORDER, OF_SERIES
from shipyard.tracking.runs import (
    RUN_HEAD_KEYS,
    prepare_search,
    run_dicts,
    search_page_rows,
)
from shipyard.tracking.tables import ExperimentRow, ExperimentTagRow
from shipyard.tracking.types import (
    ACTIVE,
    DELETED,
    Experiment,
    ExperimentCreate,
    RunSearch,
    check_keys,
    storable_metric,
)

M = TypeVar("M", bound=BaseModel)

# MLflow's experiment "0" is the experiment Shipyard's SDK logs to when none is named,
# so that runs logged either way without naming one land together.
DEFAULT_EXPERIMENT_NAME = DEFAULT_EXPERIMENT
MLFLOW_DEFAULT_NAME = "Default"
"""What MLflow calls its default experiment; looking it up by name finds Shipyard's."""

# Tags MLflow keeps as tags and Shipyard keeps as columns of the run.
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"

# RunStatus in service.proto: names and numbers (a client may send either).
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_TO_SHIPYARD_STATUS = {
    "RUNNING": "running",
    # Shipyard has no queue of runs: a scheduled run is one that has started.
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}

# ViewType in service.proto.
_VIEW_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


# --- errors -----------------------------------------------------------------------------------


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``; INVALID_PARAMETER_VALUE naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise fail(
            "INVALID_PARAMETER_VALUE", f"Invalid value for '{where}': {first['msg']}"
        ) from None


@contextmanager
def conflict_as(error_code: str) -> Iterator[None]:
    """Answer Shipyard's Conflict with the MLflow code MLflow uses in that place (a
    changed param or a write to a deleted run is INVALID_PARAMETER_VALUE there)."""
    try:
        yield
    except Conflict as exc:
        raise fail(error_code, exc.message) from None


# --- scalar fields ----------------------------------------------------------------------------


def status_of(value: Any) -> str:
    """Shipyard's status for MLflow's RunStatus (a name or its number)."""
    name = _STATUS_NUMBERS.get(value, value) if isinstance(value, int) else str(value).upper()
    status = _TO_SHIPYARD_STATUS.get(name)
    if status is None:
        raise fail("INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter 'status'.")
    return status


def view_type_of(value: Any) -> str:
    """MLflow's ViewType name (ACTIVE_ONLY, DELETED_ONLY, ALL) from a name or number."""
    if value in (None, ""):
        return "ACTIVE_ONLY"
    number = value if isinstance(value, int) else parse_int64(str(value))
    if number is not None:
        name = _VIEW_NUMBERS.get(number, "")
    else:
        name = str(value).upper()
    if name not in _VIEW_NUMBERS.values():
        raise fail("INVALID_PARAMETER_VALUE", f"Invalid view type {value!r}.")
    return name


def float_of(value: Any, name: str) -> float:
    """A double field: a JSON number or protobuf's "NaN"/"Infinity" strings."""
    if isinstance(value, bool):
        raise fail("INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter '{name}'.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise fail(
            "INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter '{name}'."
        ) from None


def key_values(message: Message, name: str) -> list[tuple[str, str]]:
    """A repeated ``{key, value}`` field (tags, params) as pairs of strings: keys and
    values of another JSON type are refused, as MLflow's protobuf parsing refuses them."""
    items = message.get(name) or []
    if not isinstance(items, list):
        raise fail("INVALID_PARAMETER_VALUE", f"Invalid value for parameter '{name}': not a list.")
    pairs: list[tuple[str, str]] = []
    for item in items:
        value = item.get("value") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("key"), str)
            or not isinstance(value, str | None)
        ):
            raise fail(
                "INVALID_PARAMETER_VALUE", f"Invalid value for parameter '{name}': {item!r:.200}"
            )
        pairs.append((item["key"], value or ""))
    return pairs


# --- experiments ------------------------------------------------------------------------------


def default_experiment_id(ctx: RequestContext, project_id: int | None = None) -> int:
    """The id of the experiment MLflow calls ``"0"``: the project's default experiment
    (the one Shipyard's SDK uses when none is named), created (and audited) on first use.

    MLflow's experiment "0" always exists, so a read of it creates it too, but only for
    a caller who may write in the project (as any write of theirs would): for one who
    may not (a viewer), it is an experiment that does not exist yet
    (RESOURCE_DOES_NOT_EXIST), and nothing is written in their name.
    ``project_id`` defaults to the context's project.
    """
    project = project_id if project_id is not None else ctx.project_id
    assert project is not None, "the default experiment needs a project"
    found = _experiment_named(ctx.platform, project, DEFAULT_EXPERIMENT_NAME)
    if found is not None:
        return found
    try:
        authorize(ctx.platform, ctx.principal, Action.WRITE, project)
    except PermissionDenied:
        raise fail(
            "RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={DEFAULT_EXPERIMENT_ID} exists"
        ) from None
    creator = ctx if ctx.project_id == project else replace(ctx, project_id=project)
    try:
        spec = ExperimentCreate(name=DEFAULT_EXPERIMENT_NAME)
        return experiments.create_experiment(creator, spec).id
    except Conflict:  # a concurrent first use created it
        found = _experiment_named(ctx.platform, project, DEFAULT_EXPERIMENT_NAME)
        assert found is not None
        return found


def _experiment_named(platform: Platform, project_id: int, name: str) -> int | None:
    with platform.db.read() as session:
        return session.scalar(
            select(ExperimentRow.id).where(
                ExperimentRow.project_id == project_id, ExperimentRow.name == name
            )
        )


def experiment_id_of(ctx: RequestContext, raw: Any) -> int:
    """The Shipyard id for an MLflow ``experiment_id`` ("0": the Default experiment).

    The authorization check has already resolved the id to a project, so it exists.
    """
    text = str(raw)
    if text == DEFAULT_EXPERIMENT_ID:
        return default_experiment_id(ctx)
    try:
        number = numeric_id(text, "experiment id")
    except InvalidInput as exc:
        raise fail("INVALID_PARAMETER_VALUE", exc.message) from None
    if number is None:
        raise fail("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={text[:100]} exists")
    return number


def experiment_artifact_location(experiment_id: int) -> str:
    """Where MLflow clients find an experiment's artifacts (the artifact proxy)."""
    return f"mlflow-artifacts:/{experiment_id}"


def experiment_to_mlflow(exp: Experiment) -> dict[str, Any]:
    """An Experiment as MLflow's ``Experiment`` message."""
    tags = dict(exp.tags)
    if exp.description and NOTE_TAG not in tags:
        tags[NOTE_TAG] = exp.description
    return {
        "experiment_id": str(exp.id),
        "name": exp.name,
        "artifact_location": experiment_artifact_location(exp.id),
        "lifecycle_stage": exp.lifecycle,
        "last_update_time": exp.updated_at,
        "creation_time": exp.created_at,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }


def delete_experiment_tag(ctx: RequestContext, experiment_id: int, key: str) -> None:
    """Remove one tag of an experiment (RESOURCE_DOES_NOT_EXIST when it has none such)."""
    check_keys([key], "tag")
    with ctx.platform.db.write() as session:
        lifecycle = session.scalar(
            select(ExperimentRow.lifecycle).where(ExperimentRow.id == experiment_id)
        )
        if lifecycle is None:
            raise NotFound(f"experiment {experiment_id} not found")
        if lifecycle != ACTIVE:
            raise fail(
                "INVALID_STATE", f"experiment {experiment_id} is deleted; restore it to change it"
            )
        removed = session.execute(
            delete(ExperimentTagRow).where(
                ExperimentTagRow.experiment_id == experiment_id, ExperimentTagRow.key == key
            )
        )
        if removed.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"no tag {key!r} on experiment {experiment_id}")
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(updated_at=now_ms())
        )
        ctx.audit(session, "experiments.delete_tag", "experiment", experiment_id, {"key": key})


# --- runs -------------------------------------------------------------------------------------


def run_artifact_uri(experiment_id: int, run_id: str) -> str:
    """Where MLflow clients find a run's artifacts (the artifact proxy)."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def _number(value: float | None) -> float | str:
    return "NaN" if value is None else value


def search_messages(
    platform: Platform, project_id: int, spec: RunSearch
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the project's runs that ``spec`` finds, as MLflow's ``Run`` messages,
    and the next page's token: built straight from the rows (no Shipyard ``Run`` in
    between, which on a page of 1,000 runs cost as much as the queries)."""
    prepare_search(platform, project_id, spec)
    with platform.db.read() as session:
        rows, token = search_page_rows(session, project_id, spec)
        return run_messages(session, _heads(rows)), token


def deleted_messages(
    platform: Platform, project_id: int, spec: RunSearch
) -> tuple[list[dict[str, Any]], str | None]:
    """:func:`search_messages` of deleted runs only (MLflow's ``DELETED_ONLY``).

    Shipyard's search has no "deleted only" view, so this walks the search that
    includes them (``spec.include_deleted``) and keeps the deleted ones; the page token
    is the position in that walk. Only the kept runs' children are read."""
    offset = decode_page_token(spec.page_token)
    found: list[dict[str, Any]] = []
    token: str | None = None
    prepare_search(platform, project_id, spec)
    with platform.db.read() as session:
        while True:
            page_spec = spec.model_copy(update={"page_token": encode_page_token(offset)})
            rows, following = search_page_rows(session, project_id, page_spec)
            heads = _heads(rows)
            for index, head in enumerate(heads):
                if head["lifecycle"] != DELETED:
                    continue
                found.append(head)
                if len(found) == spec.max_results:
                    if index + 1 < len(heads) or following:
                        token = encode_page_token(offset + index + 1)
                    return run_messages(session, found), token
            if not following:
                return run_messages(session, found), None
            offset += len(heads)


def _heads(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`~shipyard.tracking.runs.search_page_rows` as dicts by field."""
    return [dict(zip(RUN_HEAD_KEYS, row, strict=True)) for row in rows]


def read_mlflow_run(session: Session, run_id: str) -> dict[str, Any]:
    """One run as MLflow's ``Run`` message, read in ``session`` (NotFound when absent)."""
    found = run_dicts(session, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} not found")
    return run_messages(session, found)[0]


def run_messages(session: Session, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """MLflow's ``Run`` messages of ``runs`` (dicts with at least the fields of
    :data:`~shipyard.tracking.runs.RUN_HEAD_KEYS`), their children read in one query."""
    # inputs.py imports this module (conflict_as): import it when first used.
    from shipyard.mlflow_compat.inputs import run_inputs_messages

    children = _children(session, [run["id"] for run in runs])
    with_inputs = [run_id for run_id, child in children.items() if child.has_inputs]
    inputs = run_inputs_messages(session, with_inputs) if with_inputs else {}
    messages = []
    for run in runs:
        child = children[run["id"]]
        messages.append(
            run_to_mlflow(
                run,
                child.metrics,
                inputs.get(run["id"]),
                child.outputs,
                params=child.params,
                tags=child.tags,
            )
        )
    return messages


def run_info(run: dict[str, Any]) -> dict[str, Any]:
    """MLflow's ``RunInfo`` message of a run (a dict shaped like Run)."""
    info: dict[str, Any] = {
        "run_id": run["id"],
        "run_uuid": run["id"],
        "run_name": run["name"],
        "experiment_id": str(run["experiment_id"]),
        "user_id": run["user"],
        "status": run["status"].upper(),
        "start_time": run["start_time"],
        "artifact_uri": run_artifact_uri(run["experiment_id"], run["id"]),
        "lifecycle_stage": run["lifecycle"],
    }
    if run["end_time"] is not None:
        info["end_time"] = run["end_time"]
    return info


def run_to_mlflow(
    run: dict[str, Any],
    metrics: Sequence[dict[str, Any]] = (),
    inputs: dict[str, Any] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    *,
    params: list[dict[str, Any]] | None = None,
    tags: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A run as MLflow's ``Run`` message, given its latest metrics (MLflow ``Metric``
    messages, in key order), inputs and outputs; a new run has none of them.
    ``params`` and ``tags`` (``{"key", "value"}`` messages) default to the run's own."""
    if params is None:
        params = [{"key": k, "value": v} for k, v in run["params"].items()]
    if tags is None:
        tags = [{"key": k, "value": v} for k, v in run["tags"].items()]
    # The run's name, parent and description are columns here and tags in MLflow.
    named = {tag["key"] for tag in tags} if tags else ()
    if RUN_NAME_TAG not in named:
        tags.append({"key": RUN_NAME_TAG, "value": run["name"]})
    if run["parent_run_id"] and PARENT_RUN_TAG not in named:
        tags.append({"key": PARENT_RUN_TAG, "value": run["parent_run_id"]})
    if run["description"] and NOTE_TAG not in named:
        tags.append({"key": NOTE_TAG, "value": run["description"]})
    message: dict[str, Any] = {
        "info": run_info(run),
        "data": {"metrics": list(metrics), "params": params, "tags": tags},
        # As MLflow's server answers a run without inputs (and cheaper for clients to parse).
        "inputs": inputs if inputs is not None else {},
    }
    if outputs:
        message["outputs"] = {"model_outputs": outputs}
    return message


# Everything MLflow's Run message holds beyond the run's own columns, for a page of
# runs, in one statement over the driver's cursor, the run ids passed as ONE parameter
# (as in tracking/runs.py): params, tags, each latest metric with its step and time,
# whether the run has inputs (few do; those are read in full after) and its model
# outputs. SQLAlchemy's rows would cost more than the query on a page of 1,000 runs.
# On SQLite, rows of: kind, run, key, text, number, timestamp, step.
_SQLITE_CHILDREN_SQL = (
    "WITH page(id) AS (SELECT value FROM json_each(?)) "
    "SELECT 0, run_id, key, value, NULL, NULL, NULL FROM params "
    "WHERE run_id IN (SELECT id FROM page) "
    "UNION ALL "
    "SELECT 1, run_id, key, value, NULL, NULL, NULL FROM run_tags "
    "WHERE run_id IN (SELECT id FROM page) "
    "UNION ALL "
    "SELECT 2, run_id, key, NULL, value, timestamp, step FROM latest_metrics "
    "WHERE run_id IN (SELECT id FROM page) "
    "UNION ALL "
    "SELECT DISTINCT 3, run_id, NULL, NULL, NULL, NULL, NULL FROM run_inputs "
    "WHERE run_id IN (SELECT id FROM page) "
    "UNION ALL "
    "SELECT 4, run_id, model_id, NULL, NULL, NULL, step FROM run_outputs "
    "WHERE run_id IN (SELECT id FROM page)"
)
# PostgreSQL runs the joins above as hash joins over whole tables; one row per run of
# JSON, params and tags as objects from the run's summary (tracking/summaries.py), the
# rest each from an index lookup by run_id, costs far less (as in tracking/runs.py,
# which says why; doubles come exact, see db/engine.py). The latest metrics are read
# here with their step and time, which a summary does not keep.
_PG_CHILDREN_SQL = (
    "WITH page(id) AS (SELECT unnest(string_to_array(%s, ','))) "  # noqa: S608 (constants)
    f"SELECT page.id, {summaries.kept('params')}, {summaries.kept('tags')}, "
    "(SELECT json_agg(json_build_array(key, value, timestamp, step) ORDER BY key) "
    "FROM latest_metrics WHERE run_id = page.id)::text, "
    "EXISTS (SELECT 1 FROM run_inputs WHERE run_id = page.id), "
    "(SELECT json_agg(json_build_array(model_id, step)) FROM run_outputs "
    "WHERE run_id = page.id)::text "
    "FROM page" + summaries.JOIN
)


@dataclass(slots=True)
class _Children:
    """What a run's MLflow message holds beyond its own columns (MLflow messages)."""

    params: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # in key order
    has_inputs: bool = False  # few runs have: read in full by the caller
    outputs: list[dict[str, Any]] = field(default_factory=list)


def _children(session: Session, ids: Sequence[str]) -> dict[str, _Children]:
    """What the children query of the dialect (:data:`_SQLITE_CHILDREN_SQL` or
    :data:`_PG_CHILDREN_SQL`) reads of runs ``ids``, by run."""
    found = {run_id: _Children() for run_id in ids}
    if not ids:
        return found
    cursor, dialect = driver_cursor(session)
    try:
        if dialect == "postgresql":
            summaries.execute_page(session, cursor, _PG_CHILDREN_SQL, ids)
        else:
            cursor.execute(_SQLITE_CHILDREN_SQL, (orjson.dumps(list(ids)).decode(),))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if dialect == "postgresql":
        for run_id, params, tags, metrics, has_inputs, outputs in rows:
            _fill_from_json(found[run_id], params, tags, metrics, has_inputs, outputs)
        return found
    for kind, run_id, key, text, number, timestamp, step in rows:
        child = found[run_id]
        if kind == 0:
            child.params.append({"key": key, "value": text})
        elif kind == 1:
            child.tags.append({"key": key, "value": text})
        elif kind == 2:
            child.metrics.append(
                {"key": key, "value": _number(number), "timestamp": timestamp, "step": step}
            )
        elif kind == 3:
            child.has_inputs = True
        else:
            child.outputs.append({"model_id": key, "step": step})
    for child in found.values():
        if len(child.metrics) > 1:
            child.metrics.sort(key=itemgetter("key"))
    return found


def _fill_from_json(
    child: _Children,
    params: str | None,
    tags: str | None,
    metrics: str | None,
    has_inputs: bool,
    outputs: str | None,
) -> None:
    """One row of :data:`_PG_CHILDREN_SQL` into ``child`` (metrics come in key order)."""
    if params is not None:
        child.params = [{"key": k, "value": v} for k, v in orjson.loads(params).items()]
    if tags is not None:
        child.tags = [{"key": k, "value": v} for k, v in orjson.loads(tags).items()]
    if metrics is not None:
        child.metrics = [
            {
                "key": key,
                "value": _number(None if value is None else float(value)),  # "NaN" too
                "timestamp": timestamp,
                "step": step,
            }
            for key, value, timestamp, step in orjson.loads(metrics)
        ]
    child.has_inputs = bool(has_inputs)
    if outputs is not None:
        child.outputs = [{"model_id": m, "step": step} for m, step in orjson.loads(outputs)]


def delete_run_tag(ctx: RequestContext, run_id: str, key: str) -> None:
    """Remove one tag of a run (RESOURCE_DOES_NOT_EXIST when it has none such)."""
    with conflict_as("INVALID_PARAMETER_VALUE"):
        runs.delete_run_tag(ctx, run_id, key)


# --- metric history ---------------------------------------------------------------------------


def history_page(history: dict[str, Any], offset: int, limit: int | None) -> list[dict[str, Any]]:
    """Points ``offset .. offset+limit`` of a columnar history as MLflow ``Metric`` messages."""
    key = history["key"]
    end = None if limit is None else offset + limit
    return [
        {"key": key, "value": _number(v), "timestamp": t, "step": s}
        for s, v, t in zip(
            history["steps"][offset:end],
            history["values"][offset:end],
            history["timestamps"][offset:end],
            strict=True,
        )
    ]


# MLflow's client reads a history 25,000 points at a time: each page is read alone
# rather than the whole history per page. The native order is step, then time, then
# value (tracking/metrics.py); the index gives step order, the same unless a step
# repeats. So a page is read by step alone with one point of context on each side,
# and read again in the full order (which sorts each run of equal steps) only when
# two of those points share a step.
_PAGE_BY_STEP = (
    f"SELECT step, timestamp, value FROM metrics WHERE {OF_SERIES} "  # noqa: S608
    "ORDER BY step LIMIT ? OFFSET ?"
)
_PAGE_FULL = (
    f"SELECT step, timestamp, value FROM metrics WHERE {OF_SERIES} "  # noqa: S608
    f"ORDER BY {HISTORY_ORDER} LIMIT ? OFFSET ?"
)


def history_slice(
    platform: Platform, run_id: str, key: str, offset: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Points ``offset .. offset+limit`` of metric ``key`` of a run, in the native
    history's order, as MLflow ``Metric`` messages; and whether more points follow."""
    check_keys([key], "metric")
    before = 1 if offset > 0 else 0
    with platform.db.read() as session:
        cursor, dialect = driver_cursor(session)
        try:
            args = (run_id, key, limit + 1 + before, offset - before)
            cursor.execute(driver_sql(_PAGE_BY_STEP, dialect), args)
            rows = cursor.fetchall()
            if any(a[0] == b[0] for a, b in zip(rows, rows[1:], strict=False)):
                cursor.execute(driver_sql(_PAGE_FULL, dialect), (run_id, key, limit + 1, offset))
                rows = cursor.fetchall()
            else:
                rows = rows[before:]
        finally:
            cursor.close()
    points = [
        {"key": key, "value": _number(v), "timestamp": t, "step": s} for s, t, v in rows[:limit]
    ]
    return points, len(rows) > limit


_POINTS_AT_STEP = f"SELECT timestamp, value FROM metrics WHERE {OF_SERIES} AND step = ?"  # noqa: S608


def without_stored_copies(
    platform: Platform, run_id: str, points: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``points`` (MLflow metrics: key, value, step, timestamp, model_id) less those
    linked to a model that the run's history already holds, same value at the same
    step and time.

    MLflow 3's ``log_model`` sends the run's metrics of a step again, linked to the
    model (``model_id``); MLflow's store drops such repeats. (A model's metrics here
    are its source run's: nothing else is kept of the link.)"""
    if not any(p["model_id"] for p in points):
        return points
    held: dict[tuple[str, int], set[tuple[int, float | None]]] = {}
    with platform.db.read() as session:
        cursor, dialect = driver_cursor(session)
        try:
            sql = driver_sql(_POINTS_AT_STEP, dialect)
            for at in {(p["key"], p["step"]) for p in points if p["model_id"]}:
                cursor.execute(sql, (run_id, *at))
                held[at] = set(cursor.fetchall())
        finally:
            cursor.close()
    return [
        p
        for p in points
        if not p["model_id"]
        or (p["timestamp"], storable_metric(p["value"])) not in held[(p["key"], p["step"])]
    ]
