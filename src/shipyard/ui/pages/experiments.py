"""Pages of experiments: a project's experiments, and an experiment's runs table.

The runs table is the search API on a page: its filter box takes the same filter
language, its headers sort with the same ``order_by`` items, and its pages are
the search's own pages. Everything the table shows is in its URL (``cols``,
``order``, ``filter``, ``size``, ``page``), so a view can be bookmarked and shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.errors import InvalidInput
from shipyard.paging import decode_page_token, encode_page_token
from shipyard.projects import service as projects
from shipyard.projects.resolvers import project_from_path
from shipyard.tracking import experiments, keys, runs
from shipyard.tracking.resolvers import experiment_project
from shipyard.tracking.search_parser import Field, Parser, parse_order_by
from shipyard.tracking.types import ACTIVE, RunSearch
from shipyard.ui.page_route import page_router
from shipyard.ui.pages.compare import MAX_RUNS
from shipyard.ui.render import render

router = page_router()

PAGE_SIZES = (50, 100, 200)
DEFAULT_COLUMNS_PER_KIND = 3  # with no ``cols`` in the URL: the first metrics and params
MAX_COLUMNS = 50
_PREFIX = {"metric": "metrics", "param": "params", "tag": "tags"}
# A key written bare in the search language; any other is backticked.
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")

Kind = Literal["metric", "param", "tag"]


@dataclass(frozen=True)
class Column:
    """A chosen column: a metric, param or tag key."""

    kind: Kind
    key: str

    @property
    def spec(self) -> str:
        """The field as the search language writes it (``metrics.acc``, ``tags.`a b```)."""
        key = self.key
        if not key or not set(key) <= _BARE:
            key = "`" + key.replace("`", "``") + "`"
        return f"{_PREFIX[self.kind]}.{key}"


@dataclass(frozen=True)
class Header:
    """A header cell of the runs table: its label and, when sortable, its sort link."""

    label: str
    href: str | None = None
    sort: str | None = None  # "ascending" / "descending" on the column sorted by
    numeric: bool = False
    title: str = ""


def parse_columns(text: str) -> list[Column]:
    """``metrics.acc, params.lr, tags.`team name``` as columns; InvalidInput otherwise."""
    parser = Parser(text, "cols")
    found: list[Column] = []
    while parser.tok.kind != "eof":
        field = parser.field()
        if field.kind == "attribute":
            raise InvalidInput(
                f"cols: {field.label} is always shown; choose metrics.*, params.* or tags.*"
            )
        found.append(Column(field.kind, field.key))
        if parser.tok.kind == "comma":
            parser.advance()
        else:
            parser.end("',' or the end of the column list")
    return found


def chosen_columns(cols: str | None, col: list[str]) -> list[Column] | None:
    """The columns the URL names (``cols=a,b`` and/or one ``col`` per column); None when
    it names none, which is not the same as an empty ``cols=`` (no columns at all)."""
    if cols is None and not col:
        return None
    chosen: list[Column] = []
    for text in ([cols] if cols else []) + col:
        for column in parse_columns(text):
            if column not in chosen:
                chosen.append(column)
    if len(chosen) > MAX_COLUMNS:
        raise InvalidInput(f"cols: at most {MAX_COLUMNS} columns")
    return chosen


def default_columns(known: keys.ExperimentKeys) -> list[Column]:
    """The columns of a table whose URL names none: its first metrics, then params."""
    return [Column("metric", k) for k in known.metrics[:DEFAULT_COLUMNS_PER_KIND]] + [
        Column("param", k) for k in known.params[:DEFAULT_COLUMNS_PER_KIND]
    ]


def keys_on_page(found: list[dict[str, Any]]) -> keys.ExperimentKeys:
    """The keys of the runs of one page: what the table can show without another query
    (listing every key of a 10k-run experiment costs more than the page itself)."""
    return keys.ExperimentKeys(
        params=sorted({k for run in found for k in run["params"]}),
        metrics=sorted({k for run in found for k in run["metrics"]}),
        tags=sorted({k for run in found for k in run["tags"]}),
    )


@dataclass
class TableState:
    """What the URL asks the runs table for."""

    experiment_id: int
    columns: list[Column]
    order: str
    filter: str
    size: int
    page: str

    def url(self, **changes: Any) -> str:
        """This view's URL with ``changes``; a new sort, filter or size starts at page one."""
        state = {
            "cols": ",".join(c.spec for c in self.columns),
            "order": self.order,
            "filter": self.filter,
            "size": self.size,
            "page": self.page,
        }
        if changes.keys() & {"order", "filter", "size", "cols"}:
            state["page"] = ""
        state.update(changes)
        query = {k: v for k, v in state.items() if v != "" and not (k == "size" and v == 50)}
        query["cols"] = state["cols"]  # kept even when empty: "no columns" is a choice
        return f"/experiments/{self.experiment_id}?{urlencode(query)}"

    def columns_url(self) -> str:
        """The page listing every key of the experiment, to come back to this view."""
        query = self.url(page="").split("?", 1)[1]
        return f"/experiments/{self.experiment_id}/columns?{query}"


