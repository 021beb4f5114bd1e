"""The compare page: runs of one project side by side.

Metric curves overlaid (one chart per metric any of the runs logged, a curve for
each run that logged it), a table of params and latest metrics with the rows that
differ marked, and a parallel coordinates view of params against a metric at
least two runs logged (a scatter when there are too few numeric axes). The page
script draws the charts from the page data.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from shipyard.auth.authz import RequestContext, authorize, require
from shipyard.auth.principal import Action
from shipyard.errors import InvalidInput, NotFound
from shipyard.projects import service as projects
from shipyard.projects.resolvers import project_from_path
from shipyard.tracking import experiments, runs
from shipyard.tracking.resolvers import project_of_run
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render

router = page_router()

MAX_RUNS = 50
MAX_ID_LENGTH = 64
SYSTEM_PREFIX = "system/"


@dataclass(frozen=True)
class Row:
    """One row of the comparison table: a key and its value in each run (None: not logged)."""

    kind: str  # "param" or "metric"
    key: str
    values: list[Any]

    @property
    def differs(self) -> bool:
        """Whether the runs disagree (a run without the key disagrees with one with it)."""
        return len({_same(v) for v in self.values}) > 1


def _same(value: Any) -> Any:
    # NaN != NaN: compare NaNs as equal to each other, as people read them.
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _unique(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in ids:
        run_id = raw.strip()
        if run_id:
            seen.setdefault(run_id, None)
    return list(seen)


def _check_runs(ctx: RequestContext, project_name: str, ids: list[str]) -> None:
    """NotFound for an unknown run or one of another project the caller may read;
    PermissionDenied for a run of a project the caller may not read."""
    for run_id in ids:
        if len(run_id) > MAX_ID_LENGTH:
            raise NotFound(f"run {run_id[:MAX_ID_LENGTH]!r}... not found")
        owner = project_of_run(ctx.platform, run_id)
        if owner == ctx.project_id:
            continue
        # The same check the run's own pages make: no right to read it, no more said.
        authorize(ctx.platform, ctx.principal, Action.READ, owner)
        other = projects.get_project(ctx.platform, owner).name
        raise NotFound(
            f"run {run_id!r} is not in project {project_name!r} (it belongs to {other!r}): "
            "compare runs of one project"
        )


def comparison_rows(loaded: list[dict[str, Any]], kind: str) -> list[Row]:
    """The rows of one kind ("param" or "metric") over ``loaded`` runs, keys sorted."""
    field = "params" if kind == "param" else "metrics"
    keys = sorted({k for run in loaded for k in run[field]})
    return [Row(kind, k, [run[field].get(k) for run in loaded]) for k in keys]


def _page_data(loaded: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "id": r["id"],
                "name": r["name"],
                "params": r["params"],
                # JSON has no NaN: a NaN latest value travels as null (not plotted).
                "metrics": {
                    k: (None if v is None or not math.isfinite(v) else v)
                    for k, v in r["metrics"].items()
                },
            }
            for r in loaded
        ]
    }


@router.get("/projects/{project}/compare")
def compare(
    request: Request,
    project: str,
    run: list[str] = Query(default=[]),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    assert ctx.project_id is not None
    name = projects.get_project(ctx.platform, ctx.project_id).name
    ids = _unique(run)
    if len(ids) < 2:
        raise InvalidInput("pick at least two runs to compare (?run=<id>&run=<id>)")
    if len(ids) > MAX_RUNS:
        raise InvalidInput(f"compare at most {MAX_RUNS} runs at a time, not {len(ids)}")
    _check_runs(ctx, name, ids)
    with ctx.platform.db.read() as session:
        loaded = runs.run_dicts(session, ids)
    # How many of the runs logged each metric; the runs' own metrics first, then
    # system metrics (cpu, memory...), each by name.
    logged_by = Counter(k for r in loaded for k in r["metrics"])
    charted = sorted(logged_by, key=lambda k: (k.startswith(SYSTEM_PREFIX), k))
    return render(
        request,
        ctx,
        "compare/compare.html",
        project=name,
        nav="experiments",
        runs=loaded,
        experiments=[
            experiments.get_experiment(ctx.platform, i)
            for i in sorted({r["experiment_id"] for r in loaded})
        ],
        params=comparison_rows(loaded, "param"),
        metrics=comparison_rows(loaded, "metric"),
        charted=[(key, logged_by[key]) for key in charted],
        shared_metrics=[key for key in charted if logged_by[key] >= 2],
        data=_page_data(loaded),
    )
