"""The keys an experiment's runs logged, and run counts per experiment, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.conftest import embedded_client

from shipyard.client import Client
from shipyard.platform import Platform
from shipyard.tracking.keys import ExperimentKeys, experiment_keys, run_counts


@pytest.fixture
def sdk(platform: Platform) -> Iterator[Client]:
    with embedded_client(platform) as c:
        yield c


def _run(params: dict[str, str], metrics: list[str], tags: dict[str, str], start: int) -> dict:
    run = {"params": params, "tags": tags, "start_time": start}
    if metrics:
        run["metrics"] = [(k, 1.0, 0, start) for k in metrics]
    return run


def test_keys_are_the_distinct_sorted_keys_of_the_experiment_only(
    platform: Platform, sdk: Client
) -> None:
    sweep = sdk.experiments.create("sweep").id
    other = sdk.experiments.create("other").id
    sdk.runs.create_many(
        sweep,
        [
            _run({"lr": "0.1", "opt": "adam"}, ["loss", "acc"], {"team": "a"}, 1000),
            _run({"lr": "0.2", "batch size": "8"}, ["acc"], {}, 2000),
        ],
    )
    sdk.runs.create_many(other, [_run({"elsewhere": "1"}, ["f1"], {"x": "y"}, 3000)])
    assert experiment_keys(platform, sweep) == ExperimentKeys(
        params=["batch size", "lr", "opt"], metrics=["acc", "loss"], tags=["team"]
    )
    assert experiment_keys(platform, other).params == ["elsewhere"]


def test_deleted_runs_count_only_when_asked(platform: Platform, sdk: Client) -> None:
    exp = sdk.experiments.create("e").id
    kept, gone = sdk.runs.create_many(
        exp, [_run({"a": "1"}, ["m"], {}, 1000), _run({"b": "1"}, ["n"], {"t": "1"}, 5000)]
    )
    sdk.runs.delete(gone)
    assert experiment_keys(platform, exp) == ExperimentKeys(params=["a"], metrics=["m"], tags=[])
    every = experiment_keys(platform, exp, include_deleted=True)
    assert (every.params, every.metrics, every.tags) == (["a", "b"], ["m", "n"], ["t"])
    assert run_counts(platform, [exp])[exp].runs == 1
    assert run_counts(platform, [exp])[exp].last_start == 1000
    assert run_counts(platform, [exp], include_deleted=True)[exp].last_start == 5000
    assert kept


def test_limit_truncates_and_says_so(platform: Platform, sdk: Client) -> None:
    exp = sdk.experiments.create("wide").id
    sdk.runs.create_many(exp, [_run({f"p{i}": "1" for i in range(5)}, ["m"], {}, 1)])
    found = experiment_keys(platform, exp, limit=3)
    assert found.params == ["p0", "p1", "p2"] and found.truncated
    assert found.metrics == ["m"]
    assert not experiment_keys(platform, exp, limit=5).truncated
    with pytest.raises(ValueError):
        experiment_keys(platform, exp, limit=0)


def test_run_counts_skip_empty_experiments(platform: Platform, sdk: Client) -> None:
    empty = sdk.experiments.create("empty").id
    busy = sdk.experiments.create("busy").id
    sdk.runs.create_many(busy, [_run({}, [], {}, t) for t in (10, 30, 20)])
    counts = run_counts(platform, [empty, busy])
    assert set(counts) == {busy}
    assert (counts[busy].runs, counts[busy].last_start) == (3, 30)
    assert run_counts(platform, []) == {}
    assert experiment_keys(platform, empty) == ExperimentKeys()
