"""MLflow's tracking REST API (experiments, runs, metrics) over Shipyard's services.

Each route reads the MLflow message, calls the same service function as the
native route (same validation, same audit event) and answers in MLflow's shape;
:mod:`shipyard.mlflow_compat.tracking` does the translation both ways.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.clock import now_ms
from shipyard.errors import NotFound
from shipyard.mlflow_compat import search
from shipyard.mlflow_compat.protocol import (
    Message,
    MessageResolver,
    experiment_message,
    fail,
    field,
    int_of,
    list_field,
    message_of,
    project_of_url,
    run_message,
    string_field,
    text_field,
    url_message,
)
from shipyard.mlflow_compat.tracking import (
    DEFAULT_EXPERIMENT_NAME,
    MLFLOW_DEFAULT_NAME,
    NOTE_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    conflict_as,
    default_experiment_id,
    delete_experiment_tag,
    delete_run_tag,
    deleted_messages,
    experiment_id_of,
    experiment_to_mlflow,
    float_of,
    history_page,
    history_slice,
    key_values,
    read_mlflow_run,
    run_info,
    run_to_mlflow,
    search_messages,
    status_of,
    validated,
    view_type_of,
    without_stored_copies,
)
from shipyard.paging import decode_page_token, encode_page_token
from shipyard.platform import Platform
from shipyard.server.responses import FastJSON
from shipyard.tracking import experiments, metrics, runs
from shipyard.tracking.liveness import check_lost_runs
from shipyard.tracking.resolvers import project_of_run
from shipyard.tracking.types import (
    ACTIVE,
    DELETED,
    MAX_SEARCH_RESULTS,
    ExperimentCreate,
    ExperimentUpdate,
    RunBatch,
    RunCreate,
    RunSearch,
    RunUpdate,
    check_keys,
)

router = APIRouter(tags=["mlflow"])

V2 = "/api/2.0/mlflow"

# MLflow's own limits (mlflow/utils/validation.py and server/handlers.py).
MAX_RESULTS_LIMIT = 50_000
DEFAULT_RUN_RESULTS = 1_000
DEFAULT_EXPERIMENT_RESULTS = 1_000
MAX_BATCH_METRICS = 1_000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BULK_RUNS = 100
MAX_BULK_RESULTS = 2_500
_MAX_HISTORY_PAGE = 2**62


def _ok() -> FastJSON:
    return FastJSON({})


def _project(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


def _run_id(message: Message) -> str:
    return str(field(message, "run_id", "run_uuid"))


def _max_results(message: Message, default: int, cap: int) -> int:
    """``max_results`` as MLflow bounds it, capped at what one Shipyard page holds
    (the client pages on with the token)."""
    value = int_of(message.get("max_results"), "max_results", default)
    assert value is not None
    if value < 1 or value > MAX_RESULTS_LIMIT:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {value} for parameter 'max_results' supplied. "
            f"It must be between 1 and {MAX_RESULTS_LIMIT}.",
        )
    return min(value, cap)


# --- experiments ------------------------------------------------------------------------------


@router.post(f"{V2}/experiments/create")
def create_experiment(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    name = field(msg, "name")
    if not isinstance(name, str):
        raise fail("INVALID_PARAMETER_VALUE", "Invalid value for parameter 'name': not a string.")
    spec = validated(ExperimentCreate, {"name": name, "tags": dict(key_values(msg, "tags"))})
    # artifact_location is ignored: artifacts always live in Shipyard's blob store.
    created = experiments.create_experiment(ctx, spec)
    return FastJSON({"experiment_id": str(created.id)})


@router.get(f"{V2}/experiments/get")
def get_experiment(
    request: Request, ctx: RequestContext = require(Action.READ, experiment_message)
) -> FastJSON:
    experiment_id = experiment_id_of(ctx, field(message_of(request), "experiment_id"))
    found = experiments.get_experiment(ctx.platform, experiment_id)
    return FastJSON({"experiment": experiment_to_mlflow(found)})


@router.get(f"{V2}/experiments/get-by-name")
def get_experiment_by_name(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    name = str(field(message_of(request), "experiment_name"))
    try:
        found = experiments.get_experiment_by_name(ctx.platform, _project(ctx), name)
    except NotFound:
        if name not in (MLFLOW_DEFAULT_NAME, DEFAULT_EXPERIMENT_NAME):
            raise fail(
                "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'"
            ) from None
        # MLflow always has its default experiment.
        found = experiments.get_experiment(ctx.platform, default_experiment_id(ctx))
    return FastJSON({"experiment": experiment_to_mlflow(found)})


@router.post(f"{V2}/experiments/search")
@router.get(f"{V2}/experiments/search")
def search_experiments(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    max_results = _max_results(msg, DEFAULT_EXPERIMENT_RESULTS, MAX_RESULTS_LIMIT)
    view = view_type_of(msg.get("view_type"))
    matches = search.experiment_filter(text_field(msg, "filter"))
    sort_key = search.experiment_sort_key(list_field(msg, "order_by"))
    offset = decode_page_token(text_field(msg, "page_token"))
    found = [
        e
        for e in experiments.list_experiments(ctx.platform, _project(ctx), include_deleted=True)
        if (view == "ALL" or (e.lifecycle == DELETED) == (view == "DELETED_ONLY")) and matches(e)
    ]
    found.sort(key=sort_key)
    page = found[offset : offset + max_results]
    body: dict[str, Any] = {"experiments": [experiment_to_mlflow(e) for e in page]}
    if offset + max_results < len(found):
        body["next_page_token"] = encode_page_token(offset + max_results)
    return FastJSON(body)


@router.post(f"{V2}/experiments/update")
def update_experiment(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    msg = message_of(request)
    experiment_id = experiment_id_of(ctx, field(msg, "experiment_id"))
    spec = validated(ExperimentUpdate, {"name": field(msg, "new_name")})
    if experiments.get_experiment(ctx.platform, experiment_id).lifecycle != ACTIVE:
        raise fail("INVALID_PARAMETER_VALUE", "Cannot rename a non-active experiment.")
    experiments.update_experiment(ctx, experiment_id, spec)
    return _ok()


@router.post(f"{V2}/experiments/delete")
def delete_experiment(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    experiment_id = experiment_id_of(ctx, field(message_of(request), "experiment_id"))
    experiments.set_experiment_lifecycle(ctx, experiment_id, DELETED)
    return _ok()


@router.post(f"{V2}/experiments/restore")
def restore_experiment(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    experiment_id = experiment_id_of(ctx, field(message_of(request), "experiment_id"))
    experiments.set_experiment_lifecycle(ctx, experiment_id, ACTIVE)
    return _ok()


@router.post(f"{V2}/experiments/set-experiment-tag")
def set_experiment_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    msg = message_of(request)
    experiment_id = experiment_id_of(ctx, field(msg, "experiment_id"))
    key, value = string_field(msg, "key"), string_field(msg, "value", required=False)
    tags = validated(RunBatch, {"tags": {key: value}}).tags
    if experiments.get_experiment(ctx.platform, experiment_id).lifecycle != ACTIVE:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"The experiment {experiment_id} must be in the 'active' state.",
        )
    experiments.set_experiment_tags(ctx, experiment_id, tags)
    return _ok()


@router.post(f"{V2}/experiments/delete-experiment-tag")
def delete_experiment_tag_route(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    msg = message_of(request)
    experiment_id = experiment_id_of(ctx, field(msg, "experiment_id"))
    delete_experiment_tag(ctx, experiment_id, str(field(msg, "key")))
    return _ok()


# --- runs -------------------------------------------------------------------------------------


@router.post(f"{V2}/runs/create")
def create_run(
    request: Request, ctx: RequestContext = require(Action.WRITE, experiment_message)
) -> FastJSON:
    msg = message_of(request)
    experiment_id = experiment_id_of(ctx, field(msg, "experiment_id"))
    tags = dict(key_values(msg, "tags"))
    name = field(msg, "run_name", required=False) or tags.pop(RUN_NAME_TAG, None)
    tags.pop(RUN_NAME_TAG, None)
    parent = tags.pop(PARENT_RUN_TAG, None) or None
    spec = validated(
        RunCreate,
        {
            "name": name,
            "parent_run_id": parent,
            "start_time": int_of(msg.get("start_time"), "start_time"),
            "tags": tags,
        },
    )
    with conflict_as("INVALID_STATE"):  # the experiment is deleted
        created = runs.create_run(ctx, experiment_id, spec)
    # A new run has no metrics, inputs nor outputs yet: nothing more to read.
    return FastJSON({"run": run_to_mlflow(created.model_dump())})


@router.post(f"{V2}/runs/update")
def update_run(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    msg = message_of(request)
    status = msg.get("status")
    spec = validated(
        RunUpdate,
        {
            "status": None if status in (None, "") else status_of(status),
            "end_time": int_of(msg.get("end_time"), "end_time"),
            "name": field(msg, "run_name", required=False),
        },
    )
    with conflict_as("INVALID_PARAMETER_VALUE"):  # the run is deleted
        updated = runs.update_run_info(ctx, _run_id(msg), spec)
    return FastJSON({"run_info": run_info(updated)})


@router.post(f"{V2}/runs/delete")
def delete_run(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    runs.set_run_lifecycle(ctx, _run_id(message_of(request)), DELETED)
    return _ok()


@router.post(f"{V2}/runs/restore")
def restore_run(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    runs.set_run_lifecycle(ctx, _run_id(message_of(request)), ACTIVE)
    return _ok()


@router.get(f"{V2}/runs/get")
def get_run(request: Request, ctx: RequestContext = require(Action.READ, run_message)) -> FastJSON:
    check_lost_runs(ctx.platform)
    with ctx.platform.db.read() as session:
        run = read_mlflow_run(session, _run_id(message_of(request)))
    return FastJSON({"run": run})


def _log(
    ctx: RequestContext,
    run_id: str,
    *,
    metrics_in: list[dict[str, Any]] | None = None,
    params: list[tuple[str, str]] | None = None,
    tags: list[tuple[str, str]] | None = None,
) -> None:
    """Log to a run through the native batch (one transaction, one audit event);
    an ``mlflow.runName`` tag renames the run."""
    param_map: dict[str, str] = {}
    for key, value in params or ():
        if param_map.get(key, value) != value:
            raise fail(
                "INVALID_PARAMETER_VALUE",
                f"Duplicate parameter keys have been submitted: {key!r} with different values.",
            )
        param_map[key] = value
    tag_map = dict(tags or ())
    new_name = tag_map.pop(RUN_NAME_TAG, None)
    batch: dict[str, Any] = {"params": param_map, "tags": tag_map}
    if metrics_in:
        batch["metrics"] = {
            "keys": [m["key"] for m in metrics_in],
            "values": [m["value"] for m in metrics_in],
            "steps": [m["step"] for m in metrics_in],
            "timestamps": [m["timestamp"] for m in metrics_in],
        }
    spec = validated(RunBatch, batch)
    with conflict_as("INVALID_PARAMETER_VALUE"):  # a changed param, or a deleted run
        metrics.log_batch(ctx, run_id, spec)
        if new_name:
            runs.update_run(ctx, run_id, validated(RunUpdate, {"name": new_name}))


def _metric(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise fail("INVALID_PARAMETER_VALUE", f"Invalid metric {item!r:.200}")
    key = item.get("key")
    if not isinstance(key, str) or not key:
        raise fail("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'key'.")
    if item.get("value") is None:
        raise fail("INVALID_PARAMETER_VALUE", f"Missing value for metric {key!r}.")
    return {
        "key": key,
        "value": float_of(item["value"], "value"),
        "step": int_of(item.get("step"), "step", 0),
        "timestamp": int_of(item.get("timestamp"), "timestamp"),  # None: now, for a batch
        "model_id": item.get("model_id"),  # MLflow 3 links a point to a logged model
    }


@router.post(f"{V2}/runs/log-metric")
def log_metric(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    msg = message_of(request)
    field(msg, "key")
    field(msg, "value")
    point = _metric(msg)
    if point["timestamp"] is None:
        raise fail("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'timestamp'.")
    _log(ctx, _run_id(msg), metrics_in=[point])
    return _ok()


@router.post(f"{V2}/runs/log-parameter")
def log_parameter(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    msg = message_of(request)
    key, value = string_field(msg, "key"), string_field(msg, "value", required=False)
    _log(ctx, _run_id(msg), params=[(key, value)])
    return _ok()


@router.post(f"{V2}/runs/set-tag")
def set_tag(request: Request, ctx: RequestContext = require(Action.WRITE, run_message)) -> FastJSON:
    msg = message_of(request)
    key, value = string_field(msg, "key"), string_field(msg, "value", required=False)
    _log(ctx, _run_id(msg), tags=[(key, value)])
    return _ok()


@router.post(f"{V2}/runs/delete-tag")
def delete_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    msg = message_of(request)
    key = str(field(msg, "key"))
    if key in (RUN_NAME_TAG, PARENT_RUN_TAG, NOTE_TAG):
        raise fail("INVALID_PARAMETER_VALUE", f"The tag {key!r} cannot be deleted here.")
    delete_run_tag(ctx, _run_id(msg), key)
    return _ok()


@router.post(f"{V2}/runs/log-batch")
def log_batch(
    request: Request, ctx: RequestContext = require(Action.WRITE, run_message)
) -> FastJSON:
    msg = message_of(request)
    raw_metrics = list_field(msg, "metrics")
    params = key_values(msg, "params")
    tags = key_values(msg, "tags")
    for what, items, limit in (
        ("metrics", raw_metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
    ):
        if len(items) > limit:
            raise fail(
                "INVALID_PARAMETER_VALUE",
                f"A batch logging request can contain at most {limit} {what}. "
                f"Got {len(items)} {what}.",
            )
    points = [_metric(m) for m in raw_metrics]
    now = now_ms()
    for p in points:
        if p["timestamp"] is None:
            p["timestamp"] = now
    run_id = _run_id(msg)
    points = without_stored_copies(ctx.platform, run_id, points)  # log_model's copies
    _log(ctx, run_id, metrics_in=points, params=params, tags=tags)
    return _ok()


# --- search -----------------------------------------------------------------------------------


@router.post(f"{V2}/runs/search")
def search_runs(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    experiment_ids = sorted({experiment_id_of(ctx, e) for e in list_field(msg, "experiment_ids")})
    max_results = _max_results(msg, DEFAULT_RUN_RESULTS, MAX_SEARCH_RESULTS)
    view = view_type_of(msg.get("run_view_type"))
    order_by = search.run_order_by(list_field(msg, "order_by"))
    spec = validated(
        RunSearch,
        {
            "experiment_ids": experiment_ids,
            "filter": search.run_filter(text_field(msg, "filter")),
            "order_by": order_by or None,
            "max_results": max_results,
            "page_token": text_field(msg, "page_token"),
            "include_deleted": view != "ACTIVE_ONLY",
        },
    )
    if not experiment_ids:
        return FastJSON({"runs": []})
    find = deleted_messages if view == "DELETED_ONLY" else search_messages
    messages, token = find(ctx.platform, _project(ctx), spec)
    body: dict[str, Any] = {"runs": messages}
    if token:
        body["next_page_token"] = token
    return FastJSON(body)


# --- metric history ---------------------------------------------------------------------------


@router.get(f"{V2}/metrics/get-history")
def get_metric_history(
    request: Request, ctx: RequestContext = require(Action.READ, run_message)
) -> FastJSON:
    msg = message_of(request)
    run_id = _run_id(msg)
    key = str(field(msg, "metric_key"))
    limit = int_of(msg.get("max_results"), "max_results")
    if limit is not None and limit <= 0:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {limit} for parameter 'max_results' supplied. "
            "It must be a positive integer.",
        )
    offset = decode_page_token(text_field(msg, "page_token"))
    if limit is None:
        history = metrics.metric_history(ctx.platform, run_id, key)
        return FastJSON({"metrics": history_page(history, offset, None)})
    # No metric holds 2**62 points, so this changes no answer: it keeps the page's SQL
    # LIMIT (limit + 2 at most) within the 64 bits a bound integer may have.
    limit = min(limit, _MAX_HISTORY_PAGE)
    points, more = history_slice(ctx.platform, run_id, key, offset, limit)
    body: dict[str, Any] = {"metrics": points}
    if more:
        body["next_page_token"] = encode_page_token(offset + limit)
    return FastJSON(body)


def _runs_of_url_project(request: Request, platform: Platform, message: Message) -> int:
    project_id = project_of_url(request, platform)
    for run_id in list_field(message, "run_ids"):
        if project_of_run(platform, str(run_id)) != project_id:
            raise NotFound(f"run {str(run_id)[:40]!r} not found")
    return project_id


runs_message = MessageResolver(_runs_of_url_project)
"""Parse the message; the tracking URI's project, which must hold every ``run_ids``."""


