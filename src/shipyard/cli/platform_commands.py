"""Platform-level commands: server, db, projects."""

from __future__ import annotations

import typer

from shipyard.cli.common import JsonOption, command, friendly_errors, get_client
from shipyard.cli.output import console, print_error, print_json, print_record, print_table

db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
projects_app = typer.Typer(help="Projects: namespaces with their own roles.", no_args_is_help=True)


def server(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, help="Server processes."),
) -> None:
    """Run the Shipyard server (REST API)."""
    import uvicorn

    from shipyard.config import Settings
    from shipyard.heap import serving, start_up_done
    from shipyard.platform import Platform
    from shipyard.server.app import KEEP_ALIVE_SECONDS, create_app

    settings = Settings()
    try:
        settings.auth_required(host)
    except ValueError as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    _check_can_listen(host, port)
    with friendly_errors():  # a home it cannot write, say: one line, not a traceback
        platform = Platform.from_settings(settings, host=host, on_step=_print_step)
    mode = "required" if platform.auth_required else "off (loopback only)"
    console.print(f"Shipyard on http://{host}:{port}  auth: {mode}")
    console.print(f"  metadata: {platform.db.url.render_as_string(hide_password=True)}")
    console.print(f"  blobs:    {settings.resolved_blob_url}")
    start_up_done(freeze=False)
    options = {
        "host": host, "port": port, "log_level": "warning",
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }  # fmt: skip
    if workers > 1:
        import os

        os.environ["SHIPYARD_SERVER_HOST"] = host
        uvicorn.run("shipyard.server.asgi:app", workers=workers, **options)
    else:
        app = create_app(platform)
        serving()
        uvicorn.run(app, **options)


def _print_step(revision: str, title: str, seconds: float) -> None:
    """One line per migration applied, so that a start which migrates says what it did."""
    from rich.text import Text

    took = Text(f" ({seconds:.1f} s)", style="dim")
    console.print(Text(f"applied {revision}: {title}") + took)


def _check_can_listen(host: str, port: int) -> None:
    """Exit with one line, before any start-up work and banner, when the address cannot
    be listened on (most often: another server has the port)."""
    import socket

    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        print_error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
@command
def db_upgrade() -> None:
    """Apply the schema migrations to the metadata database."""
    from shipyard.config import Settings
    from shipyard.db import Database
    from shipyard.db.migrate import current_revision, pending_steps, upgrade

    settings = Settings()
    db = Database(settings.resolved_database_url)
    before = current_revision(db)
    steps = pending_steps(db)
    if steps:
        waiting = iter(steps[1:])
        with console.status(f"applying {steps[0][0]}: {steps[0][1]}") as status:

            def applied(revision: str, title: str, seconds: float) -> None:
                _print_step(revision, title, seconds)
                following = next(waiting, None)
                if following is not None:
                    status.update(f"applying {following[0]}: {following[1]}")

            upgrade(db, on_step=applied)
    after = current_revision(db)
    console.print(f"database at revision {after}" + ("" if before == after else f" (was {before})"))


@db_app.command("rebuild-summaries")
@command
def db_rebuild_summaries() -> None:
    """Rebuild every run's summary (its params, tags and latest metrics as searches
    return them) from the tables, after servers of an older version wrote to the
    database. Safe while servers run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from sqlalchemy import text

    from shipyard.config import Settings
    from shipyard.db import Database
    from shipyard.db.migrate import at_head, current_revision
    from shipyard.errors import Conflict
    from shipyard.tracking.summaries import rebuild_all

    db = Database(Settings().resolved_database_url)
    if not at_head(db):  # before the summaries' table, or its triggers, exist
        raise Conflict(
            f"the database is at revision {current_revision(db)}, behind this version: "
            "run `shipyard db upgrade` first"
        )
    with db.read() as session:
        total = int(session.execute(text("SELECT count(*) FROM runs")).scalar_one())
    with Progress(
        TextColumn("run summaries"), BarColumn(), MofNCompleteColumn(), console=console,
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("rebuild", total=total)
        done = rebuild_all(db, advance=lambda n: bar.advance(task, n))
    console.print(f"rebuilt the summaries of {done:,} runs")


@projects_app.command("list")
@command
def projects_list(as_json: bool = JsonOption) -> None:
    """Projects you have a role on."""
    rows = get_client().projects.list()
    print_table(
        rows,
        ["name", "description", "role", "created_by", "created_at"],
        title="Projects",
        as_json=as_json,
    )


@projects_app.command("create")
@command
def projects_create(
    name: str,
    description: str = typer.Option("", help="What it is for."),
    as_json: bool = JsonOption,
) -> None:
    """Create a project (you become its admin)."""
    project = get_client().projects.create(name, description)
    print_record(project, title="Created", as_json=as_json)


@projects_app.command("members")
@command
def projects_members(project: str, as_json: bool = JsonOption) -> None:
    """Users with a role on a project."""
    rows = get_client().projects.members(project)
    print_table(rows, ["username", "role"], title=f"Members of {project}", as_json=as_json)


@projects_app.command("grant")
@command
def projects_grant(
    project: str,
    username: str,
    role: str = typer.Argument(..., help="viewer, editor or admin."),
    as_json: bool = JsonOption,
) -> None:
    """Give a user a role on a project (replacing the role they had)."""
    member = get_client().projects.set_member(project, username, role)
    if as_json:
        print_json(member)
        return
    console.print(f"{member.username} is {member.role} of {project}")


@projects_app.command("revoke")
@command
def projects_revoke(project: str, username: str) -> None:
    """Take away a user's role on a project."""
    get_client().projects.remove_member(project, username)
    console.print(f"{username} has no role on {project} now")
