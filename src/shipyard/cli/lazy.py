"""Command groups that are imported when they are used, not when the CLI starts.

A domain's commands import that domain's types (pydantic models) and, when run,
the client. ``shipyard --help`` lists every group from a name and a line of help,
and ``shipyard runs list`` loads the tracking commands only: neither pays for
the other domains.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyApp:
    """A typer app named by ``"module:attribute"``, with the help its parent lists."""

    target: str
    help: str

    def load(self, name: str) -> TyperGroup:
        """Import the module and build the app's command group, called ``name``."""
        module, _, attribute = self.target.partition(":")
        group = typer.main.get_group(getattr(importlib.import_module(module), attribute))
        group.name = name
        return group


class _NotLoaded(TyperCommand):
    """Stands in for a lazy group in help listings and completion, where only its
    name and help are read. ``LazyGroup.resolve_command`` replaces it before use."""

    def __init__(self, name: str, app: LazyApp) -> None:
        super().__init__(name, help=app.help)
        self.app = app

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        raise RuntimeError(f"command group {self.name!r} was run before it was loaded")


class LazyGroup(TyperGroup):
    """A typer group whose sub-groups in ``apps`` load on first use.

    Subclass it with ``apps`` set and pass the subclass as ``typer.Typer(cls=...)``;
    the lazy groups are listed after the commands registered on the app itself.
    """

    apps: ClassVar[dict[str, LazyApp]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, app in self.apps.items():
            self.commands.setdefault(name, _NotLoaded(name, app))

    def resolve_command(
        self,
        ctx: typer.Context,  # type: ignore[override]
        args: list[str],
    ) -> tuple[str | None, Any, list[str]]:
        """Find the command ``args`` name, loading its group if this is its first use."""
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _NotLoaded):
            command = command.app.load(name)
            self.commands[name] = command
        return name, command, rest
