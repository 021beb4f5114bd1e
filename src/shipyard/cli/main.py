"""The ``shipyard`` command: mounts each domain's commands.

Every command pays for what this module imports, so the domains' commands are
named here and imported only when one of them runs (``cli/lazy.py``); the
platform commands (server, db, projects) are light and mounted directly.
"""

from __future__ import annotations

import typer

from shipyard.cli.daemon_commands import daemon_app
from shipyard.cli.lazy import LazyApp, LazyGroup
from shipyard.cli.platform_commands import db_app, projects_app, server


class ShipyardGroup(LazyGroup):
    """The root group. Each line of help is the one its app declares (a test checks)."""

    apps = {
        "experiments": LazyApp(
            "shipyard.tracking.cli:experiments_app", "Experiments: named groups of runs."
        ),
        "runs": LazyApp(
            "shipyard.tracking.cli:runs_app", "Runs: params, metrics and tags of training runs."
        ),
        "models": LazyApp(
            "shipyard.registry.cli:models_app",
            "The model registry: models, versions, aliases, tags, downloads.",
        ),
        "data": LazyApp(
            "shipyard.datasets.cli:data_app",
            "Datasets: versioned, validated, profiled data and its lineage.",
        ),
        "users": LazyApp("shipyard.auth.cli:users_app", "User accounts (site admins)."),
        "tokens": LazyApp("shipyard.auth.cli:tokens_app", "API tokens: create, list, revoke."),
        "import": LazyApp(
            "shipyard.mlflow_compat.cli:import_app", "Bring history in from other tools."
        ),
    }


app = typer.Typer(
    name="shipyard",
    help="Shipyard: ML platform. Embedded by default; set SHIPYARD_URL to use a server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ShipyardGroup,
)
app.command()(server)
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
app.add_typer(daemon_app, name="daemon")


def main() -> None:
    """The ``shipyard`` console script."""
    from shipyard.heap import quiet_start_up

    quiet_start_up()
    app()


if __name__ == "__main__":
    main()
