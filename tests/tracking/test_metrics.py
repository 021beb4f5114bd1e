"""Logging to runs: the columnar batch, param immutability, histories, concurrency."""

from __future__ import annotations

import math
import sys
import threading

import pytest

from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput
from shipyard.tracking.types import Run


def _run(client: Client, **kwargs: object) -> Run:
    return client.runs.create("metrics", **kwargs)  # type: ignore[arg-type]


def _count(client: Client, run_id: str, key: str) -> int:
    return len(client.runs.metric_history(run_id, key).steps)


def test_batch_logs_everything(client: Client) -> None:
    run = _run(client)
    points = [(f"m{i % 10}", i / 10, i // 10, 1_000 + i) for i in range(1000)]
    client.runs.log_batch(run.id, metrics=points, params={"lr": 0.1}, tags={"stage": "dev"})
    got = client.runs.get(run.id)
    assert got.params == {"lr": "0.1"} and got.tags == {"stage": "dev"}
    assert got.metrics == {f"m{k}": (990 + k) / 10 for k in range(10)}
    hist = client.runs.metric_history(run.id, "m3")
    assert hist.key == "m3"
    assert list(hist.steps) == list(range(100))
    assert list(hist.values) == [(i * 10 + 3) / 10 for i in range(100)]
    assert list(hist.timestamps) == [1_003 + i * 10 for i in range(100)]


def test_many_distinct_keys_in_one_batch(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[(f"layer{i}/norm", float(i), 0, 1) for i in range(2000)])
    assert len(client.runs.get(run.id).metrics) == 2000
    assert client.runs.metric_history(run.id, "layer7/norm").values == [7.0]


def test_history_is_ordered_by_step_then_time(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[("loss", 3.0, 3, 30), ("loss", 1.0, 1, 11)])
    client.runs.log_batch(run.id, metrics=[("loss", 2.0, 2, 20), ("loss", 0.5, 1, 10)])
    hist = client.runs.metric_history(run.id, "loss")
    assert list(hist.steps) == [1, 1, 2, 3]
    assert list(hist.timestamps) == [10, 11, 20, 30]
    assert list(hist.values) == [0.5, 1.0, 2.0, 3.0]
    assert client.runs.get(run.id).metrics == {"loss": 3.0}


def test_points_at_the_same_step_and_time_are_ordered_by_value(client: Client) -> None:
    # Points carry no id: within one step and time the order is by value, missing
    # (NaN) last, on both databases, however the points were logged.
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[("loss", 2.0, 5, 50), ("loss", math.nan, 5, 50)])
    client.runs.log_batch(run.id, metrics=[("loss", -1.0, 5, 50), ("loss", 2.0, 5, 50)])
    client.runs.log_batch(run.id, metrics=[("loss", 9.0, 4, 60)])
    hist = client.runs.metric_history(run.id, "loss")
    assert list(hist.steps) == [4, 5, 5, 5, 5]
    assert list(hist.values) == [9.0, -1.0, 2.0, 2.0, None]


def test_latest_keeps_the_highest_step(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[("acc", 0.9, 10, 100)])
    client.runs.log_batch(run.id, metrics=[("acc", 0.1, 5, 200)])  # older step, logged later
    assert client.runs.get(run.id).metrics == {"acc": 0.9}
    client.runs.log_batch(run.id, metrics=[("acc", 0.95, 10, 300)])  # same step, newer time
    assert client.runs.get(run.id).metrics == {"acc": 0.95}
    client.runs.log_batch(run.id, metrics=[("acc", 0.5, 10, 50)])  # same step, older time
    assert client.runs.get(run.id).metrics == {"acc": 0.95}
    assert _count(client, run.id, "acc") == 4


def test_each_runs_metric_keeps_its_own_points(client: Client) -> None:
    """Points are stored under their series (run and key): two runs logging the same
    keys, batches interleaved, one of them older than what is stored and one bringing
    a new key, read back exactly their own points."""
    first, second = _run(client), _run(client)
    client.runs.log_batch(first.id, metrics=[("loss", 1.0, 1, 10), ("acc", 0.1, 1, 10)])
    client.runs.log_batch(second.id, metrics=[("loss", 9.0, 1, 10)])
    client.runs.log_batch(first.id, metrics=[("loss", 0.5, 0, 5), ("lr", 0.01, 0, 5)])
    client.runs.log_batch(second.id, metrics=[("acc", 0.9, 2, 20), ("loss", 8.0, 2, 20)])
    assert client.runs.metric_history(first.id, "loss").values == [0.5, 1.0]
    assert client.runs.metric_history(first.id, "acc").values == [0.1]
    assert client.runs.metric_history(first.id, "lr").values == [0.01]
    assert client.runs.metric_history(second.id, "loss").values == [9.0, 8.0]
    assert client.runs.metric_history(second.id, "acc").values == [0.9]
    assert client.runs.metric_history(second.id, "lr").values == []
    assert client.runs.get(first.id).metrics == {"loss": 1.0, "acc": 0.1, "lr": 0.01}
    assert client.runs.get(second.id).metrics == {"loss": 8.0, "acc": 0.9}


def test_nan_is_none_and_infinities_are_the_largest_doubles(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(
        run.id,
        metrics=[
            ("x", 1.0, 0, 1),
            ("x", math.nan, 1, 2),
            ("x", math.inf, 2, 3),
            ("y", math.nan, 0, 1),
            ("z", -math.inf, 0, 1),
        ],
    )
    biggest = sys.float_info.max
    assert list(client.runs.metric_history(run.id, "x").values) == [1.0, None, biggest]
    assert client.runs.get(run.id).metrics == {"x": biggest, "y": None, "z": -biggest}
    found = client.runs.search(filter="metrics.y IS NOT NULL").runs
    assert [r.id for r in found] == [run.id]
    # An infinity still compares and sorts as one.
    assert [r.id for r in client.runs.search(filter="metrics.x > 1e308").runs] == [run.id]
    assert [r.id for r in client.runs.search(filter="metrics.z < -1e308").runs] == [run.id]


def test_log_metric_defaults(client: Client) -> None:
    run = _run(client)
    client.runs.log_metric(run.id, "m", 1.5)
    hist = client.runs.metric_history(run.id, "m")
    assert list(hist.steps) == [0] and list(hist.values) == [1.5]
    assert hist.timestamps[0] >= run.start_time
    # Raw columnar payload without steps and timestamps: steps 0, time of the request.
    client.api.post(f"/runs/{run.id}/batch", {"metrics": {"keys": ["n"], "values": [2]}})
    assert client.runs.metric_history(run.id, "n").values == [2.0]


def test_unknown_key_has_empty_history(client: Client) -> None:
    run = _run(client)
    hist = client.runs.metric_history(run.id, "never")
    assert (list(hist.steps), list(hist.values), list(hist.timestamps)) == ([], [], [])


def test_params_are_immutable_and_a_conflict_stores_nothing(client: Client) -> None:
    run = _run(client, params={"lr": "0.1"})
    client.runs.log_param(run.id, "lr", 0.1)  # same value again is fine
    client.runs.log_batch(run.id, params={"lr": "0.1", "epochs": 5})
    with pytest.raises(Conflict) as info:
        client.runs.log_batch(
            run.id,
            params={"lr": "0.2", "batch": 32},
            tags={"t": "x"},
            metrics=[("loss", 1.0, 0, 1)],
        )
    assert "lr" in info.value.message
    after = client.runs.get(run.id)
    assert after.params == {"epochs": "5", "lr": "0.1"}
    assert after.tags == {} and after.metrics == {}
    assert _count(client, run.id, "loss") == 0


def test_tags_can_change(client: Client) -> None:
    run = _run(client, tags={"stage": "dev"})
    client.runs.set_tag(run.id, "stage", "prod")
    assert client.runs.get(run.id).tags == {"stage": "prod"}


def test_mismatched_columns_store_nothing(client: Client) -> None:
    run = _run(client)
    bad = [
        {"keys": ["a", "b"], "values": [1.0]},
        {"keys": ["a"], "values": [1.0], "steps": [1, 2]},
        {"keys": ["a"], "values": [1.0], "steps": [1], "timestamps": []},
        {"keys": ["a"], "values": ["high"]},
        {"keys": ["a"], "values": [1.0], "steps": [1.5]},
        {"keys": ["a"], "values": [1.0], "steps": [2**63]},
        {"keys": ["a"], "values": [1.0], "timestamps": [-1]},
        {"keys": "a", "values": [1.0]},
        {"keys": ["a"]},
    ]
    for metrics in bad:
        with pytest.raises(InvalidInput):
            client.api.post(f"/runs/{run.id}/batch", {"metrics": metrics, "tags": {"t": "1"}})
    with pytest.raises(InvalidInput):
        client.api.post(f"/runs/{run.id}/batch", {"metricz": {}})
    assert client.runs.get(run.id).metrics == {} and client.runs.get(run.id).tags == {}
    assert _count(client, run.id, "a") == 0


def test_bad_keys_store_nothing(client: Client) -> None:
    run = _run(client)
    for key in ["", "/loss", "a/../b", "..", "k" * 251]:
        with pytest.raises(InvalidInput):
            client.runs.log_batch(run.id, metrics=[("ok", 1.0, 0, 1), (key, 1.0, 0, 1)])
        with pytest.raises(InvalidInput):
            client.runs.log_batch(run.id, params={key: 1}, tags={"t": 1})
        with pytest.raises(InvalidInput):
            client.runs.log_batch(run.id, tags={key: 1}, params={"p": 1})
    got = client.runs.get(run.id)
    assert (got.params, got.tags, got.metrics) == ({}, {}, {})
    assert _count(client, run.id, "ok") == 0
    with pytest.raises(InvalidInput):  # a value that is not a number, caught client-side
        client.runs.log_batch(run.id, metrics=[("ok", "high", 0, 1)])  # type: ignore[list-item]


def test_odd_but_valid_keys(client: Client) -> None:
    run = _run(client)
    keys = ["train/loss", "val loss", "acc@1", "a.b-c_d", "50%", "q?x=1"]
    client.runs.log_batch(run.id, metrics=[(k, 1.0, 0, 1) for k in keys])
    for key in keys:
        assert client.runs.metric_history(run.id, key).values == [1.0]


def test_concurrent_writers_lose_nothing(client: Client) -> None:
    run = _run(client)
    threads, batches, size = 4, 5, 200
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(batches):
                base = (w * batches + b) * size
                points = [("loss", float(base + i), base + i, base + i) for i in range(size)]
                points += [(f"w{w}", 1.0, b, b)]
                client.runs.log_batch(run.id, metrics=points, tags={f"writer{w}": str(b)})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    total = threads * batches * size
    hist = client.runs.metric_history(run.id, "loss")
    assert list(hist.steps) == list(range(total))
    got = client.runs.get(run.id)
    assert got.metrics["loss"] == float(total - 1)
    assert got.tags == {f"writer{w}": str(batches - 1) for w in range(threads)}
    assert all(_count(client, run.id, f"w{w}") == batches for w in range(threads))


def test_last_batch_can_end_the_run(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[("loss", 0.5, 3, 30)], end_status="finished")
    got = client.runs.get(run.id)
    assert got.status == "finished" and got.end_time is not None
    assert got.end_time >= got.start_time and got.metrics == {"loss": 0.5}
    events = client.audit.list(object_type="run", object_id=run.id)
    assert [e.action for e in events] == ["runs.log_batch", "runs.create"]
    # An explicit end time; ending with nothing to log is one request too.
    other = _run(client, start_time=1000)
    client.runs.log_batch(other.id, end_status="killed", end_time=5000)
    got = client.runs.get(other.id)
    assert (got.status, got.end_time) == ("killed", 5000)


def test_a_bad_end_stores_nothing_of_the_batch(client: Client) -> None:
    run = _run(client, start_time=10_000)
    bad = [
        {"status": "done"},
        {"status": "finished", "end_time": 5},  # before the start
        {"status": "finished", "end_time": -1},
    ]
    for extra in bad:
        body = {"metrics": {"keys": ["a"], "values": [1.0]}, "tags": {"t": "1"}, **extra}
        with pytest.raises(InvalidInput):
            client.api.post(f"/runs/{run.id}/batch", body)
    reply = client.api.http.post(
        f"/api/v1/runs/{run.id}/batch",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_input"
    with pytest.raises(InvalidInput):  # the SDK checks the status itself
        client.runs.log_batch(run.id, metrics=[("a", 1.0, 0, 1)], end_status="running")
    got = client.runs.get(run.id)
    assert (got.status, got.end_time, got.metrics, got.tags) == ("running", None, {}, {})
    assert _count(client, run.id, "a") == 0


def test_history_orders_repeated_steps_by_time(client: Client) -> None:
    run = _run(client)
    client.runs.log_batch(run.id, metrics=[("x", 1.0, 0, 50), ("x", 2.0, 1, 10)])
    client.runs.log_batch(run.id, metrics=[("x", 3.0, 0, 20), ("x", 4.0, 2, 5)])
    hist = client.runs.metric_history(run.id, "x")
    assert list(hist.steps) == [0, 0, 1, 2]
    assert list(hist.timestamps) == [20, 50, 10, 5]
    assert list(hist.values) == [3.0, 1.0, 2.0, 4.0]
