"""Versions and aliases: numbering, bad input, concurrency, deletion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput, NotFound

from .conftest import log_model, new_run, train


@pytest.fixture
def run_id(client: Client, tmp_path: Path) -> str:
    model, _ = train(0)
    return log_model(client, model, tmp_path)


def _unchanged(client: Client, name: str) -> None:
    assert client.models.list_versions(name) == []
    assert client.models.get(name).latest_version is None


def test_bad_version_input_changes_nothing(client: Client, run_id: str, tmp_path: Path) -> None:
    client.models.create("m")
    with pytest.raises(NotFound, match="run 'nope' not found"):
        client.models.create_version("m", "nope")
    with pytest.raises(NotFound, match="not found"):
        client.models.create_version("missing", run_id)
    with pytest.raises(InvalidInput, match="no artifacts under 'weights'"):
        client.models.create_version("m", run_id, source_path="weights")
    with pytest.raises(InvalidInput):
        client.models.create_version("m", run_id, source_path="../model")
    with pytest.raises(InvalidInput):
        client.models.create_version("m", run_id, tags={"": "x"})
    _unchanged(client, "m")


def test_run_of_another_project_is_refused(client: Client, tmp_path: Path) -> None:
    client.projects.create("other")
    model, _ = train(0)
    foreign = log_model(client, model, tmp_path, project="other")
    client.models.create("m")
    with pytest.raises(NotFound, match="not found in this project"):
        client.models.create_version("m", foreign)
    _unchanged(client, "m")
    # The same run registers fine in its own project.
    client.models.create("m", project="other")
    assert client.models.create_version("m", foreign, project="other").version == 1


def test_deleted_run_is_refused(client: Client, run_id: str) -> None:
    client.models.create("m")
    client.runs.delete(run_id)
    with pytest.raises(InvalidInput, match="is deleted"):
        client.models.create_version("m", run_id)
    _unchanged(client, "m")
    client.runs.restore(run_id)
    assert client.models.create_version("m", run_id).version == 1


def test_bad_descriptor_is_refused(client: Client, tmp_path: Path) -> None:
    run = new_run(client)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "shipyard-model.json").write_text("{not json")
    client.artifacts.upload_dir(run, folder, "model")
    client.models.create("m")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        client.models.create_version("m", run)
    _unchanged(client, "m")


@pytest.mark.parametrize("alias", ["1", "42", "latest", "has space", "a@b", "x" * 101])
def test_bad_alias_changes_nothing(client: Client, run_id: str, alias: str) -> None:
    client.models.create("m")
    client.models.create_version("m", run_id)
    with pytest.raises(InvalidInput, match="alias"):
        client.models.set_alias("m", alias, 1)
    assert client.models.get("m").aliases == {}


def test_alias_errors(client: Client, run_id: str) -> None:
    client.models.create("m")
    client.models.create_version("m", run_id)
    with pytest.raises(NotFound, match="version 5"):
        client.models.set_alias("m", "champion", 5)
    with pytest.raises(NotFound, match="alias 'champion'"):
        client.models.get_version("m", "champion")
    with pytest.raises(NotFound):
        client.models.delete_alias("m", "champion")
    client.models.set_alias("m", "champion", 1)
    client.models.delete_alias("m", "champion")
    assert client.models.get("m").aliases == {}
    with pytest.raises(InvalidInput):
        client.models.resolve("m/0")
    with pytest.raises(InvalidInput):
        client.models.resolve(" bad name@x")


def test_resolve_references(client: Client, run_id: str) -> None:
    client.models.create("m")
    for _ in range(3):
        client.models.create_version("m", run_id)
    client.models.set_alias("m", "champion", 2)
    assert client.models.resolve("m@champion").version == 2
    assert client.models.resolve("m/1").version == 1
    assert client.models.resolve("m").version == 3
    assert client.models.get_version("m", "latest").version == 3
    assert [v.version for v in client.models.list_versions("m")] == [3, 2, 1]
    assert client.models.list_versions("m")[0].files is None


def test_concurrent_version_creation_gets_distinct_numbers(client: Client, run_id: str) -> None:
    client.models.create("m")
    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(lambda _: client.models.create_version("m", run_id), range(16)))
    assert sorted(v.version for v in versions) == list(range(1, 17))
    assert client.models.get("m").latest_version == 16


def test_update_tag_and_delete_version(client: Client, run_id: str) -> None:
    client.models.create("m")
    for _ in range(3):
        client.models.create_version("m", run_id)
    client.models.set_alias("m", "champion", 3)
    assert client.models.update_version("m", 2, "better").description == "better"
    client.models.set_version_tag("m", 2, "validated", "yes")
    assert client.models.get_version("m", 2).tags == {"validated": "yes"}
    client.models.delete_version_tag("m", 2, "validated")
    with pytest.raises(NotFound):
        client.models.delete_version_tag("m", 2, "validated")

    client.models.delete_version("m", 3)
    with pytest.raises(NotFound):
        client.models.get_version("m", 3)
    model = client.models.get("m")
    assert model.aliases == {} and model.latest_version == 2
    # A deleted number is never reused: "m/3" must not change meaning.
    assert client.models.create_version("m", run_id).version == 4
    assert [v.version for v in client.models.list_versions("m")] == [4, 2, 1]
    with pytest.raises(NotFound):
        client.models.delete_version("m", 3)


def test_version_tags_and_descriptions_follow_the_rules_of_run_tags(
    client: Client, run_id: str
) -> None:
    client.models.create("m")
    client.models.create_version("m", run_id, description="kept", tags={"team": "risk"})
    for tags, problem in (
        ({"k": "a\x00b"}, "NUL"),
        ({"k\x00": "v"}, "NUL"),
        ({"k": "v" * 8001}, "8000"),
        ({"a..b": "v"}, "'..'"),
    ):
        with pytest.raises(InvalidInput, match=problem):
            client.models.set_version_tags("m", 1, {"ok": "v", **tags})
        with pytest.raises(InvalidInput, match=problem):
            client.models.create_version("m", run_id, tags=tags)
    with pytest.raises(InvalidInput, match="NUL"):
        client.models.update_version("m", 1, "a\x00b")
    with pytest.raises(InvalidInput, match="NUL"):
        client.models.create_version("m", run_id, description="a\x00b")
    version = client.models.get_version("m", 1)
    assert (version.description, version.tags) == ("kept", {"team": "risk"})
    assert [v.version for v in client.models.list_versions("m")] == [1]


def test_download_of_unknown_file_is_404(client: Client, run_id: str) -> None:
    client.models.create("m")
    client.models.create_version("m", run_id)
    with pytest.raises(NotFound, match="no file"):
        client.api.get(f"/projects/{client.project}/models/m/versions/1/files/nope.bin")


def test_every_mutation_is_audited(client: Client, run_id: str) -> None:
    client.models.create("m")
    client.models.create_version("m", run_id)
    client.models.set_alias("m", "champion", 1)
    client.models.set_tag("m", "k", "v")
    client.models.update("m", "d")
    client.models.delete_alias("m", "champion")
    client.models.delete_version("m", 1)
    client.models.delete("m")
    actions = [e.action for e in client.audit.list(limit=1000) if e.action.startswith("models.")]
    assert sorted(actions) == sorted(
        [
            "models.create",
            "models.create_version",
            "models.set_alias",
            "models.set_tags",
            "models.update",
            "models.delete_alias",
            "models.delete_version",
            "models.delete",
        ]
    )


def test_duplicate_model_is_conflict(client: Client) -> None:
    client.models.create("m", "first")
    with pytest.raises(Conflict):
        client.models.create("m", "second")
    assert client.models.get("m").description == "first"
    assert [m.name for m in client.models.list()] == ["m"]


def test_versions_come_a_page_at_a_time(client: Client, run_id: str) -> None:
    client.models.create("m")
    for _ in range(5):
        client.models.create_version("m", run_id)
    client.models.delete_version("m", 4)  # deleted versions are not listed
    pages: list[list[int]] = []
    token: str | None = None
    while True:
        page = client.models.version_page("m", max_results=2, page_token=token)
        pages.append([v.version for v in page.versions])
        token = page.next_page_token
        if token is None:
            break
    assert pages == [[5, 3], [2, 1]]
    assert [v.version for v in client.models.list_versions("m")] == [5, 3, 2, 1]
    assert client.models.version_page("m", max_results=4).next_page_token is None
    # Bad paging is a clear 4xx, an unknown model a 404.
    for bad in (0, 1001):
        with pytest.raises(InvalidInput, match="max_results"):
            client.models.version_page("m", max_results=bad)
    with pytest.raises(InvalidInput, match="page_token"):
        client.models.version_page("m", page_token="not-a-token")
    with pytest.raises(NotFound):
        client.models.version_page("nope")
