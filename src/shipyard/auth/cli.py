"""``shipyard users`` and ``shipyard tokens``.

Embedded (no SHIPYARD_URL), the caller is the local OS user with every right:
that is how the first admin of a new server is made, by running
``shipyard users create admin --admin`` against the server's
SHIPYARD_DATABASE_URL. Remotely the commands use SHIPYARD_TOKEN.
"""

from __future__ import annotations

import sys

import typer

from shipyard.cli.common import JsonOption, command, get_client
from shipyard.cli.output import (
    console,
    err_console,
    format_time,
    print_json,
    print_record,
    print_table,
)
from shipyard.errors import InvalidInput

users_app = typer.Typer(help="User accounts (site admins).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)

USER_COLUMNS = ["username", "is_admin", "disabled", "has_password", "created_at"]
TOKEN_COLUMNS = [
    "id",
    "name",
    "username",
    "prefix",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("no password on standard input")
        return password
    # Prompts go to stderr so that `--json` output stays parseable.
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@users_app.command("create")
@command
def users_create(
    username: str,
    admin: bool = typer.Option(False, "--admin", help="Make a site administrator."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    no_password: bool = typer.Option(
        False, "--no-password", help="No password: the user signs in with tokens only."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a user (prompts for the password twice unless told otherwise)."""
    if password_stdin and no_password:
        raise InvalidInput("--password-stdin and --no-password exclude each other")
    password = None if no_password else _read_password(password_stdin)
    user = get_client().users.create(username, password, is_admin=admin)
    print_record(user, as_json=as_json, title="Created user")


@users_app.command("list")
@command
def users_list(as_json: bool = JsonOption) -> None:
    """Every user."""
    print_table(get_client().users.list(), USER_COLUMNS, title="Users", as_json=as_json)


@users_app.command("me")
@command
def users_me(as_json: bool = JsonOption) -> None:
    """Who the server thinks you are, and your roles by project."""
    me = get_client().users.me()
    if as_json:
        print_json(me)
        return
    console.print(f"{me.username}" + (" (site admin)" if me.is_admin else ""))
    print_table(me.projects, ["project", "role"], title="Roles")


@users_app.command("update")
@command
def users_update(
    username: str,
    admin: bool | None = typer.Option(None, "--admin/--no-admin", help="Site administrator."),
    disabled: bool | None = typer.Option(
        None, "--disable/--enable", help="A disabled user's tokens and password stop working."
    ),
    password: bool = typer.Option(False, "--password", help="Set a new password (prompted)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from stdin."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Change a user: admin flag, disabled, password."""
    new_password = _read_password(password_stdin) if (password or password_stdin) else None
    user = get_client().users.update(
        username, password=new_password, is_admin=admin, disabled=disabled
    )
    print_record(user, as_json=as_json, title="Updated user")


@tokens_app.command("create")
@command
def tokens_create(
    user: str | None = typer.Option(None, "--user", help="For another user (site admins)."),
    name: str = typer.Option("", "--name", help="What the token is for."),
    expires_days: int = typer.Option(90, "--expires-days", help="Lifetime in days."),
    no_expiry: bool = typer.Option(False, "--no-expiry", help="A token that never expires."),
    as_json: bool = JsonOption,
) -> None:
    """Create a token and print its secret (shown this once only)."""
    created = get_client().tokens.create(
        name, expires_in_days=None if no_expiry else expires_days, username=user
    )
    if as_json:
        print_json(created)
        return
    print_record(created.model_dump(exclude={"token"}), title="Created token")
    err_console.print("Store this token now: it will not be shown again.")
    # The secret alone on stdout, so `$(shipyard tokens create | tail -1)` captures it.
    console.print(created.token, soft_wrap=True, highlight=False)


@tokens_app.command("list")
@command
def tokens_list(
    user: str | None = typer.Option(None, "--user", help="Another user's (site admins)."),
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked tokens."),
    as_json: bool = JsonOption,
) -> None:
    """Your tokens (no secrets: only their prefix)."""
    rows = get_client().tokens.list(user, include_revoked=include_revoked)
    print_table(rows, TOKEN_COLUMNS, title="Tokens", as_json=as_json)


@tokens_app.command("revoke")
@command
def tokens_revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once (one revoked before stays as it was)."""
    result = get_client().tokens.revoke(token_id)
    if result.already_revoked:
        # Exit 0 as for the first time: the token is revoked, which is what was asked.
        when = format_time(result.revoked_at)
        console.print(f"token {token_id} was already revoked ({when} UTC); nothing changed")
        return
    console.print(f"token {token_id} revoked")
