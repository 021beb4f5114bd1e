"""POST /projects/{project}/runs/search through the SDK: scope, filter, order, paging.

The filter language itself is tested with the parser; here we test what the
route does with it.
"""

from __future__ import annotations

import math

import pytest

from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking.types import Run


def _runs(client: Client) -> dict[str, Run]:
    """Five runs over two experiments, with start times 1..5 (newest: r5)."""
    made = {}
    for i in range(1, 6):
        experiment = "even" if i % 2 == 0 else "odd"
        run = client.runs.create(
            experiment,
            name=f"r{i}",
            start_time=i * 1000,
            params={"lr": f"0.{i}", "opt": "adam" if i < 4 else "sgd"},
            tags={"i": str(i)},
        )
        if i != 5:  # r5 never logs acc
            client.runs.log_batch(run.id, metrics=[("acc", i / 10, 0, 1)])
        made[run.name] = run
    return made


def _names(runs: list[Run]) -> list[str]:
    return [r.name for r in runs]


def test_default_order_is_newest_first(client: Client) -> None:
    _runs(client)
    page = client.runs.search()
    assert _names(page.runs) == ["r5", "r4", "r3", "r2", "r1"]
    assert page.next_page_token is None


def test_results_carry_params_tags_and_latest_metrics(client: Client) -> None:
    made = _runs(client)
    found = {r.name: r for r in client.runs.search().runs}
    assert found["r2"].params == {"lr": "0.2", "opt": "adam"}
    assert found["r2"].tags == {"i": "2"} and found["r2"].metrics == {"acc": 0.2}
    assert found["r5"].metrics == {}
    assert found["r3"] == client.runs.get(made["r3"].id)


def test_results_carry_metrics_exactly(client: Client) -> None:
    # Read back through each backend's JSON or rows: every bit of a double kept.
    values = [0.1 + 0.2, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 3.0]
    run = client.runs.create("exact", params={"k": "ü" * 3 + '"quoted"'}, tags={"t": "\\"})
    client.runs.log_batch(
        run.id,
        metrics=[(f"m{i}", v, 0, 1) for i, v in enumerate(values)] + [("gone", math.nan, 0, 1)],
    )
    empty = client.runs.create("exact")
    found = {r.id: r for r in client.runs.search(["exact"]).runs}
    metrics = found[run.id].metrics
    assert metrics == {**{f"m{i}": v for i, v in enumerate(values)}, "gone": None}
    assert all(type(v) is float for k, v in metrics.items() if k != "gone")
    assert found[run.id].params == {"k": 'üüü"quoted"'} and found[run.id].tags == {"t": "\\"}
    assert (found[empty.id].params, found[empty.id].metrics, found[empty.id].tags) == ({}, {}, {})


def test_filter_and_order(client: Client) -> None:
    _runs(client)
    page = client.runs.search(filter="metrics.acc > 0.15 and params.opt = 'adam'")
    assert _names(page.runs) == ["r3", "r2"]
    page = client.runs.search(order_by=["metrics.acc DESC"])
    assert _names(page.runs) == ["r4", "r3", "r2", "r1", "r5"]  # no acc: last
    page = client.runs.search(order_by="params.lr")
    assert _names(page.runs) == ["r1", "r2", "r3", "r4", "r5"]
    page = client.runs.search(filter="tags.i IN ('1', '5')", order_by=["start_time ASC"])
    assert _names(page.runs) == ["r1", "r5"]


def test_experiment_scope_by_name_or_id(client: Client) -> None:
    made = _runs(client)
    assert _names(client.runs.search(["even"]).runs) == ["r4", "r2"]
    odd_id = made["r1"].experiment_id
    assert _names(client.runs.search([odd_id]).runs) == ["r5", "r3", "r1"]
    assert len(client.runs.search(["even", odd_id]).runs) == 5
    with pytest.raises(NotFound):
        client.runs.search(["nope"])
    with pytest.raises(NotFound):
        client.runs.search([9999])


def test_projects_are_separate(client: Client) -> None:
    _runs(client)
    client.projects.create("other")
    client.runs.create("even", name="elsewhere", project="other")
    assert _names(client.runs.search(project="other").runs) == ["elsewhere"]
    assert "elsewhere" not in _names(client.runs.search().runs)
    even_here = client.experiments.get_by_name("even").id
    with pytest.raises(NotFound):  # an experiment of another project
        client.runs.search([even_here], project="other")


def test_paging_visits_every_run_once(client: Client) -> None:
    _runs(client)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.runs.search(order_by=["metrics.acc ASC"], max_results=2, page_token=token)
        seen += _names(page.runs)
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["r1", "r2", "r3", "r4", "r5"]
    assert pages == 3


def test_deleted_runs_and_experiments_are_hidden(client: Client) -> None:
    made = _runs(client)
    client.runs.delete(made["r2"].id)
    assert _names(client.runs.search().runs) == ["r5", "r4", "r3", "r1"]
    client.experiments.delete(made["r1"].experiment_id)  # "odd": r1, r3, r5
    assert _names(client.runs.search().runs) == ["r4"]
    assert _names(client.runs.search(["odd"]).runs) == []
    assert _names(client.runs.search(["even", "odd"]).runs) == ["r4"]
    named = client.runs.search(["even", "odd"], include_deleted=True).runs
    assert _names(named) == ["r5", "r4", "r3", "r2", "r1"]
    everything = client.runs.search(include_deleted=True).runs
    assert _names(everything) == ["r5", "r4", "r3", "r2", "r1"]
    assert {r.name: r.lifecycle for r in everything}["r2"] == "deleted"
    client.experiments.restore(made["r1"].experiment_id)
    client.runs.restore(made["r2"].id)
    assert len(client.runs.search().runs) == 5
    assert _names(client.runs.search(["odd"]).runs) == ["r5", "r3", "r1"]
    assert _names(client.runs.search(["even", "odd"]).runs) == ["r5", "r4", "r3", "r2", "r1"]


def test_bad_search_input(client: Client) -> None:
    _runs(client)
    bad = [
        {"filter": "metrics.acc >"},
        {"filter": "metrics.acc > 'high'"},
        {"order_by": ["metrics.acc SIDEWAYS"]},
        {"max_results": 0},
        {"max_results": 10_001},
        {"page_token": "not base64!"},
        {"page_token": "LTU="},  # base64 of "-5"
        {"experiment_ids": ["x"]},
        {"filtre": "x"},
    ]
    for body in bad:
        with pytest.raises(InvalidInput):
            client.api.post("/projects/default/runs/search", body)
    with pytest.raises(NotFound):
        client.runs.search(project="missing")


def test_max_results_limit_is_accepted(client: Client) -> None:
    _runs(client)
    page = client.runs.search(max_results=10_000)
    assert len(page.runs) == 5 and page.next_page_token is None


def test_search_leaves_out_code_version_and_environment(client: Client) -> None:
    run = client.runs.create(
        "context", code_version={"git_commit": "abc"}, environment={"python": "3.11"}
    )
    found = client.runs.search(["context"]).runs
    assert [r.id for r in found] == [run.id]
    assert (found[0].code_version, found[0].environment) == ({}, {})
    full = client.runs.get(run.id)
    assert full.code_version == {"git_commit": "abc"} and full.environment == {"python": "3.11"}
