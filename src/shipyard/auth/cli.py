"""CLI commands (to be filled in)."""

import typer

users_app = typer.Typer(help="users_app", no_args_is_help=True)
tokens_app = typer.Typer(help="tokens_app", no_args_is_help=True)
