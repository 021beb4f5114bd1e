"""``shipyard experiments`` and ``shipyard runs``: read tracking data from the shell."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli.common import JsonOption, ProjectOption, command, get_client
from shipyard.cli.output import console, print_json, print_record, print_table
from shipyard.clock import now_ms

if TYPE_CHECKING:
    from shipyard.client import Client
    from shipyard.tracking.types import Experiment, Run

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Runs: params, metrics and tags of training runs.", no_args_is_help=True
)

MAX_KEY_COLUMNS = 3  # most params (and metrics) shown as columns in `runs list`
BASE_WIDTH = 100  # what id, name, status, start_time and duration take
KEY_COLUMN_WIDTH = 14


def format_duration(run: Run) -> str:
    """How long a run took (or has been running), like '1h 02m', '3m 07s', '850ms'."""
    end = run.end_time if run.end_time is not None else now_ms()
    ms = max(0, end - run.start_time)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{ms / 1000:.1f}s"


@experiments_app.command("list")
@command
def experiments_list(
    include_deleted: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Experiments of a project."""
    rows = get_client(project).experiments.list(include_deleted=include_deleted)
    columns = ["id", "name", "description", "created_at"]
    if include_deleted:
        columns.insert(2, "lifecycle")
    print_table(rows, columns, title="Experiments", as_json=as_json)


@experiments_app.command("show")
@command
def experiments_show(
    name_or_id: str = typer.Argument(..., help="Experiment name, or its numeric id."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """One experiment and its tags."""
    client = get_client(project)
    experiment = _experiment(client, name_or_id)
    print_record(experiment, as_json=as_json, title=f"Experiment {experiment.name}")


def _experiment(client: Client, name_or_id: str) -> Experiment:
    """The experiment a command-line value names: by its name, or else, when the value
    is a number, by its id (an experiment may be called "2024")."""
    from shipyard.errors import NotFound
    from shipyard.int64 import numeric_id

    try:
        return client.experiments.get_by_name(name_or_id)
    except NotFound:
        number = numeric_id(name_or_id, "experiment id")
        if number is None:
            raise
        return client.experiments.get(number)


def _common_keys(dicts: list[dict[str, Any]], limit: int) -> list[str]:
    counts = Counter(key for d in dicts for key in d)
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _search_all(
    project: str | None,
    experiment: list[str] | None,
    filter: str | None,
    order_by: list[str] | None,
    limit: int,
    include_deleted: bool,
) -> list[Run]:
    from shipyard.tracking.types import MAX_SEARCH_RESULTS

    client = get_client(project)
    experiment_ids = [_experiment(client, e).id for e in experiment] if experiment else None
    out: list[Run] = []
    token: str | None = None
    while len(out) < limit:
        page = client.runs.search(
            experiment_ids,
            filter=filter,
            order_by=order_by,
            max_results=min(limit - len(out), MAX_SEARCH_RESULTS),
            page_token=token,
            include_deleted=include_deleted,
        )
        out.extend(page.runs)
        token = page.next_page_token
        if token is None:
            break
    return out


@runs_app.command("list")
@command
def runs_list(
    experiment: list[str] | None = typer.Option(
        None, "--experiment", "-e", help="Experiment name or id (repeatable; default: all)."
    ),
    filter: str | None = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.lr = '0.01'\""
    ),
    order_by: list[str] | None = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)."
    ),
    max_results: int = typer.Option(50, "--max", "-n", min=1, help="Most runs to show."),
    include_deleted: bool = typer.Option(False, "--all", help="Include deleted runs."),
    project: str | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Runs matching a filter, newest first unless ordered otherwise."""
    found = _search_all(project, experiment, filter, order_by, max_results, include_deleted)
    if as_json:
        print_json(found)
        return
    # As many param/metric columns as the terminal has room for, metrics first.
    room = max(0, (console.width - BASE_WIDTH) // KEY_COLUMN_WIDTH)
    metric_keys = _common_keys([r.metrics for r in found], min(MAX_KEY_COLUMNS, room))
    room -= len(metric_keys)
    param_keys = _common_keys([r.params for r in found], min(MAX_KEY_COLUMNS, room))
    rows = []
    for run in found:
        row: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "start_time": run.start_time,
            "duration": format_duration(run),
        }
        for key in param_keys:
            row[f"params.{key}"] = run.params.get(key)
        for key in metric_keys:
            row[f"metrics.{key}"] = run.metrics.get(key)
        rows.append(row)
    columns = ["id", "name", "status", "start_time", "duration"]
    columns += [f"params.{k}" for k in param_keys] + [f"metrics.{k}" for k in metric_keys]
    print_table(rows, columns, title="Runs")


@runs_app.command("show")
@command
def runs_show(
    run_id: str = typer.Argument(..., help="Run id."),
    as_json: bool = JsonOption,
) -> None:
    """One run: overview, params, latest metrics and tags."""
    run = get_client().runs.get(run_id)
    if as_json:
        print_json(run)
        return
    overview = run.model_dump(exclude={"params", "metrics", "tags"})
    overview["duration"] = format_duration(run)
    print_record(overview, title=f"Run {run.name}")
    for title, values in (("Params", run.params), ("Metrics", run.metrics), ("Tags", run.tags)):
        print_table(
            [{"key": k, "value": v} for k, v in values.items()], ["key", "value"], title=title
        )


@runs_app.command("end")
@command
def runs_end(
    run_id: str = typer.Argument(..., help="Run id."),
    status: str = typer.Option("killed", help="finished, failed or killed."),
    end_time: int | None = typer.Option(
        None, "--end-time", help="When it ended, epoch milliseconds (default: now)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """End a run by hand: one whose process died without ending it before the server
    marks it failed (its heartbeats stopped), one that never sent heartbeats (the mlflow
    client's), or any run whose status you want to set."""
    run = get_client().runs.update(
        run_id, status=status, end_time=end_time if end_time is not None else now_ms()
    )
    if as_json:
        print_json(run)
        return
    console.print(f"run {run.id} is {run.status}")


@runs_app.command("delete")
@command
def runs_delete(run_ids: list[str] = typer.Argument(..., help="Run ids.")) -> None:
    """Delete runs (they stay restorable; searches leave them out)."""
    runs = get_client().runs
    for run_id in run_ids:
        runs.delete(run_id)
        console.print(f"deleted run {run_id}")


@runs_app.command("restore")
@command
def runs_restore(run_ids: list[str] = typer.Argument(..., help="Run ids.")) -> None:
    """Restore deleted runs."""
    runs = get_client().runs
    for run_id in run_ids:
        runs.restore(run_id)
        console.print(f"restored run {run_id}")


@experiments_app.command("delete")
@command
def experiments_delete(
    name_or_id: str = typer.Argument(..., help="Experiment name, or its numeric id."),
    project: str | None = ProjectOption,
) -> None:
    """Delete an experiment (restorable with its id)."""
    client = get_client(project)
    client.experiments.delete(_experiment(client, name_or_id).id)
    console.print(f"deleted experiment {name_or_id}")


@experiments_app.command("restore")
@command
def experiments_restore(
    experiment_id: int = typer.Argument(
        ..., help="The experiment's id (deleted ones have none by name)."
    ),
    project: str | None = ProjectOption,
) -> None:
    """Restore a deleted experiment."""
    get_client(project).experiments.restore(experiment_id)
    console.print(f"restored experiment {experiment_id}")
