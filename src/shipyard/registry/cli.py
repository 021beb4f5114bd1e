"""``shipyard models``: registered models, versions and aliases, on top of the SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shipyard.cli.common import JsonOption, ProjectOption, command, get_client
from shipyard.cli.output import console, print_json, print_record, print_table

if TYPE_CHECKING:
    from shipyard.registry.client import ModelsClient
    from shipyard.registry.types import ModelVersion

models_app = typer.Typer(
    help="The model registry: models, versions, aliases.", no_args_is_help=True
)

_VERSION_COLUMNS = [
    "version",
    ("aliases", "aliases"),
    "flavor",
    "run_id",
    "status",
    "created_by",
    "created_at",
    "description",
]


def _version_rows(versions: list) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for v in versions:
        data = v.model_dump(mode="json", exclude={"files"})
        data["aliases"] = ", ".join(v.aliases)
        rows.append(data)
    return rows


@models_app.command("list")
@command
def list_models(
    query: str = typer.Option(None, "--query", "-q", help="Substring of the name."),
    tag: list[str] = typer.Option([], "--tag", help="'key' or 'key=value'; repeatable."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Registered models of the project."""
    tags: dict[str, str | None] = {}
    for spec in tag:
        key, eq, value = spec.partition("=")
        tags[key] = value if eq else None
    models = get_client(project).models.list(query, tags=tags or None)
    rows = []
    for m in models:
        data = m.model_dump(mode="json")
        data["aliases"] = ", ".join(f"{a}->{v}" for a, v in m.aliases.items())
        rows.append(data)
    print_table(
        models if as_json else rows,
        ["name", "latest_version", "aliases", "updated_at", "description"],
        title="Models",
        as_json=as_json,
    )


def _newest_versions(
    models: ModelsClient, name: str, limit: int
) -> tuple[list[ModelVersion], bool]:
    """The ``limit`` newest versions of a model, and whether it has older ones."""
    versions = models.list_versions(name, limit=limit + 1)
    return versions[:limit], len(versions) > limit


@models_app.command("show")
@command
def show(
    name: str,
    max_results: int = typer.Option(20, "--max", "-n", min=1, help="Most versions to show."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """A model with its aliases and its newest versions."""
    models = get_client(project).models
    model = models.get(name)
    versions, more = _newest_versions(models, name, max_results)
    if as_json:
        print_json({"model": model, "versions": versions, "more_versions": more})
        return
    print_record(model, title=f"Model {name}")
    print_table(_version_rows(versions), _VERSION_COLUMNS, title="Versions")
    if more:
        console.print(f"Older versions: shipyard models versions {name} --max N")


@models_app.command("versions")
@command
def list_versions(
    name: str,
    max_results: int = typer.Option(50, "--max", "-n", min=1, help="Most versions to show."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Versions of a model, newest first."""
    versions, more = _newest_versions(get_client(project).models, name, max_results)
    if as_json:
        print_json(versions)
        return
    print_table(_version_rows(versions), _VERSION_COLUMNS, title="Versions")
    if more:
        console.print(f"Only the newest {len(versions)}; --max N shows more.")


@models_app.command("alias")
@command
def alias(
    name: str,
    alias: str,
    version: int,
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it was set)."""
    result = get_client(project).models.set_alias(name, alias, version)
    if as_json:
        print_json(result)
        return
    console.print(f"{name}@{alias} -> version {result.version}")
