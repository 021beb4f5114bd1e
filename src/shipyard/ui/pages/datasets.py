"""Pages of datasets: the list, one dataset and its versions, one version's manifest,
profile, validation report and lineage, and the diff of two versions.

Every page reads through the same service functions as the datasets API
(``shipyard.datasets.routes``), under the same READ check on the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.datasets import analysis, service, versions
from shipyard.datasets.types import (
    LATEST,
    ColumnProfile,
    Expectation,
    VersionDiff,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.projects.resolvers import project_from_path
from shipyard.projects.service import get_project
from shipyard.ui.page_route import page_router
from shipyard.ui.render import format_number, render
from shipyard.ui.svg_charts import HistogramChart, edge_label, histogram_chart

router = page_router()

DATASETS = "/projects/{project}/datasets"
DATASET = DATASETS + "/{name}"
VERSION = DATASET + "/versions/{version}"
PAGE_SIZE = 50
VERSIONS_PAGE = 50
DIFF_SAMPLES = 10
DIFF_CHOICES = 200  # versions offered in the diff form's pickers
PROFILE_COLUMNS = 100  # column cards per page (about 3 KiB each); a filter finds the rest


def _pid(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


def _project_name(ctx: RequestContext, project: str) -> str:
    """The project's name even when the URL named it by id (links use the name)."""
    return get_project(ctx.platform, _pid(ctx)).name if project.isdigit() else project


# --- values shown in cells -------------------------------------------------------------


def cell(value: Any) -> str:
    """A sampled value for a table cell: numbers short, structures as JSON, null named."""
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def sample_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Rows (dicts) as a header and cells, columns in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    names = list(columns)
    return names, [[row.get(c) for c in names] for row in rows]


def expectation_text(expectation: Expectation) -> str:
    """What an expectation checks, for people: its settings without kind and name."""
    settings = expectation.model_dump(exclude={"kind", "name"}, exclude_defaults=True)
    return ", ".join(f"{k}={cell(v)}" for k, v in settings.items())


# --- the list -------------------------------------------------------------------------


