"""What the CLI prints: users' text as it is (names, messages and patterns that look
like rich markup, ``[/x]``, ``[red]``, ``^[ab]$``, are neither parsed nor dropped), and
errors as one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import as_plain_user
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client

runner = CliRunner()
ODD_NAME = "[/x] weird [bold]"
ODD_MESSAGE = "fix [/bold] and [red]x"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    for var in ("SHIPYARD_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL", "SHIPYARD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    client = Client()
    yield client
    client.close()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_run_and_experiment_names_are_printed_as_they_are(home: Client) -> None:
    home.experiments.create(ODD_NAME, "[i]described[/i]")
    home.runs.create(ODD_NAME, name=ODD_NAME, params={"p": "[dim]v[/dim]"})
    code, out, _ = _run("runs", "list")
    assert code == 0
    assert ODD_NAME in out
    code, out, _ = _run("experiments", "show", ODD_NAME)
    assert code == 0
    assert ODD_NAME in out and "[i]described[/i]" in out


def test_an_error_naming_odd_text_is_one_line(home: Client) -> None:
    code, _, err = _run("experiments", "show", "[/nope]")
    assert code == 1
    assert err.startswith("error (not_found): ") and "[/nope]" in err
    assert "Traceback" not in err


def test_dataset_messages_and_patterns_keep_their_brackets(home: Client, tmp_path: Path) -> None:
    source = tmp_path / "plans.csv"
    source.write_text("id,plan\n1,a\n2,b\n3,c\n")
    suite = tmp_path / "suite.json"
    suite.write_bytes(
        orjson.dumps(
            {
                "policy": "warn",
                "expectations": [
                    {"kind": "regex", "column": "plan", "pattern": "^[ab]$", "name": "[plan] ok"}
                ],
            }
        )  # fmt: skip
    )
    assert _run("data", "create", "plans", "--expectations", str(suite))[0] == 0
    code, out, _ = _run("data", "ingest", "plans", str(source), "-m", ODD_MESSAGE)
    assert code == 0, out
    assert [v.version for v in home.datasets.versions("plans").versions] == [1]
    code, out, _ = _run("data", "versions", "plans")
    assert code == 0
    assert ODD_MESSAGE in out
    code, out, _ = _run("data", "validate", "plans")
    assert code == 1  # the row with plan "c" fails
    assert "[plan] ok" in out and "^[ab]$" in out


def test_a_taken_port_is_one_line_and_no_banner(home: Client) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, out, err = _run("server", "--host", "127.0.0.1", "--port", str(port))
    assert code == 2
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "Shipyard on" not in out


def test_piped_tables_keep_their_width(home: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.cli.output import reset_consoles

    run = home.runs.create("wide", name="a-rather-long-run-name-" + "x" * 40)
    monkeypatch.delenv("COLUMNS")
    reset_consoles()  # as a command's own process starts: stdout is no terminal here
    try:
        code, out, _ = _run("runs", "list")
    finally:
        monkeypatch.setenv("COLUMNS", "250")
        reset_consoles()
    assert code == 0
    # One line holds the whole id and the whole name: nothing cut, nothing folded.
    assert any(run.id in line and run.name in line for line in out.splitlines())


def test_a_read_only_home_is_one_clear_line(tmp_path: Path) -> None:
    """SQLite in WAL mode writes beside the database even to read it: a home whose
    folder cannot be written says so in one line, instead of a SQLAlchemy traceback,
    and the home is left as it was."""
    prefix = as_plain_user()  # root writes and enters any folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_DAEMON": "off", "COLUMNS": "250"}
    command = [*prefix, sys.executable, "-m", "shipyard.cli.launch", "experiments", "list"]
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    home = tmp_path / "home"
    before = sorted(p.name for p in home.iterdir())
    home.chmod(0o555)
    try:
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        after = sorted(p.name for p in home.iterdir())
    finally:
        home.chmod(0o755)
    assert refused.returncode == 1
    said = " ".join(refused.stderr.split())  # as rich wrapped it to the terminal
    assert said.startswith(
        f"error (unavailable): cannot open the metadata database {home}/shipyard.db: its "
        f"folder {home} is not writable"
    ), refused.stderr
    assert "Traceback" not in said
    assert after == before


def test_a_metadata_database_that_cannot_be_reached_is_one_clear_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{port}/test"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_DATABASE_URL": url}
    env |= {"SHIPYARD_DAEMON": "off", "COLUMNS": "250"}
    for args in (["runs", "list"], ["server", "--port", str(port)]):
        command = [sys.executable, "-m", "shipyard.cli.launch", *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        said = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stderr
        assert said.startswith(
            "error (unavailable): cannot use the metadata database "
            f"postgresql+psycopg://postgres:***@127.0.0.1:{port}/test: connection failed"
        ), result.stderr
        assert "Traceback" not in said and "hunter2" not in said
