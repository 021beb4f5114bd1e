"""Pages of the model registry: models, a model's versions and aliases, one version and
its lineage (the dataset versions its run read -> the run -> the versions it made).

Reading goes to the registry services the API routes call; moving an alias is done by
the page's script through the JSON API (``static/models.js``), so it passes the same
authorization check and is audited by the same service.
"""

from __future__ import annotations

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from shipyard.auth.authz import RequestContext, authorize, require
from shipyard.auth.principal import Action
from shipyard.datasets.inputs import dataset_inputs
from shipyard.datasets.types import DatasetInput
from shipyard.errors import NotFound, PermissionDenied
from shipyard.projects import service as projects
from shipyard.projects.resolvers import project_from_path
from shipyard.registry import models, versions
from shipyard.registry.types import Condition, ModelVersion
from shipyard.tracking.resolvers import project_of_run
from shipyard.tracking.runs import get_run
from shipyard.tracking.types import Run
from shipyard.ui.lineage_graph import GraphEdge, GraphNode, Layout, layout
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render, url_part

router = page_router()

PAGE_SIZE = 50
VERSIONS_PAGE_SIZE = 100  # of a model page: the newest first, older ones a link away
# A version page summarizes its run; the run page has the rest.
SUMMARY_LIMIT = 25
# Versions drawn beside the current one in the lineage graph (a sweep can register many).
GRAPH_VERSIONS = 12


def _project_id(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


def _project_name(ctx: RequestContext) -> str:
    """The project's name (the path may have given its id)."""
    return projects.get_project(ctx.platform, _project_id(ctx)).name


def can_write(ctx: RequestContext) -> bool:
    """Whether the caller may change the project's models: the page shows its controls
    only then (the API checks again on every change, whatever the page shows)."""
    try:
        authorize(ctx.platform, ctx.principal, Action.WRITE, ctx.project_id)
    except PermissionDenied:
        return False
    return True


@router.get("/projects/{project}/models")
def models_page(
    request: Request,
    project: str,
    q: str = Query("", description="Part of the name (any case)."),
    page: str | None = Query(None, description="The page token of a further page."),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    """The project's registered models, by name, searchable."""
    found = models.search_models(
        ctx.platform,
        _project_id(ctx),
        query=q or None,
        order_by=["name"],
        max_results=PAGE_SIZE,
        page_token=page,
    )
    return render(
        request,
        ctx,
        "models/list.html",
        project=_project_name(ctx),
        nav="models",
        models=found.models,
        next_page=found.next_page_token,
        first_page=page is not None,
        q=q,
    )


@router.get("/projects/{project}/models/{name}")
def model_page(
    request: Request,
    project: str,
    name: str,
    page: str | None = Query(None, description="The page token of older versions."),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    """One model: description, tags, aliases and its versions, newest first, a page at
    a time."""
    pid = _project_id(ctx)
    model = models.get_model(ctx.platform, pid, name)
    listed = versions.list_versions(
        ctx.platform, pid, name, max_results=VERSIONS_PAGE_SIZE, page_token=page
    )
    found = listed.versions
    project_name = _project_name(ctx)
    return render(
        request,
        ctx,
        "models/model.html",
        project=project_name,
        nav="models",
        model=model,
        versions=found,
        next_page=listed.next_page_token,
        first_page=page is not None,
        can_write=can_write(ctx),
        data={
            "project": project_name,
            "model": model.name,
            "aliases": model.aliases,
            "versions": [v.version for v in found],
        },
    )


@router.get("/projects/{project}/models/{name}/versions/{version}")
def version_page(
    request: Request,
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    """One version (by number, alias or ``latest``): files, run, data read, lineage."""
    pid = _project_id(ctx)
    mv = versions.get_version(ctx.platform, pid, name, version)
    project_name = _project_name(ctx)
    run = _run_of(ctx, mv)
    inputs: list[DatasetInput] = []
    graph: Layout | None = None
    if run is not None:
        inputs = dataset_inputs(ctx.platform, run.id)
        made = versions.search_versions(
            ctx.platform,
            pid,
            conditions=[Condition("run_id", "=", run.id)],
            max_results=GRAPH_VERSIONS,
        ).versions
        graph = lineage(project_name, mv, run, inputs, made)
    return render(
        request,
        ctx,
        "models/version.html",
        project=project_name,
        nav="models",
        mv=mv,
        run=run,
        inputs=inputs,
        graph=graph,
        params=list(run.params.items())[:SUMMARY_LIMIT] if run else [],
        metrics=list(run.metrics.items())[:SUMMARY_LIMIT] if run else [],
        summary_limit=SUMMARY_LIMIT,
    )


def _run_of(ctx: RequestContext, mv: ModelVersion) -> Run | None:
    """The run the version was made from, when it still exists in this project."""
    if mv.run_id is None:
        return None
    try:
        # Registration only takes runs of the model's project; checked again so that a
        # page can never show another project's run.
        if project_of_run(ctx.platform, mv.run_id) != ctx.project_id:
            return None
        return get_run(ctx.platform, mv.run_id)
    except NotFound:
        return None


def model_href(project: str, name: str, version: int | None = None) -> str:
    """The page of a model, or of one of its versions."""
    href = f"/projects/{url_part(project)}/models/{url_part(name)}"
    return href if version is None else f"{href}/versions/{version}"


def lineage(
    project: str,
    current: ModelVersion,
    run: Run,
    inputs: list[DatasetInput],
    made: list[ModelVersion],
) -> Layout:
    """The graph: each dataset version the run read -> the run -> each version it made
    (the current one always among them)."""
    run_node = GraphNode(
        id="run", label=run.name or run.id, kind="run", href=f"/runs/{url_part(run.id)}"
    )
    nodes: list[GraphNode] = [run_node]
    edges: list[GraphEdge] = []
    for i in inputs:
        node_id = f"dataset:{i.dataset}@{i.version}"
        if any(n.id == node_id for n in nodes):  # read in two contexts: one node
            continue
        href = (
            f"/projects/{url_part(i.project)}/datasets/{url_part(i.dataset)}/versions/{i.version}"
        )
        nodes.append(
            GraphNode(id=node_id, label=f"{i.dataset} v{i.version}", kind="dataset", href=href)
        )
        edges.append(GraphEdge(node_id, "run"))
    outputs = [current] + [
        v for v in made if (v.model_name, v.version) != (current.model_name, current.version)
    ]
    for v in outputs:
        node_id = f"model:{v.model_name}/{v.version}"
        nodes.append(
            GraphNode(
                id=node_id,
                label=f"{v.model_name} v{v.version}",
                kind="model",
                href=model_href(project, v.model_name, v.version),
                current=v is current,
            )
        )
        edges.append(GraphEdge("run", node_id))
    return layout(nodes, edges)
