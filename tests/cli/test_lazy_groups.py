"""The root command lists each domain's commands without importing them, and runs
them as if they were mounted directly."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from shipyard.cli.lazy import LazyApp, LazyGroup
from shipyard.cli.main import ShipyardGroup, app

runner = CliRunner()


@pytest.mark.parametrize("name", sorted(ShipyardGroup.apps))
def test_listed_help_is_the_apps_own(name: str) -> None:
    lazy = ShipyardGroup.apps[name]
    module, _, attribute = lazy.target.partition(":")
    declared = getattr(importlib.import_module(module), attribute)
    assert isinstance(declared, typer.Typer)
    assert declared.info.help == lazy.help


def test_help_lists_every_group_without_importing_the_domains() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from shipyard.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'], env={'COLUMNS': '200'})\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "heavy = ['shipyard.tracking.cli', 'shipyard.datasets.cli', 'shipyard.client',\n"
        "         'pydantic', 'sqlalchemy', 'alembic', 'fastapi', 'pyarrow']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for name in ShipyardGroup.apps:
        assert name in out
    assert "LOADED []" in out


def test_a_lazy_group_runs_its_commands(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHIPYARD_URL", raising=False)
    result = runner.invoke(app, ["experiments", "--help"])
    assert result.exit_code == 0, result.output
    assert "list" in result.output
    created = runner.invoke(app, ["experiments", "list", "--json"])
    assert created.exit_code == 0, created.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["nonsense"])
    assert result.exit_code == 2
    assert "nonsense" in result.output


def test_a_bad_target_names_itself() -> None:
    class Broken(LazyGroup):
        apps = {"gone": LazyApp("shipyard.no_such_module:app", "Nothing here.")}

    broken = typer.Typer(cls=Broken)

    @broken.callback()
    def root() -> None:
        """A callback keeps typer from collapsing the app into its one command."""

    @broken.command()
    def other() -> None:
        """A command of the app's own."""

    result = runner.invoke(broken, ["--help"])
    assert "gone" in result.output and "Nothing here." in result.output
    failed = runner.invoke(broken, ["gone", "x"])
    assert isinstance(failed.exception, ModuleNotFoundError)
    assert "shipyard.no_such_module" in str(failed.exception)
