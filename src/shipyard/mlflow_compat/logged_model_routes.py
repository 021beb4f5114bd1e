"""MLflow 3 logged models (``/mlflow/logged-models/...``) and a run's inputs and outputs
(``runs/log-inputs``, ``runs/outputs``), over :mod:`shipyard.tracking.logged_models`
and :mod:`shipyard.mlflow_compat.inputs`.

``mlflow.<flavor>.log_model`` creates a logged model (pending), lists it among the
run's outputs, uploads its files through the artifact proxy
(:mod:`shipyard.mlflow_compat.artifact_routes`) and finalizes it (ready); loading
``models:/<model_id>`` reads it back the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from sqlalchemy import select

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.int64 import numeric_id
from shipyard.mlflow_compat import inputs
from shipyard.mlflow_compat.artifact_routes import file_infos, model_artifact_uri
from shipyard.mlflow_compat.protocol import (
    DEFAULT_EXPERIMENT_ID,
    Message,
    MessageResolver,
    experiment_message,
    fail,
    field,
    int_field,
    list_field,
    message_of,
    run_message,
    text_field,
    url_message,
)
from shipyard.mlflow_compat.tracking import (
    conflict_as,
    default_experiment_id,
    experiment_id_of,
    key_values,
)
from shipyard.platform import Platform
from shipyard.registry.tables import ModelVersionRow, RegisteredModelRow
from shipyard.registry.types import DELETED_STATUS
from shipyard.server.responses import FastJSON
from shipyard.tracking import logged_models
from shipyard.tracking.logged_models import LoggedModel, OrderBy
from shipyard.tracking.resolvers import experiment_project

router = APIRouter(tags=["mlflow"])

F = TypeVar("F", bound=Callable[..., Any])

# LoggedModelStatus in service.proto: names and numbers <-> Shipyard's statuses.
_STATUS_NAMES = {
    "pending": "LOGGED_MODEL_PENDING",
    "ready": "LOGGED_MODEL_READY",
    "failed": "LOGGED_MODEL_UPLOAD_FAILED",
}
_FINAL_STATUSES = {
    "LOGGED_MODEL_READY": "ready",
    "2": "ready",
    "LOGGED_MODEL_UPLOAD_FAILED": "failed",
    "3": "failed",
}


def _route(method: str, path: str) -> Callable[[F], F]:
    """Serve ``path`` under /api/2.0/mlflow (what the client calls) and /api/3.0/mlflow
    (where MLflow's server also answers)."""

    def register(endpoint: F) -> F:
        for prefix in ("/api/2.0/mlflow", "/api/3.0/mlflow"):
            router.add_api_route(prefix + path, endpoint, methods=[method])
        return endpoint

    return register


def _model_project(request: Request, platform: Platform, _: Message) -> int:
    return logged_models.project_of_logged_model(platform, request.path_params["model_id"])


model_message = MessageResolver(_model_project)
"""Parse the message; the project of the ``{model_id}`` path parameter."""


# --- messages ---------------------------------------------------------------------------------


def _registrations(platform: Platform, ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The registered model versions made from each logged model."""
    found: dict[str, list[dict[str, str]]] = {}
    if not ids:
        return found
    with platform.db.read() as session:
        rows = session.execute(
            select(
                ModelVersionRow.logged_model_id, RegisteredModelRow.name, ModelVersionRow.version
            )
            .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
            .where(
                ModelVersionRow.logged_model_id.in_(list(ids)),
                ModelVersionRow.status != DELETED_STATUS,
            )
            .order_by(RegisteredModelRow.name, ModelVersionRow.version)
        )
        for model_id, name, version in rows:
            found.setdefault(model_id, []).append({"name": name, "version": str(version)})
    return found


def models_to_mlflow(platform: Platform, models: Sequence[LoggedModel]) -> list[dict[str, Any]]:
    """Logged models as MLflow's ``LoggedModel`` messages."""
    registered = _registrations(platform, [m.id for m in models])
    return [_model_message(m, registered.get(m.id, [])) for m in models]


def _model_message(model: LoggedModel, registrations: list[dict[str, str]]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": model_artifact_uri(model.experiment_id, model.id),
        "status": _STATUS_NAMES[model.status],
        "model_type": model.model_type,
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
        "registrations": registrations,
    }
    if model.run_id:
        info["source_run_id"] = model.run_id
    if model.status_message:
        info["status_message"] = model.status_message
    metrics = [
        {
            "key": key,
            "value": "NaN" if value is None else value,
            "timestamp": timestamp,
            "step": step,
            "run_id": model.run_id,
            "model_id": model.id,
        }
        for key, value, step, timestamp in model.metrics
    ]
    params = [{"key": k, "value": v} for k, v in model.params.items()]
    return {"info": info, "data": {"params": params, "metrics": metrics}}


def _one(ctx: RequestContext, model: LoggedModel) -> FastJSON:
    return FastJSON({"model": models_to_mlflow(ctx.platform, [model])[0]})


def _pairs(message: Message, name: str) -> dict[str, str]:
    return dict(key_values(message, name))


# --- logged models ----------------------------------------------------------------------------


@_route("POST", "/logged-models")
def create_logged_model(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    """A new logged model (pending) in an experiment, with its first params and tags."""
    msg = message_of(request)
    experiment_id = experiment_id_of(ctx, field(msg, "experiment_id"))
    with conflict_as("INVALID_PARAMETER_VALUE"):
        model = logged_models.create_logged_model(
            ctx,
            experiment_id,
            name=text_field(msg, "name"),
            model_type=text_field(msg, "model_type") or "",
            run_id=text_field(msg, "source_run_id"),
            params=_pairs(msg, "params"),
            tags=_pairs(msg, "tags"),
        )
    return _one(ctx, model)


@_route("GET", "/logged-models/{model_id}")
def get_logged_model(
    request: Request, model_id: str, ctx: RequestContext = require(Action.READ, model_message)
) -> FastJSON:
    """One logged model (a deleted one only with ``allow_deleted=true``)."""
    allow_deleted = str(message_of(request).get("allow_deleted", "")).lower() == "true"
    model = logged_models.get_logged_model(ctx.platform, model_id, allow_deleted=allow_deleted)
    return _one(ctx, model)


@_route("PATCH", "/logged-models/{model_id}")
def finalize_logged_model(
    request: Request, model_id: str, ctx: RequestContext = require(Action.WRITE, model_message)
) -> FastJSON:
    """Set the final status: READY (files uploaded) or UPLOAD_FAILED."""
    raw = field(message_of(request), "status")
    status = _FINAL_STATUSES.get(str(raw).upper())
    if status is None:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {raw!r} for parameter 'status': a logged model is finalized as "
            "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.",
        )
    with conflict_as("INVALID_PARAMETER_VALUE"):
        model = logged_models.finalize(ctx, model_id, status)
    return _one(ctx, model)


@_route("DELETE", "/logged-models/{model_id}")
def delete_logged_model(
    model_id: str, ctx: RequestContext = require(Action.WRITE, model_message)
) -> FastJSON:
    """Mark the model deleted (its files, and versions made from it, stay)."""
    logged_models.delete_logged_model(ctx, model_id)
    return FastJSON({})


@_route("PATCH", "/logged-models/{model_id}/tags")
def set_logged_model_tags(
    request: Request, model_id: str, ctx: RequestContext = require(Action.WRITE, model_message)
) -> FastJSON:
    """Set (insert or overwrite) tags."""
    tags = _pairs(message_of(request), "tags")
    with conflict_as("INVALID_PARAMETER_VALUE"):
        logged_models.set_tags(ctx, model_id, tags)
    return FastJSON({})


@_route("DELETE", "/logged-models/{model_id}/tags/{tag_key:path}")
def delete_logged_model_tag(
    model_id: str, tag_key: str, ctx: RequestContext = require(Action.WRITE, model_message)
) -> FastJSON:
    """Remove one tag (RESOURCE_DOES_NOT_EXIST when there is none such)."""
    with conflict_as("INVALID_PARAMETER_VALUE"):
        logged_models.delete_tag(ctx, model_id, tag_key)
    return FastJSON({})


@_route("POST", "/logged-models/{model_id}/params")
def log_logged_model_params(
    request: Request, model_id: str, ctx: RequestContext = require(Action.WRITE, model_message)
) -> FastJSON:
    """Add params (the same value again is fine; another one is refused)."""
    params = _pairs(message_of(request), "params")
    with conflict_as("INVALID_PARAMETER_VALUE"):
        logged_models.log_params(ctx, model_id, params)
    return FastJSON({})


@_route("GET", "/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(
    request: Request, model_id: str, ctx: RequestContext = require(Action.READ, model_message)
) -> FastJSON:
    """The files and folders in one folder of the model (paths from the model's root)."""
    path = text_field(message_of(request), "artifact_directory_path") or ""
    model = logged_models.get_logged_model(ctx.platform, model_id)
    found = logged_models.list_files(ctx.platform, model_id, path)
    return FastJSON(
        {
            "root_uri": model_artifact_uri(model.experiment_id, model_id),
            "files": file_infos(found, names_only=False),
        }
    )


def _search_experiments(ctx: RequestContext, raw_ids: list[Any]) -> list[int]:
    if not raw_ids:
        raise fail(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_ids'."
        )
    ids: list[int] = []
    for raw in raw_ids:
        text = str(raw)
        if text == DEFAULT_EXPERIMENT_ID:
            ids.append(default_experiment_id(ctx))
            continue
        number = numeric_id(text, "experiment id")
        if number is None or experiment_project.resolve(ctx.platform, text) != ctx.project_id:
            raise fail("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={text[:100]} exists")
        ids.append(number)
    return ids


def _order_by(items: list[Any]) -> list[OrderBy]:
    terms: list[OrderBy] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise fail(
                "INVALID_PARAMETER_VALUE",
                f"order_by[{index}]: expected {{'field_name': ..., 'ascending': ...}}",
            )
        ascending = item.get("ascending", True)
        terms.append(OrderBy(item["field_name"], str(ascending).lower() != "false"))
    return terms


def _datasets(items: list[Any]) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for index, item in enumerate(items):
        name = item.get("dataset_name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise fail(
                "INVALID_PARAMETER_VALUE",
                f"Missing value for required parameter 'datasets[{index}].dataset_name'.",
            )
        digest = item.get("dataset_digest")
        found.append((name, str(digest) if digest else None))
    return found


@_route("POST", "/logged-models/search")
def search_logged_models(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    """A page of the logged models of some experiments of the project."""
    msg = message_of(request)
    experiment_ids = _search_experiments(ctx, list_field(msg, "experiment_ids"))
    models, token = logged_models.search_logged_models(
        ctx.platform,
        experiment_ids,
        filter_string=text_field(msg, "filter"),
        datasets=_datasets(list_field(msg, "datasets")),
        order_by=_order_by(list_field(msg, "order_by")),
        max_results=int_field(msg, "max_results"),
        page_token=text_field(msg, "page_token"),
    )
    body: dict[str, Any] = {"models": models_to_mlflow(ctx.platform, models)}
    if token:
        body["next_page_token"] = token
    return FastJSON(body)


# --- a run's inputs and outputs ---------------------------------------------------------------


@_route("POST", "/runs/log-inputs")
def log_inputs(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    """Record the datasets (and logged models) a run read."""
    msg = message_of(request)
    inputs.log_inputs(ctx, str(field(msg, "run_id")), msg)
    return FastJSON({})


@_route("POST", "/runs/outputs")
def log_outputs(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    """Record the logged models a run produced, at a step."""
    msg = message_of(request)
    items = list_field(msg, "models")
    if not items:
        raise fail("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'models'.")
    outputs: list[tuple[str, int]] = []
    for index, item in enumerate(items):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise fail(
                "INVALID_PARAMETER_VALUE",
                f"Missing value for required parameter 'models[{index}].model_id'.",
            )
        step = int_field(item, "step", default=0)
        outputs.append((model_id, step or 0))
    with conflict_as("INVALID_PARAMETER_VALUE"):
        logged_models.record_outputs(ctx, str(field(msg, "run_id")), outputs)
    return FastJSON({})
