"""CLI commands (to be filled in)."""

import typer

experiments_app = typer.Typer(help="experiments_app", no_args_is_help=True)
runs_app = typer.Typer(help="runs_app", no_args_is_help=True)
