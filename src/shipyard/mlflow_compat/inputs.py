"""A run's inputs in MLflow's words: ``runs/log-inputs`` into ``run_inputs``, and back.

MLflow describes a dataset a run read by name, digest, source and schema, with
tags (``mlflow.data.context``: "training", "eval", ...). Each becomes a
``run_inputs`` row, once per (name, digest, context): logging the same input
again changes nothing. A logged model a run read (``models`` of LogInputs) is
kept in the same table, marked by :data:`MODEL_INPUT_SOURCE`, so lineage knows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound
from shipyard.mlflow_compat.errors import fail
from shipyard.mlflow_compat.protocol import Message
from shipyard.tracking.runs import writable_run
from shipyard.tracking.tables import (
    MODEL_INPUT_SOURCE,
    ExperimentRow,
    LoggedModelRow,
    RunInputRow,
)
from shipyard.tracking.upserts import dialect_insert

CONTEXT_TAG = "mlflow.data.context"

# Column sizes of run_inputs (and MLflow's own limits where they are smaller).
_LIMITS = {"name": 500, "digest": 64, "source_type": 100, "context": 100}
_MAX_TAG_KEY = 255
_MAX_TAG_VALUE = 5000
_REQUIRED = ("name", "digest", "source_type", "source")


def _invalid(message: str) -> Exception:
    return fail("INVALID_PARAMETER_VALUE", message)


def _dataset_row(index: int, item: Any) -> dict[str, Any]:
    """One ``DatasetInput`` message as the values of a run_inputs row."""
    where = f"datasets[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
        raise _invalid(f"{where}: expected {{'dataset': {{...}}, 'tags': [...]}}")
    dataset = item["dataset"]
    values: dict[str, Any] = {}
    for name in ("name", "digest", "source_type", "source", "schema", "profile"):
        value = dataset.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise _invalid(f"{where}.dataset.{name} must be a string")
        values[name] = value
    for name in _REQUIRED:
        if not values[name]:
            raise _invalid(f"Missing value for required parameter '{where}.dataset.{name}'.")
    tags: dict[str, str] = {}
    for tag in item.get("tags") or []:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str) or not tag["key"]:
            raise _invalid(f"{where}.tags: each tag needs a 'key' string, got {tag!r:.200}")
        key, value = tag["key"], str(tag.get("value") or "")
        if len(key) > _MAX_TAG_KEY or len(value) > _MAX_TAG_VALUE:
            raise _invalid(f"{where}.tags: tag {key[:100]!r} is too long")
        tags[key] = value
    values["context"] = tags.get(CONTEXT_TAG, "")
    for name, limit in _LIMITS.items():
        if len(values[name]) > limit:
            raise _invalid(f"{where}: {name} is longer than {limit} characters")
    if values["source_type"] == MODEL_INPUT_SOURCE:
        raise _invalid(f"{where}: source_type {MODEL_INPUT_SOURCE!r} is reserved")
    values["tags"] = tags
    return values


def _model_ids(message: Message) -> list[str]:
    ids: list[str] = []
    for index, item in enumerate(message.get("models") or []):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise _invalid(f"Missing value for required parameter 'models[{index}].model_id'.")
        ids.append(model_id)
    return ids


def log_inputs(ctx: RequestContext, run_id: str, message: Message) -> None:
    """Record the datasets (and logged models) of a LogInputs message as the run's
    inputs, all or nothing; ones already recorded are left as they are."""
    datasets = message.get("datasets") or []
    if not isinstance(datasets, list) or not isinstance(message.get("models") or [], list):
        raise _invalid("'datasets' and 'models' must be lists")
    dataset_rows = [_dataset_row(i, item) for i, item in enumerate(datasets)]
    model_ids = _model_ids(message)
    now = now_ms()
    with ctx.platform.db.write() as session:
        try:
            writable_run(session, run_id)
        except Conflict as exc:  # a deleted run takes no inputs (MLflow's code for it)
            raise _invalid(exc.message) from None
        if model_ids:
            _check_models(session, ctx, model_ids)
        rows = dataset_rows + [
            {
                "name": model_id,
                "digest": "",
                "context": "",
                "source_type": MODEL_INPUT_SOURCE,
                "source": model_id,
                "schema": "",
                "profile": "",
                "tags": {},
            }
            for model_id in model_ids
        ]
        if not rows:
            return
        stmt = dialect_insert(session, RunInputRow.__table__).on_conflict_do_nothing(
            index_elements=["run_id", "name", "digest", "context"]
        )
        session.execute(stmt, [{**row, "run_id": run_id, "created_at": now} for row in rows])
        ctx.audit(
            session,
            "runs.log_inputs",
            "run",
            run_id,
            {
                "datasets": [{"name": r["name"], "digest": r["digest"]} for r in dataset_rows],
                "models": model_ids,
            },
        )


def _check_models(session: Session, ctx: RequestContext, model_ids: list[str]) -> None:
    known = set(
        session.scalars(
            select(LoggedModelRow.id)
            .join(ExperimentRow, ExperimentRow.id == LoggedModelRow.experiment_id)
            .where(LoggedModelRow.id.in_(model_ids), ExperimentRow.project_id == ctx.project_id)
        )
    )
    missing = [m for m in model_ids if m not in known]
    if missing:
        raise NotFound(f"logged model {missing[0]!r} not found in this project")


def run_inputs_messages(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """MLflow's ``RunInputs`` message of each run: ``{"dataset_inputs": [...],
    "model_inputs": [...]}`` (runs without inputs get empty lists)."""
    out: dict[str, dict[str, Any]] = {
        run_id: {"dataset_inputs": [], "model_inputs": []} for run_id in run_ids
    }
    if not run_ids:
        return out
    rows = session.scalars(
        select(RunInputRow).where(RunInputRow.run_id.in_(run_ids)).order_by(RunInputRow.id)
    )
    for row in rows:
        if row.source_type == MODEL_INPUT_SOURCE:
            out[row.run_id]["model_inputs"].append({"model_id": row.name})
            continue
        tags = dict(row.tags or {})
        if row.context:
            tags.setdefault(CONTEXT_TAG, row.context)
        dataset = {
            "name": row.name,
            "digest": row.digest,
            "source_type": row.source_type,
            "source": row.source,
        }
        if row.schema:
            dataset["schema"] = row.schema
        if row.profile:
            dataset["profile"] = row.profile
        out[row.run_id]["dataset_inputs"].append(
            {"tags": [{"key": k, "value": str(v)} for k, v in tags.items()], "dataset": dataset}
        )
    return out


def run_inputs_message(session: Session, run_id: str) -> dict[str, Any]:
    """MLflow's ``RunInputs`` message of one run (see :func:`run_inputs_messages`)."""
    return run_inputs_messages(session, [run_id])[run_id]
