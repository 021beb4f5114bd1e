"""``shipyard import mlflow``: the command over :mod:`shipyard.mlflow_compat.importer`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from shipyard.cli.common import JsonOption, ProjectOption, command
from shipyard.cli.output import console, err_console, print_error, print_json

if TYPE_CHECKING:
    from shipyard.mlflow_compat.importer import ImportSummary

import_app = typer.Typer(help="Bring history in from other tools.", no_args_is_help=True)


@import_app.callback()
def import_group() -> None:
    """Bring history in from other tools."""
    # A callback keeps `import` a group: with one command typer would collapse it.


def print_summary(summary: ImportSummary, out: Console) -> None:
    """The summary as a table: one row per kind, the reasons next to the counts."""
    table = Table(title=f"MLflow import from {summary.source} into project {summary.project}")
    counts = ("copied", "updated", "deleted", "skipped", "failed")
    for column in ("kind", *counts, "reasons"):
        numeric = column in counts
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for kind, tally in summary.kinds.items():
        reasons = [f"skipped: {r} ({n})" for r, n in tally.skipped.most_common(8)]
        reasons += [
            f"failed: {r}" + (f" ({n})" if n > 1 else "") for r, n in tally.failed.most_common(8)
        ]
        table.add_row(
            kind,
            str(tally.copied),
            str(tally.updated),
            str(tally.deleted),
            str(tally.skipped.total()),
            str(tally.failed.total()),
            "\n".join(reasons),
        )
    out.print(table)
    for note in summary.notes:
        out.print(f"note: {note}")


@import_app.command("mlflow")
@command
def import_mlflow_command(
    source: str = typer.Option(
        ...,
        "--from",
        help="MLflow tracking URI: a server (http://host:5000) or its database "
        "(sqlite:///mlflow.db, postgresql://user@host/db).",
    ),
    artifacts_destination: str | None = typer.Option(
        None,
        "--artifacts-destination",
        help="With a database URI: the MLflow server's --artifacts-destination "
        "(a folder or s3://...), to read artifacts stored as mlflow-artifacts:/.",
    ),
    url: str | None = typer.Option(
        None, "--url", help="Shipyard server (default: SHIPYARD_URL; unset: embedded)."
    ),
    project: str | None = ProjectOption,
    thorough: bool = typer.Option(
        False,
        "--thorough",
        help="Also compare each finished run's metric histories and artifact files with "
        "MLflow (a point logged late at an earlier step, a file added since): one MLflow "
        "request per metric and per artifact folder of every run, so much slower.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    as_json: bool = JsonOption,
) -> None:
    """Copy experiments, runs, registered models, versions and aliases from MLflow.

    Re-running it copies only what is new or changed. Runs still running in MLflow are
    brought up to date; finished runs are compared by what a search of MLflow shows
    (status, params, tags set or deleted, each metric's latest value), and those that
    differ are refreshed with only the points and files they lack. --thorough also
    compares the metric histories and artifact files of the others. A run, version or
    alias deleted in MLflow is deleted in Shipyard; a renamed experiment is renamed;
    models' and versions' descriptions and tags follow. Exits 1 when the source cannot
    be read, or when some objects failed (re-running retries them).
    """
    from shipyard.client import Client
    from shipyard.heap import start_up_done
    from shipyard.mlflow_compat.importer import import_mlflow

    # MLflow draws its own bar per artifact download; ours covers the whole import.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with Client(url, project=project) as client:
        start_up_done()
        summary = import_mlflow(
            source,
            client,
            artifacts_destination=artifacts_destination,
            console=err_console,
            show_progress=progress and not as_json,
            thorough=thorough,
        )
    if as_json:
        print_json(summary.to_dict())
    else:
        print_summary(summary, console)
    if summary.failures:
        print_error(
            f"{summary.failures} object(s) could not be copied "
            "(see 'failed'); re-running the import retries them"
        )
        raise typer.Exit(1)
