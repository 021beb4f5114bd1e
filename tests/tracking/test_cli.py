"""`shipyard experiments` and `shipyard runs` against an embedded home."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client
from shipyard.tracking.types import Run

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHIPYARD_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path / "home"


@pytest.fixture
def runs(home: Path) -> list[Run]:
    with Client() as client:
        client.experiments.create("vision", "image models", tags={"team": "cv"})
        made = []
        for i in range(3):
            run = client.runs.create(
                "vision", name=f"run{i}", params={"lr": f"0.{i}"}, start_time=1000 + i
            )
            client.runs.log_batch(run.id, metrics=[("acc", i / 10, 0, 1)], tags={"i": str(i)})
            made.append(run)
        client.runs.end(made[0].id)
        client.runs.create("other", name="elsewhere")
        return made


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_experiments_list_and_show(runs: list[Run]) -> None:
    out = _ok("experiments", "list")
    assert "vision" in out and "other" in out
    listed = orjson.loads(_ok("experiments", "list", "--json"))
    assert sorted(e["name"] for e in listed) == ["other", "vision"]
    shown = orjson.loads(_ok("experiments", "show", "vision", "--json"))
    assert shown["description"] == "image models" and shown["tags"] == {"team": "cv"}
    by_id = orjson.loads(_ok("experiments", "show", str(shown["id"]), "--json"))
    assert by_id == shown
    assert "image models" in _ok("experiments", "show", "vision")


def test_runs_list(runs: list[Run]) -> None:
    table = _ok("runs", "list", "--experiment", "vision")
    for name in ("run0", "run1", "run2", "params.lr", "metrics.acc", "finished"):
        assert name in table
    assert "elsewhere" not in table
    listed = orjson.loads(_ok("runs", "list", "--json"))
    assert [r["name"] for r in listed][:3] == ["elsewhere", "run2", "run1"]
    filtered = orjson.loads(
        _ok(
            "runs", "list", "-e", "vision", "--filter", "metrics.acc >= 0.1",
            "--order-by", "metrics.acc ASC", "--json",
        )
    )  # fmt: skip
    assert [r["name"] for r in filtered] == ["run1", "run2"]
    limited = orjson.loads(_ok("runs", "list", "--max", "2", "--json"))
    assert len(limited) == 2


def test_an_experiment_is_named_by_name_or_by_id(runs: list[Run]) -> None:
    vision = runs[0].experiment_id
    by_id = orjson.loads(_ok("runs", "list", "-e", str(vision), "--json"))
    by_name = orjson.loads(_ok("runs", "list", "-e", "vision", "--json"))
    assert [r["id"] for r in by_id] == [r["id"] for r in by_name] != []
    # A name made of digits is found by that name first.
    with Client() as client:
        named = client.experiments.create(str(vision))
        client.runs.create(named.id, name="in-the-numbered-one")
    listed = orjson.loads(_ok("runs", "list", "-e", str(vision), "--json"))
    assert [r["name"] for r in listed] == ["in-the-numbered-one"]
    assert orjson.loads(_ok("experiments", "show", str(vision), "--json"))["id"] == named.id
    result = runner.invoke(app, ["runs", "list", "-e", "4242"])
    assert result.exit_code == 1 and "4242" in result.output


def test_end_a_run_left_running(runs: list[Run]) -> None:
    # runs[1] is still running, as a run whose process was killed stays.
    assert "is killed" in _ok("runs", "end", runs[1].id)
    ended = orjson.loads(_ok("runs", "show", runs[1].id, "--json"))
    assert ended["status"] == "killed" and ended["end_time"] is not None
    shown = orjson.loads(
        _ok("runs", "end", runs[2].id, "--status", "failed", "--end-time", "5000", "--json")
    )
    assert (shown["status"], shown["end_time"]) == ("failed", 5000)
    result = runner.invoke(app, ["runs", "end", runs[0].id, "--status", "sleeping"])
    assert result.exit_code == 1 and "error" in result.output
    assert orjson.loads(_ok("runs", "show", runs[0].id, "--json"))["status"] == "finished"


def test_delete_and_restore_runs_and_experiments(runs: list[Run]) -> None:
    _ok("runs", "delete", runs[0].id, runs[1].id)
    listed = orjson.loads(_ok("runs", "list", "-e", "vision", "--json"))
    assert [r["name"] for r in listed] == ["run2"]
    _ok("runs", "restore", runs[0].id)
    listed = orjson.loads(_ok("runs", "list", "-e", "vision", "--json"))
    assert sorted(r["name"] for r in listed) == ["run0", "run2"]
    _ok("experiments", "delete", "other")
    names = [e["name"] for e in orjson.loads(_ok("experiments", "list", "--json"))]
    assert names == ["vision"]
    deleted = orjson.loads(_ok("experiments", "list", "--all", "--json"))
    other = next(e for e in deleted if e["name"] == "other")
    _ok("experiments", "restore", str(other["id"]))
    names = [e["name"] for e in orjson.loads(_ok("experiments", "list", "--json"))]
    assert sorted(names) == ["other", "vision"]
    result = runner.invoke(app, ["runs", "delete", "0" * 32])
    assert result.exit_code == 1 and "error" in result.output


def test_runs_show(runs: list[Run]) -> None:
    run = runs[1]
    out = _ok("runs", "show", run.id)
    for text in (run.id, "run1", "Params", "lr", "0.1", "Metrics", "acc", "Tags", "running"):
        assert text in out
    shown = orjson.loads(_ok("runs", "show", run.id, "--json"))
    assert shown["params"] == {"lr": "0.1"} and shown["metrics"] == {"acc": 0.1}
    assert shown["tags"] == {"i": "1"}


def test_errors_are_one_line(runs: list[Run]) -> None:
    for args in (
        ["runs", "show", "0" * 32],
        ["experiments", "show", "missing"],
        ["runs", "list", "--filter", "metrics.acc >"],
        ["runs", "list", "--experiment", "missing"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "error" in result.output and "Traceback" not in result.output


def test_empty_home(home: Path) -> None:
    assert orjson.loads(_ok("runs", "list", "--json")) == []
    assert orjson.loads(_ok("experiments", "list", "--json")) == []
