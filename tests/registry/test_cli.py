"""``shipyard models``: every command, embedded and against a server, through the SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from blake3 import blake3
from tests.conftest import ServerThread, build_platform
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client
from shipyard.platform import Platform

from .conftest import log_model, train

runner = CliRunner()


@pytest.fixture(params=["embedded", "remote"])
def home(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_for: Callable[[Platform], ServerThread],
) -> Iterator[Client]:
    """A home (embedded) or a server (remote) the CLI and the returned client share,
    with one model of 2 versions."""
    for var in ("SHIPYARD_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL", "SHIPYARD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    if request.param == "remote":
        platform = build_platform(request, "sqlite", tmp_path / "server-home")
        monkeypatch.setenv("SHIPYARD_URL", server_for(platform).url)
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


def test_create_register_and_describe(home: Client) -> None:
    run_id = home.models.get_version("churn", 1).run_id
    code, out, _ = _run("create", "fraud", "--description", "fraud detector", "--tag", "team=risk")
    assert code == 0 and "model fraud created" in out
    model = home.models.get("fraud")
    assert (model.description, model.tags) == ("fraud detector", {"team": "risk"})
    code, out, _ = _run("register", "fraud", run_id, "--json")
    assert code == 0
    data = orjson.loads(out)
    assert (data["model_name"], data["version"], data["run_id"]) == ("fraud", 1, run_id)
    code, out, _ = _run("register", "fraud", run_id, "--path", "model", "-d", "second")
    assert code == 0 and f"fraud/2 registered from run {run_id}" in out
    assert home.models.get_version("fraud", 2).description == "second"

    code, out, _ = _run("describe", "fraud", "flags card fraud")
    assert code == 0 and home.models.get("fraud").description == "flags card fraud"
    code, out, _ = _run("describe", "fraud", "the first cut", "--version", "1")
    assert code == 0 and home.models.get_version("fraud", 1).description == "the first cut"


def test_bad_input_changes_nothing(home: Client) -> None:
    run_id = home.models.get_version("churn", 1).run_id
    for args, says in (
        (["create", "churn"], "already exists"),
        (["create", "bad/name"], "invalid"),
        (["create", "x", "--tag", "novalue"], "KEY=VALUE"),
        (["register", "churn", run_id, "--path", "nothing-here"], "nothing-here"),
        (["register", "nope", run_id], "not found"),
        (["delete-version", "churn", "9"], "has no version 9"),
        (["tag", "churn", "novalue"], "KEY=VALUE"),
        (["tag", "churn", "ok=1", f"{'k' * 300}=too-long-key", "--version", "1"], "error"),
        (["describe", "churn", "text", "--version", "9"], "has no version 9"),
    ):
        code, _, err = _run(*args)
        assert code == 1, args
        assert err.startswith("error") and says in err and "Traceback" not in err, args
    assert [m.name for m in home.models.list()] == ["churn"]
    assert [v.version for v in home.models.list_versions("churn")] == [2, 1]
    assert home.models.get("churn").tags == {}
    assert home.models.get_version("churn", 1).tags == {}


def test_tags_of_models_and_versions(home: Client) -> None:
    code, out, _ = _run("tag", "churn", "team=growth", "tier=gold")
    assert code == 0 and "churn: 2 tag(s) set" in out
    assert home.models.get("churn").tags == {"team": "growth", "tier": "gold"}
    code, out, _ = _run("tag", "churn", "stage=candidate", "--version", "2")
    assert code == 0 and "churn/2: 1 tag(s) set" in out
    assert home.models.get_version("churn", 2).tags == {"stage": "candidate"}
    code, out, _ = _run("untag", "churn", "tier")
    assert code == 0 and home.models.get("churn").tags == {"team": "growth"}
    code, out, _ = _run("untag", "churn", "stage", "-V", "2")
    assert code == 0 and home.models.get_version("churn", 2).tags == {}


def test_alias_can_be_removed(home: Client) -> None:
    code, out, _ = _run("alias", "churn", "champion", "--delete")
    assert code == 0 and "churn@champion removed" in out
    assert home.models.get("churn").aliases == {}
    for args in (["alias", "churn", "champion"], ["alias", "churn", "x", "1", "--delete"]):
        code, _, err = _run(*args)
        assert code == 1 and "Traceback" not in err and err
    code, _, err = _run("alias", "churn", "champion", "--delete")
    assert code == 1 and "has no alias" in err


def test_delete_version_and_model(home: Client) -> None:
    code, out, _ = _run("delete-version", "churn", "1")
    assert code == 0 and "churn/1 deleted" in out
    assert [v.version for v in home.models.list_versions("churn")] == [2]
    assert home.models.get("churn").aliases == {}
    code, _, err = _run("delete", "churn")
    assert code == 1 and "--yes" in err
    assert [m.name for m in home.models.list()] == ["churn"]
    code, out, _ = _run("delete", "churn", "--yes")
    assert code == 0 and "model churn deleted" in out
    assert home.models.list() == []


def test_download(home: Client, tmp_path: Path) -> None:
    code, out, _ = _run("download", "churn@champion", str(tmp_path / "dl"))
    assert code == 0 and "churn/1: 3 file(s)" in out
    for f in home.models.get_version("churn", 1).files or []:
        assert blake3((tmp_path / "dl" / f.path).read_bytes()).hexdigest() == f.hash
    code, out, _ = _run("download", "models:/churn/2", str(tmp_path / "dl2"))
    assert code == 0 and "churn/2" in out
    code, _, err = _run("download", "/tmp/some/folder", str(tmp_path / "dl3"))
    assert code == 1 and "looks like a path" in err and not (tmp_path / "dl3").exists()
