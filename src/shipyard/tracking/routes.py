"""HTTP routes of experiments and runs: thin calls into the services.

Routes that can return big bodies (metric histories, search pages) build
plain dicts and answer with :class:`FastJSON`, skipping pydantic on the way
out; their OpenAPI schema still names the model.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.projects.resolvers import project_from_path
from shipyard.server.responses import FastJSON
from shipyard.tracking import bulk, downsample, experiments, liveness, metrics, runs
from shipyard.tracking.resolvers import experiment_project, run_project
from shipyard.tracking.types import (
    ACTIVE,
    DELETED,
    Experiment,
    ExperimentCreate,
    ExperimentUpdate,
    Key,
    MetricHistory,
    MetricSeries,
    Run,
    RunBatch,
    RunCreate,
    RunPage,
    RunsCreate,
    RunsCreated,
    RunSearch,
    RunUpdate,
    TagValue,
)

router = APIRouter(tags=["tracking"])
M = TypeVar("M", bound=BaseModel)


def _project(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


# --- experiments --------------------------------------------------------------------------


@router.post("/projects/{project}/experiments", status_code=201)
def create_experiment(
    project: str,
    spec: ExperimentCreate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> Experiment:
    return experiments.create_experiment(ctx, spec)


@router.get("/projects/{project}/experiments")
def list_experiments(
    project: str,
    include_deleted: bool = False,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> list[Experiment]:
    return experiments.list_experiments(ctx.platform, _project(ctx), include_deleted)


@router.get("/projects/{project}/experiments/by-name/{name:path}")
def get_experiment_by_name(
    project: str, name: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> Experiment:
    return experiments.get_experiment_by_name(ctx.platform, _project(ctx), name)


@router.get("/experiments/{experiment_id}")
def get_experiment(
    experiment_id: int, ctx: RequestContext = require(Action.READ, experiment_project)
) -> Experiment:
    return experiments.get_experiment(ctx.platform, experiment_id)


@router.patch("/experiments/{experiment_id}")
def update_experiment(
    experiment_id: int,
    spec: ExperimentUpdate,
    ctx: RequestContext = require(Action.WRITE, experiment_project),
) -> Experiment:
    return experiments.update_experiment(ctx, experiment_id, spec)


@router.delete("/experiments/{experiment_id}", status_code=204)
def delete_experiment(
    experiment_id: int, ctx: RequestContext = require(Action.WRITE, experiment_project)
) -> None:
    experiments.set_experiment_lifecycle(ctx, experiment_id, DELETED)


@router.post("/experiments/{experiment_id}/restore", status_code=204)
def restore_experiment(
    experiment_id: int, ctx: RequestContext = require(Action.WRITE, experiment_project)
) -> None:
    experiments.set_experiment_lifecycle(ctx, experiment_id, ACTIVE)


@router.put("/experiments/{experiment_id}/tags", status_code=204)
def set_experiment_tags(
    experiment_id: int,
    tags: dict[Key, TagValue],
    ctx: RequestContext = require(Action.WRITE, experiment_project),
) -> None:
    experiments.set_experiment_tags(ctx, experiment_id, tags)


# --- runs ---------------------------------------------------------------------------------


@router.post("/experiments/{experiment_id}/runs/bulk", status_code=201)
def create_runs(
    experiment_id: int,
    spec: RunsCreate,
    ctx: RequestContext = require(Action.WRITE, experiment_project),
) -> RunsCreated:
    """Create up to 1,000 whole runs (params, tags, metrics, status) in one request."""
    return RunsCreated(run_ids=bulk.create_runs(ctx, experiment_id, spec))


@router.post("/experiments/{experiment_id}/runs", status_code=201)
def create_run(
    experiment_id: int,
    spec: RunCreate,
    ctx: RequestContext = require(Action.WRITE, experiment_project),
) -> Run:
    return runs.create_run(ctx, experiment_id, spec)


@router.get("/runs/{run_id}")
def get_run(run_id: str, ctx: RequestContext = require(Action.READ, run_project)) -> Run:
    return runs.get_run(ctx.platform, run_id)


@router.patch("/runs/{run_id}")
def update_run(
    run_id: str, spec: RunUpdate, ctx: RequestContext = require(Action.WRITE, run_project)
) -> Run:
    return runs.update_run(ctx, run_id, spec)


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run_id: str, ctx: RequestContext = require(Action.WRITE, run_project)) -> None:
    runs.set_run_lifecycle(ctx, run_id, DELETED)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204)
def delete_run_tag(
    run_id: str, key: str, ctx: RequestContext = require(Action.WRITE, run_project)
) -> None:
    """Remove one tag of the run (404 when it has none such)."""
    runs.delete_run_tag(ctx, run_id, key)


@router.post("/runs/{run_id}/restore", status_code=204)
def restore_run(run_id: str, ctx: RequestContext = require(Action.WRITE, run_project)) -> None:
    runs.set_run_lifecycle(ctx, run_id, ACTIVE)


@router.post("/runs/{run_id}/heartbeat", status_code=204)
def run_heartbeat(run_id: str, ctx: RequestContext = require(Action.WRITE, run_project)) -> None:
    """The process logging into the run is alive (the SDK sends this every
    ``run_heartbeat_interval`` seconds). A running run whose heartbeats stop for the
    server's ``run_heartbeat_timeout`` is marked failed; a heartbeat after that brings
    it back to running."""
    liveness.beat(ctx, run_id)


async def _body(request: Request) -> bytes:
    return await request.body()


def _parse(model: type[M], body: bytes) -> M:
    """``body`` validated as ``model`` straight from JSON bytes, in pydantic's Rust
    parser: three times faster than FastAPI's json.loads then validate on big
    batches. Errors are answered like FastAPI's own (400 invalid_input)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that parses ``model`` itself."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/runs/{run_id}/batch",
    status_code=204,
    response_class=Response,
    openapi_extra=_json_body_doc(RunBatch),
)
def log_batch(
    run_id: str,
    ctx: RequestContext = require(Action.WRITE, run_project),
    body: bytes = Depends(_body),
) -> Response:
    metrics.log_batch(ctx, run_id, _parse(RunBatch, body))
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/metrics/{key:path}/history",
    response_class=FastJSON,
    responses={200: {"model": MetricHistory}},
)
def metric_history(
    run_id: str, key: str, ctx: RequestContext = require(Action.READ, run_project)
) -> FastJSON:
    return FastJSON(metrics.metric_history(ctx.platform, run_id, key))