@router.get(f"{V2}/metrics/get-history-bulk-interval")
def get_metric_history_bulk_interval(
    request: Request, ctx: RequestContext = require(Action.READ, runs_message)
) -> FastJSON:
    msg = message_of(request)
    run_ids = [str(r) for r in list_field(msg, "run_ids")]
    if not run_ids:
        raise fail("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} "
            f"run_ids. Received {len(run_ids)} run_ids.",
        )
    key = str(field(msg, "metric_key"))
    check_keys([key], "metric")
    max_results = int_of(msg.get("max_results"), "max_results", MAX_BULK_RESULTS)
    assert max_results is not None
    if not 1 <= max_results <= MAX_BULK_RESULTS:
        raise fail(
            "INVALID_PARAMETER_VALUE", f"max_results must be between 1 and {MAX_BULK_RESULTS}."
        )
    start = int_of(msg.get("start_step"), "start_step")
    end = int_of(msg.get("end_step"), "end_step")
    if (start is None) != (end is None):
        raise fail(
            "INVALID_PARAMETER_VALUE",
            "If either start step or end step are specified, both must be specified.",
        )
    if start is not None and end is not None and start > end:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}.",
        )
    out: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        points = history_page(metrics.metric_history(ctx.platform, run_id, key), 0, None)
        if start is not None and end is not None:
            points = [p for p in points if start <= p["step"] <= end]
        for p in _sampled(points, max_results):
            out.append({**p, "run_id": run_id})
    return FastJSON({"metrics": out})


def _sampled(points: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` points spread evenly over the steps, first and last kept."""
    if len(points) <= limit:
        return points
    if limit == 1:
        return [points[-1]]
    last = len(points) - 1
    picks = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]
