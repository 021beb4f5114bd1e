"""What every command shares: the client it uses and how errors are shown.

The command modules import this one to declare their commands, so it must stay
light: the client (httpx, settings) and the platform under it load only when a
command runs, which keeps ``shipyard --help`` from paying for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from shipyard.cli.output import print_error
from shipyard.errors import ShipyardError
from shipyard.heap import collect_at_exit

if TYPE_CHECKING:
    from shipyard.client import Client

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
ProjectOption = typer.Option(None, "--project", "-p", help="Project (default: SHIPYARD_PROJECT).")

F = TypeVar("F", bound=Callable[..., Any])


# The command daemon's clients, by project: it runs many commands with one environment,
# and a new embedded client would build its app's routes again on its first request.
_kept_clients: dict[str | None, Client] | None = None


def keep_clients() -> None:
    """From now on, :func:`get_client` returns the same client for the same project
    (the command daemon's processes; a command's own process makes one anyway)."""
    global _kept_clients
    if _kept_clients is None:
        _kept_clients = {}


def get_client(project: str | None = None) -> Client:
    """The SDK client the CLI runs on: remote if SHIPYARD_URL is set, else embedded."""
    from shipyard.client import Client
    from shipyard.heap import start_up_done

    if _kept_clients is not None and project in _kept_clients:
        return _kept_clients[project]
    client = Client(project=project)
    start_up_done()
    if _kept_clients is not None:
        _kept_clients[project] = client
    return client


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print a ShipyardError, or a local file system's refusal (a full disk, a file where
    a folder goes, no permission), as one red line and exit 1 (no traceback)."""
    try:
        yield
    except ShipyardError as exc:
        collect_at_exit()
        print_error(exc.message, exc.code)
        raise typer.Exit(1) from None
    except OSError as exc:
        collect_at_exit()
        if exc.errno is None or exc.strerror is None:
            raise  # not the system's word on a file: a bug to see in full
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        print_error(f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror)
        raise typer.Exit(1) from None


def command(fn: F) -> F:
    """Decorator for CLI commands: ShipyardErrors become a clean message and exit 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with friendly_errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