@router.get(
    "/runs/{run_id}/metrics/{key:path}/series",
    response_class=FastJSON,
    responses={200: {"model": MetricSeries}},
)
def metric_series(
    run_id: str,
    key: str,
    points: int = Query(
        downsample.DEFAULT_POINTS,
        description=f"Point budget; 0 for raw values (up to {downsample.RAW_CAP:,}).",
    ),
    x: str = Query("step", description="step, or time (epoch milliseconds)."),
    start: int | None = Query(None, description="First step of the window (inclusive)."),
    end: int | None = Query(None, description="Last step of the window (inclusive)."),
    ctx: RequestContext = require(Action.READ, run_project),
) -> FastJSON:
    """A metric for a chart: downsampled keeping each bucket's low and high point; a
    step window (``start``, ``end``) gives finer buckets of that range."""
    return FastJSON(downsample.metric_series(ctx.platform, run_id, key, points, x, start, end))


@router.post(
    "/projects/{project}/runs/search",
    response_class=FastJSON,
    responses={200: {"model": RunPage}},
)
def search_runs(
    project: str, spec: RunSearch, ctx: RequestContext = require(Action.READ, project_from_path)
) -> FastJSON:
    return FastJSON(runs.search_runs(ctx.platform, _project(ctx), spec, as_json=True))
