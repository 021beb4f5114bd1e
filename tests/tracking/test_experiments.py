"""Experiments through the SDK, in both modes (embedded/SQLite, remote/PostgreSQL)."""

from __future__ import annotations

import pytest

from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput, NotFound


def test_create_get_list(client: Client) -> None:
    created = client.experiments.create("cls", "image classifier", tags={"team": "vision", "n": 3})
    assert created.name == "cls" and created.lifecycle == "active"
    assert created.tags == {"n": "3", "team": "vision"}
    assert created.created_at == created.updated_at > 0
    assert client.experiments.get(created.id) == created
    assert client.experiments.get_by_name("cls") == created
    assert [e.name for e in client.experiments.list()] == ["cls"]


def test_names_are_unique_per_project(client: Client) -> None:
    first = client.experiments.create("exp")
    with pytest.raises(Conflict):
        client.experiments.create("exp", "again")
    client.projects.create("other")
    elsewhere = client.experiments.create("exp", project="other")
    assert elsewhere.id != first.id and elsewhere.project_id != first.project_id
    assert [e.id for e in client.experiments.list()] == [first.id]
    assert client.experiments.get(first.id).description == ""


def test_get_or_create_is_idempotent(client: Client) -> None:
    a = client.experiments.get_or_create("sweep")
    b = client.experiments.get_or_create("sweep")
    assert a.id == b.id
    assert len(client.experiments.list()) == 1


def test_odd_names_round_trip(client: Client) -> None:
    for name in ["team/exp 1", "50% done?", "a#b", "ünïcode", ".", "..", "...", "a/.."]:
        created = client.experiments.create(name)
        assert client.experiments.get_by_name(name).id == created.id
        assert client.experiments.get_or_create(name).id == created.id


def test_dot_keys_reach_their_own_routes(client: Client) -> None:
    """A URL resolves the segments ``.`` and ``..`` away: sent as they are, a tag named
    ``.`` was deleted from ``/runs/<id>/tags`` (a redirect the SDK took for success)."""
    run = client.runs.create()
    client.runs.set_tag(run.id, ".", "v")
    client.runs.set_tag(run.id, "x", "w")
    client.runs.log_batch(run.id, metrics=[(".", 1.0, 0, 1), ("x", 2.0, 0, 1)])
    assert client.runs.metric_history(run.id, ".").values == [1.0]
    client.runs.delete_tag(run.id, ".")
    assert client.runs.get(run.id).tags == {"x": "w"}


def test_bad_names_change_nothing(client: Client) -> None:
    for name in ["", " padded", "trailing\t", "x" * 501]:
        with pytest.raises(InvalidInput):
            client.experiments.create(name)
    assert client.experiments.list(include_deleted=True) == []


def test_bad_tags_change_nothing(client: Client) -> None:
    for tags in ({"": "x"}, {"/abs": "x"}, {"a/../b": "x"}, {"k" * 251: "x"}):
        with pytest.raises(InvalidInput):
            client.experiments.create("tagged", tags=tags)
    assert client.experiments.list() == []


def test_update_and_rename(client: Client) -> None:
    exp = client.experiments.create("old")
    taken = client.experiments.create("taken")
    renamed = client.experiments.update(exp.id, name="new", description="better")
    assert (renamed.name, renamed.description) == ("new", "better")
    assert renamed.updated_at >= exp.updated_at
    with pytest.raises(NotFound):
        client.experiments.get_by_name("old")
    with pytest.raises(Conflict):
        client.experiments.update(exp.id, name="taken")
    assert client.experiments.get(exp.id).name == "new"
    assert client.experiments.get(taken.id).name == "taken"
    # A run created by the old name now lands in a new experiment, not the renamed one.
    run = client.runs.create("old")
    assert run.experiment_id not in (exp.id, taken.id)


def test_tags_can_change(client: Client) -> None:
    exp = client.experiments.create("tagged")
    client.experiments.set_tag(exp.id, "stage", "dev")
    client.experiments.set_tag(exp.id, "stage", "prod")
    client.experiments.set_tag(exp.id, "owner", "ana")
    assert client.experiments.get(exp.id).tags == {"owner": "ana", "stage": "prod"}
    with pytest.raises(InvalidInput):
        client.experiments.set_tag(exp.id, "", "x")
    assert client.experiments.get(exp.id).tags == {"owner": "ana", "stage": "prod"}


def test_delete_and_restore(client: Client) -> None:
    keep = client.experiments.create("keep")
    gone = client.experiments.create("gone")
    client.experiments.delete(gone.id)
    assert [e.name for e in client.experiments.list()] == ["keep"]
    listed = {e.name: e.lifecycle for e in client.experiments.list(include_deleted=True)}
    assert listed == {"gone": "deleted", "keep": "active"}
    assert client.experiments.get(gone.id).lifecycle == "deleted"
    with pytest.raises(Conflict):
        client.runs.create(gone.id)
    with pytest.raises(Conflict):  # the name stays taken while deleted
        client.experiments.create("gone")
    client.experiments.restore(gone.id)
    assert [e.name for e in client.experiments.list()] == ["gone", "keep"]
    assert client.runs.create(gone.id).experiment_id == gone.id
    assert client.experiments.get(keep.id).lifecycle == "active"


def test_unknown_ids_are_not_found(client: Client) -> None:
    calls = [
        lambda: client.experiments.get(999),
        lambda: client.experiments.update(999, name="x"),
        lambda: client.experiments.delete(999),
        lambda: client.experiments.restore(999),
        lambda: client.experiments.set_tag(999, "k", "v"),
        lambda: client.experiments.get_by_name("nope"),
        lambda: client.experiments.list(project="no-such-project"),
        lambda: client.experiments.create("x", project="no-such-project"),
        lambda: client.runs.create(999),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert client.experiments.list(include_deleted=True) == []


def test_non_numeric_experiment_id_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound):
        client.api.get("/experiments/abc")


def test_every_change_is_audited(client: Client) -> None:
    exp = client.experiments.create("audited")
    client.experiments.update(exp.id, description="d")
    client.experiments.set_tag(exp.id, "k", "v")
    client.experiments.delete(exp.id)
    client.experiments.restore(exp.id)
    events = client.audit.list(object_type="experiment", object_id=exp.id)
    assert sorted(e.action for e in events) == sorted(
        [
            "experiments.create",
            "experiments.update",
            "experiments.set_tags",
            "experiments.delete",
            "experiments.restore",
        ]
    )
