"""Registered models: create, get, search, describe, tag, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound

from .conftest import log_model, train


def test_create_get_update(client: Client) -> None:
    created = client.models.create("fraud", "fraud detector", tags={"team": "risk"})
    assert (created.name, created.description, created.tags) == (
        "fraud",
        "fraud detector",
        {"team": "risk"},
    )
    assert created.latest_version is None and created.aliases == {}
    assert client.models.get("fraud") == created
    updated = client.models.update("fraud", "better words")
    assert updated.description == "better words"
    assert updated.updated_at >= created.updated_at


@pytest.mark.parametrize("name", ["space at end ", " lead", "a/b", "a@b", "-lead", "x" * 251])
def test_bad_names_change_nothing(client: Client, name: str) -> None:
    with pytest.raises(InvalidInput):
        client.models.create(name)
    assert client.models.list() == []


def test_unknown_model(client: Client) -> None:
    for call in (
        lambda: client.models.get("nope"),
        lambda: client.models.update("nope", "x"),
        lambda: client.models.delete("nope"),
        lambda: client.models.set_tag("nope", "k", "v"),
        lambda: client.models.list_versions("nope"),
        lambda: client.models.get_version("nope", 1),
    ):
        with pytest.raises(NotFound):
            call()


def test_tags(client: Client) -> None:
    client.models.create("m")
    client.models.set_tag("m", "team", "risk")
    client.models.set_tags("m", {"team": "growth", "tier": "1"})
    assert client.models.get("m").tags == {"team": "growth", "tier": "1"}
    client.models.delete_tag("m", "tier")
    assert client.models.get("m").tags == {"team": "growth"}
    with pytest.raises(NotFound):
        client.models.delete_tag("m", "tier")
    with pytest.raises(InvalidInput):
        client.models.set_tags("m", {"": "x", "ok": "y"})
    assert client.models.get("m").tags == {"team": "growth"}


def test_models_are_per_project(client: Client) -> None:
    client.projects.create("other")
    client.models.create("m", "here")
    client.models.create("m", "there", project="other")
    assert client.models.get("m").description == "here"
    assert client.models.get("m", project="other").description == "there"
    with pytest.raises(NotFound):
        client.models.get("m", project="missing")


def test_search(client: Client) -> None:
    for name, tags in [
        ("fraud-eu", {"team": "risk", "region": "eu"}),
        ("fraud-us", {"team": "risk", "region": "us"}),
        ("churn", {"team": "growth"}),
        ("Fraud_legacy", {}),
        ("ranker", {"team": "search"}),
    ]:
        client.models.create(name, tags=tags)
    names = lambda models: [m.name for m in models]  # noqa: E731

    # Name order depends on the database's collation (case): compare as sets.
    assert set(names(client.models.list())) == {
        "fraud-eu",
        "fraud-us",
        "churn",
        "Fraud_legacy",
        "ranker",
    }
    assert names(client.models.list())[-1] == "ranker"
    assert set(names(client.models.list("fraud"))) == {"fraud-eu", "fraud-us", "Fraud_legacy"}
    assert set(names(client.models.list(name_like="fraud-%"))) == {"fraud-eu", "fraud-us"}
    # '_' in a substring query is a literal, not a LIKE wildcard.
    assert names(client.models.list("d_l")) == ["Fraud_legacy"]
    assert set(names(client.models.list(tags={"team": "risk"}))) == {"fraud-eu", "fraud-us"}
    assert names(client.models.list(tags={"team": "risk", "region": "us"})) == ["fraud-us"]
    assert set(names(client.models.list(tags={"region": None}))) == {"fraud-eu", "fraud-us"}
    assert names(client.models.list("fraud", tags={"region": "eu"})) == ["fraud-eu"]

    client.models.update("churn", "touched last")
    assert client.models.list(order_by=["updated_at DESC"])[0].name == "churn"

    pages, token = [], None
    while True:
        page = client.models.search(max_results=2, page_token=token, order_by=["name DESC"])
        pages.append(names(page.models))
        token = page.next_page_token
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == names(client.models.list(order_by=["name DESC"]))

    for bad in (
        lambda: client.models.search(order_by=["size"]),
        lambda: client.models.search(order_by=["name sideways"]),
        lambda: client.models.search(page_token="garbage"),
        lambda: client.models.search(max_results=0),
    ):
        with pytest.raises(InvalidInput):
            bad()


def test_delete_model_removes_versions(client: Client, tmp_path: Path) -> None:
    model, _ = train(0)
    run_id = log_model(client, model, tmp_path)
    client.models.create("m")
    client.models.create_version("m", run_id)
    client.models.set_alias("m", "champion", 1)
    client.models.delete("m")
    with pytest.raises(NotFound):
        client.models.get("m")
    # The name is free again and numbering starts over for the new model.
    client.models.create("m")
    assert client.models.create_version("m", run_id).version == 1
    # The run's artifacts are untouched.
    assert client.artifacts.read_bytes(run_id, "model/shipyard-model.json")


BAD_TAGS = [
    ({"k": "a\x00b"}, "NUL"),
    ({"k\x00": "v"}, "NUL"),
    ({"k": "v" * 8001}, "8000"),
    ({"a..b": "v"}, "'..'"),
    ({"/abs": "v"}, "start with '/'"),
    ({"k" * 251: "v"}, "longer than 250"),
]


@pytest.mark.parametrize(("tags", "problem"), BAD_TAGS)
def test_tags_follow_the_rules_of_run_tags(
    client: Client, tags: dict[str, str], problem: str
) -> None:
    # The same on SQLite and PostgreSQL (whose text holds no NUL), as for run tags.
    client.models.create("m", "kept", tags={"team": "risk"})
    with pytest.raises(InvalidInput, match=problem):
        client.models.set_tags("m", {"ok": "v", **tags})
    with pytest.raises(InvalidInput, match=problem):
        client.models.create("m2", tags=tags)
    assert client.models.get("m").tags == {"team": "risk"}
    assert [m.name for m in client.models.list()] == ["m"]
    # The longest value a run tag may hold is fine.
    assert client.models.set_tag("m", "long", "v" * 8000) is None


def test_descriptions_refuse_nul_on_both_databases(client: Client) -> None:
    client.models.create("m", "kept")
    with pytest.raises(InvalidInput, match="NUL"):
        client.models.update("m", "a\x00b")
    with pytest.raises(InvalidInput, match="NUL"):
        client.models.create("m2", "a\x00b")
    assert client.models.get("m").description == "kept"
    assert [m.name for m in client.models.list()] == ["m"]
