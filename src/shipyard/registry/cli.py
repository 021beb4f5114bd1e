"""CLI commands (to be filled in)."""

import typer

models_app = typer.Typer(help="models_app", no_args_is_help=True)
