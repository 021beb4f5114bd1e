"""Runs through the SDK: creation, lifecycle, nesting, delete/restore, bad input."""

from __future__ import annotations

import pytest

from shipyard.client import Client
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound


def _all_runs(client: Client) -> list[str]:
    return [r.id for r in client.runs.search(include_deleted=True, max_results=1000).runs]


def test_create_carries_everything_in_one_request(client: Client) -> None:
    before = now_ms()
    run = client.runs.create(
        "train",
        name="first",
        params={"lr": 0.01, "layers": 3},
        tags={"stage": "dev"},
        code_version={"git_commit": "abc123", "dirty": False},
        environment={"python": "3.11", "packages": {"numpy": "2.0"}},
    )
    assert run.status == "running" and run.lifecycle == "active"
    assert run.name == "first" and run.end_time is None and run.start_time >= before
    assert run.params == {"layers": "3", "lr": "0.01"}
    assert run.tags == {"stage": "dev"} and run.metrics == {}
    assert run.code_version == {"git_commit": "abc123", "dirty": False}
    assert run.environment == {"python": "3.11", "packages": {"numpy": "2.0"}}
    assert client.runs.get(run.id) == run
    assert client.experiments.get_by_name("train").id == run.experiment_id
    assert run.user


def test_default_experiment_and_generated_name(client: Client) -> None:
    run = client.runs.create()
    assert client.experiments.get(run.experiment_id).name == "default"
    assert run.name and len(run.id) == 32
    assert client.runs.create(start_time=1234).start_time == 1234


def test_lifecycle(client: Client) -> None:
    run = client.runs.create("life")
    ended = client.runs.end(run.id)
    assert ended.status == "finished" and ended.end_time is not None
    assert ended.end_time >= run.start_time
    reopened = client.runs.update(run.id, status="running")
    assert reopened.status == "running" and reopened.end_time is None
    for status in ("failed", "killed"):
        updated = client.runs.update(run.id, status=status)
        assert updated.status == status and updated.end_time is not None
    renamed = client.runs.update(run.id, name="renamed", description="notes")
    assert (renamed.name, renamed.description, renamed.status) == ("renamed", "notes", "killed")
    assert client.runs.get(run.id) == renamed


def test_bad_updates_change_nothing(client: Client) -> None:
    run = client.runs.create("life", start_time=10_000)
    with pytest.raises(InvalidInput):
        client.runs.update(run.id, status="done")
    with pytest.raises(InvalidInput):
        client.runs.update(run.id, status="finished", end_time=5_000)
    with pytest.raises(InvalidInput):
        client.runs.update(run.id, end_time=-1)
    with pytest.raises(InvalidInput):
        client.api.patch(f"/runs/{run.id}", {"stauts": "finished"})
    assert client.runs.get(run.id) == run


def test_nested_runs(client: Client) -> None:
    parent = client.runs.create("sweep", name="parent")
    children = [client.runs.create("sweep", parent_run_id=parent.id) for _ in range(3)]
    assert {c.parent_run_id for c in children} == {parent.id}
    found = client.runs.search(filter=f"parent_run_id = '{parent.id}'").runs
    assert {r.id for r in found} == {c.id for c in children}
    # A parent in another experiment of the project is fine.
    other = client.runs.create("elsewhere", parent_run_id=parent.id)
    assert other.parent_run_id == parent.id


def test_bad_parent_creates_nothing(client: Client) -> None:
    client.projects.create("other")
    foreign = client.runs.create("exp", project="other")
    client.experiments.get_or_create("exp")
    for parent in ("f" * 32, foreign.id):
        with pytest.raises(NotFound):
            client.runs.create("exp", parent_run_id=parent)
    assert _all_runs(client) == []


def test_bad_create_input_creates_nothing(client: Client) -> None:
    exp = client.experiments.create("exp")
    bad_calls = [
        {"params": {"": "x"}},
        {"params": {"/lr": "x"}},
        {"params": {"a/../b": "x"}},
        {"params": {"p" * 251: "x"}},
        {"params": {"long": "v" * 6001}},
        {"tags": {"..": "x"}},
        {"name": "n" * 251},
        {"start_time": -5},
        {"parmas": {"lr": "1"}},
    ]
    for body in bad_calls:
        with pytest.raises(InvalidInput):
            client.api.post(f"/experiments/{exp.id}/runs", body)
    assert _all_runs(client) == []


def test_delete_and_restore(client: Client) -> None:
    keep = client.runs.create("exp", name="keep")
    gone = client.runs.create("exp", name="gone")
    client.runs.delete(gone.id)
    assert client.runs.get(gone.id).lifecycle == "deleted"
    assert [r.id for r in client.runs.search().runs] == [keep.id]
    assert set(_all_runs(client)) == {keep.id, gone.id}
    with pytest.raises(Conflict):
        client.runs.log_metric(gone.id, "loss", 1.0)
    with pytest.raises(Conflict):
        client.runs.update(gone.id, status="finished")
    assert client.runs.get(gone.id).metrics == {}
    client.runs.restore(gone.id)
    restored = client.runs.get(gone.id)
    assert restored.lifecycle == "active" and restored.status == "running"
    assert {r.id for r in client.runs.search().runs} == {keep.id, gone.id}


def test_unknown_run_is_not_found_everywhere(client: Client) -> None:
    missing = "0" * 32
    calls = [
        lambda: client.runs.get(missing),
        lambda: client.runs.update(missing, status="finished"),
        lambda: client.runs.end(missing),
        lambda: client.runs.delete(missing),
        lambda: client.runs.restore(missing),
        lambda: client.runs.log_metric(missing, "m", 1.0),
        lambda: client.runs.log_param(missing, "p", 1),
        lambda: client.runs.set_tag(missing, "t", 1),
        lambda: client.runs.metric_history(missing, "m"),
        lambda: client.runs.get("not-a-run-id"),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()


def test_one_audit_event_per_change(client: Client) -> None:
    run = client.runs.create("audited", params={"a": 1})
    client.runs.log_batch(run.id, metrics=[("m", float(i), i, i) for i in range(500)])
    client.runs.update(run.id, description="x")
    client.runs.delete(run.id)
    client.runs.restore(run.id)
    events = client.audit.list(object_type="run", object_id=run.id)
    assert sorted(e.action for e in events) == sorted(
        ["runs.create", "runs.log_batch", "runs.update", "runs.delete", "runs.restore"]
    )


def test_delete_a_tag(client: Client) -> None:
    run = client.runs.create(tags={"keep": "1", "drop/me": "2"})
    client.runs.delete_tag(run.id, "drop/me")
    assert client.runs.get(run.id).tags == {"keep": "1"}
    with pytest.raises(NotFound, match="No tag with name: drop/me"):
        client.runs.delete_tag(run.id, "drop/me")
    events = client.audit.list(action="runs.delete_tag", object_id=run.id)
    assert [e.details["key"] for e in events] == ["drop/me"]
    client.runs.delete(run.id)
    with pytest.raises(Conflict, match="restore it"):
        client.runs.delete_tag(run.id, "keep")