def _sort_target(order: str) -> tuple[Field | None, bool]:
    """The field and direction of the current ``order`` (None when unsorted or bad)."""
    if not order:
        return None, True
    try:
        term = parse_order_by(order)
    except InvalidInput:
        return None, True
    return term.field, term.descending


def _header(
    state: TableState, label: str, spec: str | None, numeric: bool = False, title: str = ""
) -> Header:
    if spec is None:
        return Header(label, numeric=numeric)
    field = parse_order_by(spec).field
    current, descending = _sort_target(state.order)
    if current is None and not state.order:
        current = parse_order_by("start_time").field  # the search's default order
    same = current is not None and (current.kind, current.key) == (field.kind, field.key)
    if same:
        sort = "descending" if descending else "ascending"
        next_desc = not descending
    else:
        sort = None
        # Numbers and times read best largest/newest first; names from A.
        next_desc = field.kind == "metric" or field.key in ("start_time", "end_time")
    href = state.url(order=f"{spec} {'DESC' if next_desc else 'ASC'}")
    return Header(label, href, sort, numeric, title)


def _headers(state: TableState) -> list[Header]:
    fixed = [
        _header(state, "Run", "name"),
        _header(state, "Status", "status"),
        _header(state, "Start", "start_time"),
        Header("Duration", numeric=True),
        _header(state, "User", "user"),
    ]
    return fixed + [
        _header(state, c.key, c.spec, c.kind == "metric", title=c.spec) for c in state.columns
    ]


