"""``shipyard models``: registered models, versions and aliases, on top of the SDK."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.cli.common import JsonOption, ProjectOption, command, get_client
from shipyard.cli.output import console, print_json, print_record, print_table
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.registry.client import ModelsClient
    from shipyard.registry.types import ModelVersion

models_app = typer.Typer(
    help="The model registry: models, versions, aliases, tags, downloads.",
    no_args_is_help=True,
)

VersionOption = typer.Option(
    None, "--version", "-V", min=1, help="A version of the model instead of the model."
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
    version: int = typer.Argument(None, min=1, help="The version to point at."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias instead."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Point ALIAS of model NAME at VERSION (moving it), or remove it with --delete."""
    models = get_client(project).models
    if delete:
        if version is not None:
            raise InvalidInput("give either VERSION or --delete, not both")
        models.delete_alias(name, alias)
        console.print(f"{name}@{alias} removed")
        return
    if version is None:
        raise InvalidInput("give the VERSION to point the alias at (or --delete)")
    result = models.set_alias(name, alias, version)
    if as_json:
        print_json(result)
        return
    console.print(f"{name}@{alias} -> version {result.version}")


@models_app.command("create")
@command
def create(
    name: str,
    description: str = typer.Option("", "--description", "-d", help="What the model is for."),
    tag: list[str] = typer.Option([], "--tag", help="'key=value'; repeatable."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Register a new model NAME (its versions come from runs: `models register`)."""
    model = get_client(project).models.create(name, description, _pairs(tag, "--tag"))
    if as_json:
        print_json(model)
        return
    console.print(f"model {model.name} created")


@models_app.command("register")
@command
def register(
    name: str,
    run_id: str,
    path: str = typer.Option("model", "--path", help="The run's artifact folder to register."),
    description: str = typer.Option("", "--description", "-d", help="About this version."),
    project: str = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Make the files under PATH of run RUN_ID the next version of model NAME."""
    version = get_client(project).models.create_version(name, run_id, path, description=description)
    if as_json:
        print_json(version)
        return
    console.print(f"{name}/{version.version} registered from run {run_id} ({path})")


@models_app.command("delete")
@command
def delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", help="Yes, delete it with every version."),
    project: str = ProjectOption,
) -> None:
    """Delete model NAME with all its versions and aliases (for good: needs --yes)."""
    if not yes:
        raise InvalidInput(
            f"deleting model {name!r} removes all its versions and aliases for good; "
            "add --yes to do it"
        )
    get_client(project).models.delete(name)
    console.print(f"model {name} deleted")


@models_app.command("delete-version")
@command
def delete_version(name: str, version: int, project: str = ProjectOption) -> None:
    """Delete VERSION of model NAME and the aliases that point at it."""
    get_client(project).models.delete_version(name, version)
    console.print(f"{name}/{version} deleted")


@models_app.command("tag")
@command
def tag(
    name: str,
    pairs: list[str] = typer.Argument(..., help="KEY=VALUE; several allowed."),
    version: int = VersionOption,
    project: str = ProjectOption,
) -> None:
    """Set tags of model NAME, or of one of its versions with --version."""
    tags = _pairs(pairs, "a tag")
    models = get_client(project).models
    if version is None:
        models.set_tags(name, tags)
    else:
        models.set_version_tags(name, version, tags)
    console.print(f"{_what(name, version)}: {len(tags)} tag(s) set")


@models_app.command("untag")
@command
def untag(
    name: str,
    keys: list[str] = typer.Argument(..., help="Tag keys to remove."),
    version: int = VersionOption,
    project: str = ProjectOption,
) -> None:
    """Remove tags of model NAME, or of one of its versions with --version."""
    models = get_client(project).models
    for key in keys:
        if version is None:
            models.delete_tag(name, key)
        else:
            models.delete_version_tag(name, version, key)
    console.print(f"{_what(name, version)}: {len(keys)} tag(s) removed")


@models_app.command("describe")
@command
def describe(
    name: str,
    description: str,
    version: int = VersionOption,
    project: str = ProjectOption,
) -> None:
    """Set the description of model NAME, or of one of its versions with --version."""
    models = get_client(project).models
    if version is None:
        models.update(name, description)
    else:
        models.update_version(name, version, description)
    console.print(f"{_what(name, version)}: description set")


@models_app.command("download")
@command
def download(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME (the latest)."),
    dest: Path = typer.Argument(..., help="Folder to write the files into."),
    project: str = ProjectOption,
) -> None:
    """Download a version's files into DEST, each checked against its hash."""
    models = get_client(project).models
    version = models.resolve(ref)
    # The number, not the reference: an alias moving meanwhile must not mix versions.
    folder = models.download(f"{version.model_name}/{version.version}", dest)
    count = len(version.files or [])
    console.print(f"{version.model_name}/{version.version}: {count} file(s) in {folder}")


def _what(name: str, version: int | None) -> str:
    return name if version is None else f"{name}/{version}"


def _pairs(specs: list[str], what: str) -> dict[str, str]:
    """``key=value`` items as a dict; InvalidInput for one without '=' or a key."""
    pairs: dict[str, str] = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        if not eq or not key:
            raise InvalidInput(f"{what} must be KEY=VALUE, not {spec!r}")
        pairs[key] = value
    return pairs
