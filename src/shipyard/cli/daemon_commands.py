"""``shipyard daemon start|stop|status``: the command daemon of this home.

With one running, the commands of the groups it serves (data, experiments, runs,
models, projects) run in it and skip the ~0.7-1 s of imports a command otherwise
starts with; see ``cli/daemon.py`` for when it declines and the command runs here.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import typer

from shipyard.cli import daemon_link as link
from shipyard.cli.common import JsonOption
from shipyard.cli.output import console, format_time, print_error, print_json, print_record

daemon_app = typer.Typer(
    help="A background process that runs this home's commands without start-up cost.",
    no_args_is_help=True,
)


def _home() -> str:
    return link.resolved_home(os.environ, os.getcwd())


@daemon_app.command("start")
def start(
    idle_minutes: float = typer.Option(
        30.0, "--idle-minutes", min=0.1, help="Exit after this long without a command."
    ),
    wait_seconds: float = typer.Option(
        120.0, "--wait", min=1.0, help="Seconds to wait for it (a first start migrates)."
    ),
) -> None:
    """Start this home's daemon in the background (it logs to <home>/daemon.log)."""
    if os.environ.get("SHIPYARD_URL"):
        print_error("SHIPYARD_URL is set; the daemon serves embedded mode")
        raise typer.Exit(2)
    if not hasattr(socket, "AF_UNIX"):
        print_error("the daemon needs Unix sockets, which this OS lacks")
        raise typer.Exit(2)
    relative = link.relative_store(os.environ)
    if relative:
        print_error(
            f"{relative} names a path relative to the current folder, which a daemon "
            "would not follow from folder to folder: make it absolute"
        )
        raise typer.Exit(2)
    if link.relative_import_path(os.environ):
        print_error(
            "PYTHONPATH has a relative or empty entry, which a daemon started in another "
            "folder would read otherwise: make its entries absolute"
        )
        raise typer.Exit(2)
    home = _home()
    running = link.ask(home, "status")
    if running is not None:
        _already_serves(running, home, idle_minutes)
        return
    try:
        process = link.spawn(home, idle_minutes)
    except OSError as exc:
        print_error(f"cannot start the daemon: {exc}")
        raise typer.Exit(1) from None
    log_path = Path(home) / "daemon.log"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        status = link.ask(home, "status")
        if status is not None and status.get("ready"):
            if status.get("pid") == process.pid:
                console.print(f"daemon {status['pid']} serves {home}")
            else:  # another one, started just before (at a command's exit), won the lock
                _already_serves(status, home, idle_minutes)
            return
        # Ours lost to a daemon started just before (at the exit of the command before
        # this one) that holds the home's lock but does not answer yet: wait for that one.
        if process.poll() is not None and not link.lock_held(home):
            tail = log_path.read_text(errors="replace")[-2000:]
            print_error(f"the daemon exited ({process.returncode}):\n{tail}")
            raise typer.Exit(1)
        time.sleep(0.05)
    process.terminate()
    print_error(f"the daemon was not ready in {wait_seconds:g} s")
    raise typer.Exit(1)


def _already_serves(running: dict[str, object], home: str, idle_minutes: float) -> None:
    """Say that daemon ``running`` serves ``home`` (exit 0), or exit 1 where it would
    decline this caller's commands."""
    if (running.get("env"), running.get("install")) != (
        link.fingerprint(os.environ),
        link.installation(),
    ):
        print_error(
            f"daemon {running['pid']} serves {home} with another "
            "environment or installation, and would decline these commands: "
            "`shipyard daemon stop` it first"
        )
        raise typer.Exit(1)
    kept = running.get("idle_minutes")
    note = ""
    if isinstance(kept, (int, float)) and kept != idle_minutes:
        note = f" (it keeps its idle time of {kept:g} minutes)"
    console.print(f"daemon {running['pid']} already serves {home}{note}")


@daemon_app.command("stop")
def stop(
    wait_seconds: float = typer.Option(
        60.0, "--wait", min=0.0, help="How long to wait for a running command to end."
    ),
    every_home: bool = typer.Option(
        False, "--all", help="Stop the daemons of all your homes, not only this one's."
    ),
) -> None:
    """Stop this home's daemon (or, with --all, every one of yours) once its running
    command (if any) ends."""
    if every_home:
        stopping = [str(reply["home"]) for reply in link.ask_all("status")]
        for home in stopping:
            link.ask(home, "stop")
    else:
        stopping = [_home()]
        if link.ask(stopping[0], "stop") is None:
            console.print(f"no daemon serves {stopping[0]}")
            return
    deadline = time.monotonic() + wait_seconds
    running = stopping
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [home for home in running if os.path.exists(link.socket_path(home))]
    if running:
        print_error(f"not stopped in {wait_seconds:g} s: the daemon of {', '.join(running)}")
        raise typer.Exit(1)
    if every_home and not stopping:
        console.print("no daemon of yours is running")
    for home in stopping:
        console.print(f"stopped the daemon of {home}")


@daemon_app.command("status")
def status(as_json: bool = JsonOption) -> None:
    """Whether a daemon serves this home, and what it has done (exit 1 if none)."""
    home = _home()
    reply = link.ask(home, "status")
    if reply is None:
        if as_json:
            print_json({"home": home, "running": False})
        else:
            console.print(f"no daemon serves {home}")
        raise typer.Exit(1)
    started = float(reply.pop("started"))  # type: ignore[arg-type]
    shown = {"running": True, **reply, "started": format_time(int(started * 1000))}
    print_record(shown, as_json=as_json, title="shipyard daemon")
