"""The ``shipyard`` command: mounts each domain's commands."""

from __future__ import annotations

import typer

from shipyard.auth.cli import tokens_app, users_app
from shipyard.cli.platform_commands import db_app, projects_app, server
from shipyard.datasets.cli import data_app
from shipyard.mlflow_compat.cli import import_app
from shipyard.registry.cli import models_app
from shipyard.tracking.cli import experiments_app, runs_app

app = typer.Typer(
    name="shipyard",
    help="Shipyard: ML platform. Embedded by default; set SHIPYARD_URL to use a server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(server)
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(import_app, name="import")


if __name__ == "__main__":
    app()
