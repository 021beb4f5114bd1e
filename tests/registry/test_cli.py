"""``shipyard models``: list, show, versions, alias (embedded, through the SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client

from .conftest import log_model, train

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """An embedded home the CLI and the returned client share, with one model of 2 versions."""
    for var in ("SHIPYARD_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL", "SHIPYARD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    client = Client()
    model, _ = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("churn", "churn classifier")
    client.models.create_version("churn", run_id)
    client.models.create_version("churn", run_id)
    client.models.set_alias("churn", "champion", 1)
    yield client
    client.close()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["models", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list(home: Client) -> None:
    code, out, _ = _run("list", "--json")
    assert code == 0
    (model,) = orjson.loads(out)
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "churn",
        2,
        {"champion": 1},
    )
    code, out, _ = _run("list")
    assert code == 0 and "churn" in out and "champion->1" in out


def test_show_and_versions(home: Client) -> None:
    code, out, _ = _run("show", "churn", "--json")
    assert code == 0
    data = orjson.loads(out)
    assert data["model"]["name"] == "churn"
    assert [v["version"] for v in data["versions"]] == [2, 1]
    code, out, _ = _run("show", "churn")
    assert code == 0 and "champion" in out and "churn classifier" in out
    code, out, _ = _run("versions", "churn", "--json")
    assert code == 0
    assert [(v["version"], v["aliases"]) for v in orjson.loads(out)] == [(2, []), (1, ["champion"])]


def test_versions_show_the_newest_and_say_there_are_more(home: Client) -> None:
    code, out, _ = _run("versions", "churn", "--max", "1", "--json")
    assert code == 0 and [v["version"] for v in orjson.loads(out)] == [2]
    code, out, _ = _run("versions", "churn", "--max", "1")
    assert code == 0 and "Only the newest 1" in out
    code, out, _ = _run("show", "churn", "-n", "1", "--json")
    data = orjson.loads(out)
    assert [v["version"] for v in data["versions"]] == [2] and data["more_versions"] is True
    code, out, _ = _run("show", "churn", "-n", "1")
    assert code == 0 and "Older versions: shipyard models versions churn" in out
    code, _, err = _run("versions", "churn", "--max", "0")
    assert code != 0 and "Traceback" not in err


def test_alias_moves(home: Client) -> None:
    code, out, _ = _run("alias", "churn", "champion", "2")
    assert code == 0 and "churn@champion -> version 2" in out
    assert home.models.get("churn").aliases == {"champion": 2}
    code, out, _ = _run("alias", "churn", "champion", "1", "--json")
    assert code == 0 and orjson.loads(out)["version"] == 1


def test_errors_are_one_line(home: Client) -> None:
    code, _, err = _run("show", "nope")
    assert code == 1 and "not found" in err and "Traceback" not in err
    code, _, err = _run("alias", "churn", "7", "1")
    assert code == 1 and "invalid alias" in err
    assert home.models.get("churn").aliases == {"champion": 1}
