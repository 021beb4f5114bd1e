"""The run page: overview, metric and system charts, inputs and outputs, artifacts.

``/runs/{run_id}?tab=...`` shows one tab at a time (each tab reads only what it
shows); ``/runs/{run_id}/artifacts?path=...`` browses the run's files and
previews one. Charts draw in the browser (runs.js, charts.js) from the metric
series API, which downsamples on the server.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.clock import now_ms
from shipyard.datasets.inputs import dataset_inputs
from shipyard.errors import InvalidInput, NotFound
from shipyard.projects import service as projects
from shipyard.registry.types import Condition
from shipyard.registry.versions import search_versions
from shipyard.tracking import artifacts, experiments, runs
from shipyard.tracking.liveness import LOST_TAG
from shipyard.tracking.paths import normalize_artifact_prefix
from shipyard.tracking.resolvers import run_project
from shipyard.tracking.types import Run, RunSearch
from shipyard.ui.artifact_preview import IMAGES, preview, suffix
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render

router = page_router()

TABS = ("overview", "metrics", "system", "artifacts", "inputs")
SYSTEM_PREFIX = "system/"
MAX_CHILDREN = 100
MAX_OUTPUTS = 200


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    run_id: str,
    tab: str = Query("overview"),
    ctx: RequestContext = require(Action.READ, run_project),
) -> HTMLResponse:
    """One run, on the tab ``tab``."""
    if tab not in TABS:
        raise InvalidInput(f"tab must be one of {', '.join(TABS)}; got {tab[:40]!r}")
    if tab == "artifacts":
        return _artifacts_page(request, ctx, run_id, "")
    head = _heading(ctx, run_id)
    data: dict[str, Any] = {}
    if tab == "overview":
        data = _overview(ctx, head["run"])
    elif tab == "inputs":
        data = _inputs_outputs(ctx, run_id)
    return render(request, ctx, f"runs/{tab}.html", tab=tab, **head, **data)


@router.get("/runs/{run_id}/artifacts")
def artifacts_page(
    request: Request,
    run_id: str,
    path: str = Query("", description="A folder to list or a file to preview."),
    ctx: RequestContext = require(Action.READ, run_project),
) -> HTMLResponse:
    """The run's files: a folder listing, or the preview of one file."""
    return _artifacts_page(request, ctx, run_id, path)


def _heading(ctx: RequestContext, run_id: str) -> dict[str, Any]:
    """What every tab shows above itself: the run, its experiment and project, its keys."""
    run = runs.get_run(ctx.platform, run_id)
    experiment = experiments.get_experiment(ctx.platform, run.experiment_id)
    assert ctx.project_id is not None
    project = projects.get_project(ctx.platform, ctx.project_id).name
    keys = sorted(run.metrics)
    return {
        "run": run,
        "experiment": experiment,
        "project": project,
        "nav": "experiments",
        "metric_keys": [k for k in keys if not k.startswith(SYSTEM_PREFIX)],
        "system_keys": [k for k in keys if k.startswith(SYSTEM_PREFIX)],
        "duration": _duration(run),
    }


def _duration(run: Run) -> int | None:
    """How long the run took, or has been running; None for a run that ended unknown."""
    if run.end_time is not None:
        return max(0, run.end_time - run.start_time)
    if run.status == "running":
        return max(0, now_ms() - run.start_time)
    return None


def _overview(ctx: RequestContext, run: Run) -> dict[str, Any]:
    parent: Run | None = None
    if run.parent_run_id:
        try:
            parent = runs.get_run(ctx.platform, run.parent_run_id)
        except NotFound:  # purged since: the id is still shown
            parent = None
    assert ctx.project_id is not None
    found = runs.search_runs(
        ctx.platform,
        ctx.project_id,
        RunSearch(filter=f"attributes.parent_run_id = {_quoted(run.id)}", max_results=MAX_CHILDREN),
    )
    env = run.environment or {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    return {
        "parent": parent,
        "children": found["runs"],
        "more_children": found["next_page_token"] is not None,
        "code": run.code_version or {},
        "env": {k: v for k, v in env.items() if k != "packages"},
        "packages": sorted((packages or {}).items()),
        "lost_tag": LOST_TAG,
    }


def _quoted(value: str) -> str:
    """A string literal of the search language (a quote inside is written twice)."""
    return "'" + value.replace("'", "''") + "'"


def _inputs_outputs(ctx: RequestContext, run_id: str) -> dict[str, Any]:
    assert ctx.project_id is not None
    page = search_versions(
        ctx.platform,
        ctx.project_id,
        conditions=[Condition("run_id", "=", run_id)],
        max_results=MAX_OUTPUTS,
    )
    return {
        "inputs": dataset_inputs(ctx.platform, run_id),
        "outputs": page.versions,
        "more_outputs": page.next_page_token is not None,
    }


def _artifacts_page(request: Request, ctx: RequestContext, run_id: str, path: str) -> HTMLResponse:
    # The one check of the user's path (no '..', not absolute, no control characters);
    # it only ever becomes a key in the metadata store, never a filesystem path.
    path = normalize_artifact_prefix(path)
    head = _heading(ctx, run_id)
    entries = artifacts.list_artifacts(ctx.platform, run_id, path)  # NotFound: 404 page
    file = entries[0] if len(entries) == 1 and entries[0].path == path and path else None
    data: dict[str, Any] = {"path": path, "trail": _trail(path), "file": None, "entries": []}
    if file is not None and not file.is_dir:
        assert file.hash is not None and file.size is not None
        data["file"] = file
        data["preview"] = preview(ctx.platform.blobs, file.path, file.hash, file.size)
    else:
        data["entries"] = [
            {
                "name": e.path.rsplit("/", 1)[-1],
                "path": e.path,
                "is_dir": e.is_dir,
                "size": e.size,
                "image": suffix(e.path) in IMAGES,
            }
            for e in entries
        ]
    return render(request, ctx, "runs/artifacts.html", tab="artifacts", **head, **data)


def _trail(path: str) -> list[tuple[str, str]]:
    """(name, path) of each folder from the root down to ``path``."""
    parts = path.split("/") if path else []
    return [(name, "/".join(parts[: i + 1])) for i, name in enumerate(parts)]
