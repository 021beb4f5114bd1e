"""Creating many whole runs in one request (client.runs.create_many)."""

from __future__ import annotations

import pytest

from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput, NotFound

TS = 1_700_000_000_000


def _count(client: Client, exp_id: int) -> int:
    return len(client.runs.search([exp_id], max_results=10_000, include_deleted=True).runs)


def test_create_many_stores_whole_runs(client: Client) -> None:
    exp = client.experiments.create("sweep")
    parent = client.runs.create(exp.id, name="parent").id
    specs = [
        {
            "name": f"trial-{i}",
            "params": {"lr": 0.1 * (i + 1), "depth": i},
            "tags": {"kind": "trial"},
            "metrics": [("loss", 1.0 / (s + 1 + i), s, TS + s) for s in range(3)]
            + [("acc", 0.5 + i / 10, 0, TS)],
            "status": "finished",
            "start_time": TS,
            "end_time": TS + 1000 + i,
            "parent_run_id": parent,
        }
        for i in range(3)
    ]
    specs.append({"name": "still-going", "metrics": []})  # an empty list: no metrics
    ids = client.runs.create_many(exp.id, specs)
    assert len(ids) == len(set(ids)) == 4

    for i, run_id in enumerate(ids[:3]):
        run = client.runs.get(run_id)
        assert run.name == f"trial-{i}"
        assert run.status == "finished"
        assert (run.start_time, run.end_time) == (TS, TS + 1000 + i)
        assert run.params == {"depth": str(i), "lr": str(0.1 * (i + 1))}
        assert run.tags == {"kind": "trial"}
        assert run.metrics == {
            "loss": pytest.approx(1.0 / (3 + i)),
            "acc": pytest.approx(0.5 + i / 10),
        }
        assert run.parent_run_id == parent
        history = client.runs.metric_history(run_id, "loss")
        assert history.steps == [0, 1, 2]
        assert history.timestamps == [TS, TS + 1, TS + 2]

    open_run = client.runs.get(ids[3])
    assert (open_run.status, open_run.end_time, open_run.params) == ("running", None, {})

    # The new runs are ordinary runs: search sees their latest metrics and params.
    page = client.runs.search([exp.id], filter="metrics.acc > 0.55", order_by="metrics.acc DESC")
    assert [r.name for r in page.runs] == ["trial-2", "trial-1"]


def test_a_final_status_without_end_time_ends_the_run_now(client: Client) -> None:
    exp = client.experiments.create("ends")
    (run_id,) = client.runs.create_many(exp.id, [{"status": "failed"}])
    run = client.runs.get(run_id)
    assert run.status == "failed"
    assert run.end_time is not None and run.end_time >= run.start_time


def test_more_than_one_request_worth_is_split(client: Client) -> None:
    exp = client.experiments.create("many")
    ids = client.runs.create_many(exp.id, [{"params": {"i": i}} for i in range(1001)])
    assert len(set(ids)) == 1001
    assert _count(client, exp.id) == 1001
    assert client.runs.get(ids[1000]).params == {"i": "1000"}


@pytest.mark.parametrize(
    ("runs", "error", "fragment"),
    [
        ([{"name": "ok"}, {"metrics": [("m", 1.0)]}], InvalidInput, "metrics must be"),
        ([{"name": "ok"}, {"colour": "red"}], InvalidInput, "unknown run fields"),
        ([{"name": "ok"}, {"status": "paused"}], InvalidInput, "status"),
        ([{"name": "ok"}, {"start_time": TS, "end_time": TS - 1}], InvalidInput, "before"),
        ([{"name": "ok"}, {"params": {"k" * 300: 1}}], InvalidInput, "250"),
        ([{"name": "ok"}, {"parent_run_id": "f" * 32}], NotFound, "parent run"),
    ],
)
def test_bad_input_creates_nothing(
    client: Client, runs: list[dict], error: type[Exception], fragment: str
) -> None:
    exp = client.experiments.create("strict")
    with pytest.raises(error, match=fragment):
        client.runs.create_many(exp.id, runs)
    assert _count(client, exp.id) == 0


def test_deleted_experiment_refuses_runs(client: Client) -> None:
    exp = client.experiments.create("gone")
    client.experiments.delete(exp.id)
    with pytest.raises(Conflict, match="deleted"):
        client.runs.create_many(exp.id, [{"name": "late"}])
    client.experiments.restore(exp.id)
    assert _count(client, exp.id) == 0


def test_empty_request_is_refused(client: Client) -> None:
    exp = client.experiments.create("empty")
    with pytest.raises(InvalidInput):
        client.api.post(f"/experiments/{exp.id}/runs/bulk", {"runs": []})