@router.get(DATASETS)
def datasets_page(
    request: Request,
    project: str,
    q: str = Query("", max_length=200, description="Substring of the name."),
    page: str | None = Query(None, max_length=100),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    listing = service.list_datasets(
        ctx.platform, _pid(ctx), query=q or None, max_results=PAGE_SIZE, page_token=page
    )
    return render(
        request,
        ctx,
        "datasets/list.html",
        project=_project_name(ctx, project),
        nav="datasets",
        datasets=listing.datasets,
        latest=versions.latest_versions(
            ctx.platform, _pid(ctx), [d.name for d in listing.datasets]
        ),
        next_page=listing.next_page_token,
        q=q,
        LATEST=LATEST,
    )


# --- one dataset ------------------------------------------------------------------------


@router.get(DATASET)
def dataset_page(
    request: Request,
    project: str,
    name: str,
    page: str | None = Query(None, max_length=100),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    dataset = service.get_dataset(ctx.platform, _pid(ctx), name)
    listed = versions.list_versions(
        ctx.platform, _pid(ctx), name, max_results=VERSIONS_PAGE, page_token=page
    )
    data = [v.version for v in listed.versions if v.kind == "data"]
    return render(
        request,
        ctx,
        "datasets/dataset.html",
        project=_project_name(ctx, project),
        nav="datasets",
        dataset=dataset,
        versions=listed.versions,
        next_page=listed.next_page_token,
        # The form starts on the two newest data versions: "what did the last ingest change".
        diff_a=data[1] if len(data) > 1 else (data[0] if data else None),
        diff_b=data[0] if data else None,
        expectation_text=expectation_text,
        LATEST=LATEST,
    )


# --- one version ------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnView:
    """A column's profile with what the page draws from it."""

    profile: ColumnProfile
    chart: HistogramChart | None
    quantiles: list[tuple[str, str]]  # ("25%", "3.5")
    numeric: bool  # mean and std apply

    @property
    def top_max(self) -> int:
        return max((f.count for f in self.profile.top_values), default=0)


def column_view(column: ColumnProfile) -> ColumnView:
    """What the version page shows of one column."""
    label = edge_label(column.type)
    chart = None
    if column.histogram is not None:
        chart = histogram_chart(column.histogram.edges, column.histogram.counts, label=label)
    quantiles = []
    for q, value in sorted((column.quantiles or {}).items(), key=lambda kv: float(kv[0])):
        quantiles.append((f"{float(q) * 100:g}%", label(value)))
    return ColumnView(column, chart, quantiles, numeric=column.kind in ("integer", "float"))


@router.get(VERSION)
def version_page(
    request: Request,
    project: str,
    name: str,
    version: str,
    col: str = Query("", max_length=200, description="Profile only columns whose name has this."),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    detail = versions.get_version(ctx.platform, _pid(ctx), name, version)
    lineage = versions.lineage(ctx.platform, _pid(ctx), name, detail.version)
    profiled = detail.profile.columns if detail.profile else []
    wanted = col.strip().casefold()
    matching = [c for c in profiled if wanted in c.name.casefold()]
    return render(
        request,
        ctx,
        "datasets/version.html",
        project=_project_name(ctx, project),
        nav="datasets",
        name=name,
        v=detail,
        profiled=len(profiled),
        matching=len(matching),
        columns=[column_view(c) for c in matching[:PROFILE_COLUMNS]],
        col=col,
        lineage=lineage,
        quarantine=[c for c in lineage.children if c.relation == "quarantine"],
        quarantine_of=[p for p in lineage.parents if p.relation == "quarantine" and not p.deleted],
        sample_table=sample_table,
        cell=cell,
    )


# --- the diff of two versions ------------------------------------------------------------


def _keys(raw: list[str]) -> list[str]:
    """Key columns from ``key=a&key=b`` or the form's ``key=a, b``."""
    return [k.strip() for item in raw for k in item.split(",") if k.strip()]


def _changes(diff: VersionDiff) -> list[dict[str, Any]]:
    """Per-column profile changes as rows of (figure, old, new) the template lists."""
    rows = []
    for c in diff.column_changes:
        figures = [
            (label, getattr(c, field))
            for label, field in (
                ("nulls", "null_fraction"),
                ("distinct", "distinct"),
                ("mean", "mean"),
                ("std", "std"),
                ("min", "min"),
                ("max", "max"),
            )
            if getattr(c, field) is not None
        ]
        rows.append({"column": c.column, "psi": c.psi, "figures": figures})
    return rows


@router.get(DATASET + "/diff")
def diff_page(
    request: Request,
    project: str,
    name: str,
    a: str = Query("", max_length=110, description="Old version: number or tag."),
    b: str = Query("", max_length=110, description="New version: number or tag."),
    key: list[str] = Query([], description="Key column(s), repeated or comma-separated."),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    dataset = service.get_dataset(ctx.platform, _pid(ctx), name)
    choices = versions.list_versions(ctx.platform, _pid(ctx), name, max_results=DIFF_CHOICES)
    keys = _keys(key)
    diff: VersionDiff | None = None
    error = ""
    status = 200
    if a and b:
        try:
            diff = analysis.diff(
                ctx.platform, _pid(ctx), name, a, b, keys=keys, samples=DIFF_SAMPLES
            )
        except (InvalidInput, NotFound) as err:
            # Shown above the form, so the choice can be corrected where it was made.
            error, status = err.message, err.status
    elif a or b:
        error, status = "Choose both versions to compare.", 400
    return render(
        request,
        ctx,
        "datasets/diff.html",
        status=status,
        project=_project_name(ctx, project),
        nav="datasets",
        dataset=dataset,
        choices=choices.versions,
        a=a,
        b=b,
        keys=keys,
        diff=diff,
        changes=_changes(diff) if diff else [],
        error=error,
        sample_table=sample_table,
        cell=cell,
    )