def _choices(
    known: keys.ExperimentKeys, chosen: list[Column]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The column chooser's options, (group title, [(spec, key)]): the keys known plus
    the columns chosen (a chosen key may be on no run of this page)."""
    groups: list[tuple[str, Kind, list[str]]] = [
        ("Metrics", "metric", known.metrics),
        ("Params", "param", known.params),
        ("Tags", "tag", known.tags),
    ]
    return [
        (
            title,
            [
                (Column(kind, k).spec, k)
                for k in sorted(set(names) | {c.key for c in chosen if c.kind == kind})
            ],
        )
        for title, kind, names in groups
    ]


def _page_size(size: str | None) -> int:
    if not size:
        return PAGE_SIZES[0]
    if not size.isdigit() or int(size) not in PAGE_SIZES:
        raise InvalidInput(f"size: choose one of {', '.join(map(str, PAGE_SIZES))}")
    return int(size)


def _previous_token(token: str, size: int) -> str | None:
    """The page before ``token``'s. Search tokens hold an offset (shipyard.paging), so
    the previous page is one page size back; None on the first page."""
    offset = decode_page_token(token or None)
    if offset == 0:
        return None
    return encode_page_token(max(0, offset - size)) if offset > size else ""


def _spec(experiment_id: int, state: TableState, deleted: bool) -> RunSearch:
    return RunSearch(
        experiment_ids=[experiment_id],
        filter=state.filter or None,
        order_by=[state.order] if state.order else None,
        max_results=state.size,
        page_token=state.page or None,
        include_deleted=deleted,
    )


def _search(
    ctx: RequestContext, experiment_id: int, state: TableState, deleted: bool
) -> dict[str, Any]:
    assert ctx.project_id is not None
    return runs.search_runs(ctx.platform, ctx.project_id, _spec(experiment_id, state, deleted))


@router.get("/experiments/{experiment_id}")
def runs_table(
    request: Request,
    experiment_id: int,
    cols: str | None = None,
    col: list[str] = Query(default=[]),
    order: str = Query(default="", max_length=2000),
    filter: str = Query(default="", max_length=10_000),
    size: str | None = None,
    page: str = Query(default="", max_length=200),
    ctx: RequestContext = require(Action.READ, experiment_project),
) -> Response:
    experiment = experiments.get_experiment(ctx.platform, experiment_id)
    project = projects.get_project(ctx.platform, experiment.project_id)
    deleted = experiment.lifecycle != ACTIVE  # a deleted experiment's runs are shown as kept
    count = keys.run_counts(ctx.platform, [experiment_id], include_deleted=deleted)
    error = ""
    matching: int | None = None
    state = TableState(experiment_id, [], order.strip(), filter.strip(), PAGE_SIZES[0], page)
    found: dict[str, Any] = {"runs": [], "next_page_token": None}
    previous: str | None = None
    chosen: list[Column] | None = None
    try:
        chosen = chosen_columns(cols, col)
        state.size = _page_size(size)
        if col and chosen is not None:
            # The column chooser's form sends one ``col`` per box: answer with the
            # canonical ``cols=a,b`` URL, so the view reads (and bookmarks) as one list.
            state.columns = chosen
            return RedirectResponse(state.url(), status_code=303)
        previous = _previous_token(state.page, state.size)
        found = _search(ctx, experiment_id, state, deleted)
        if state.filter and ctx.project_id is not None:
            spec = _spec(experiment_id, state, deleted)
            matching = runs.count_matching(ctx.platform, ctx.project_id, spec)
    except InvalidInput as exc:
        # A bad filter, sort or URL is the user's to fix: show it by the filter box.
        error = exc.message
    if error and chosen is None:  # the columns come from the unfiltered first page
        plain = TableState(experiment_id, [], "", "", PAGE_SIZES[0], "")
        known = keys_on_page(_search(ctx, experiment_id, plain, deleted)["runs"])
    else:
        known = keys_on_page(found["runs"])
    state.columns = chosen if chosen is not None else default_columns(known)
    first = decode_page_token(state.page or None) if not error else 0
    return render(
        request,
        ctx,
        "experiments/runs_table.html",
        status=400 if error else 200,
        max_compare=MAX_RUNS,
        project=project.name,
        nav="experiments",
        experiment=experiment,
        total=count[experiment_id].runs if experiment_id in count else 0,
        matching=matching,
        state=state,
        chosen={c.spec for c in state.columns},
        choices=_choices(known, state.columns),
        complete=False,
        truncated=False,
        headers=_headers(state) if not error else [],
        runs=found["runs"],
        first_row=first + 1,
        next_url=state.url(page=found["next_page_token"]) if found["next_page_token"] else None,
        prev_url=state.url(page=previous) if previous is not None else None,
        first_url=state.url(page="") if previous else None,
        page_sizes=PAGE_SIZES,
        error=error,
    )


@router.get("/experiments/{experiment_id}/columns")
def column_chooser(
    request: Request,
    experiment_id: int,
    cols: str | None = None,
    order: str = Query(default="", max_length=2000),
    filter: str = Query(default="", max_length=10_000),
    size: str | None = None,
    ctx: RequestContext = require(Action.READ, experiment_project),
) -> HTMLResponse:
    """Every key of the experiment to choose columns from (the runs table lists only
    those of its page; its script loads this when the chooser is opened)."""
    experiment = experiments.get_experiment(ctx.platform, experiment_id)
    project = projects.get_project(ctx.platform, experiment.project_id)
    deleted = experiment.lifecycle != ACTIVE
    known = keys.experiment_keys(ctx.platform, experiment_id, include_deleted=deleted)
    chosen = chosen_columns(cols, [])
    columns = chosen if chosen is not None else default_columns(known)
    state = TableState(experiment_id, columns, order.strip(), filter.strip(), _page_size(size), "")
    return render(
        request,
        ctx,
        "experiments/columns.html",
        project=project.name,
        nav="experiments",
        experiment=experiment,
        state=state,
        chosen={c.spec for c in columns},
        choices=_choices(known, columns),
        complete=True,
        truncated=known.truncated,
    )


@router.get("/projects/{project}")
def experiments_list(
    request: Request,
    project: str,
    deleted: bool = False,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> HTMLResponse:
    assert ctx.project_id is not None
    name = projects.get_project(ctx.platform, ctx.project_id).name
    listed = experiments.list_experiments(ctx.platform, ctx.project_id, include_deleted=deleted)
    counts = keys.run_counts(ctx.platform, [e.id for e in listed], include_deleted=False)
    return render(
        request,
        ctx,
        "experiments/list.html",
        project=name,
        nav="experiments",
        experiments=listed,
        counts=counts,
        show_deleted=deleted,
    )
