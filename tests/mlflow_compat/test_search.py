"""``search_runs`` and ``search_experiments`` in MLflow's filter and order syntax, with
paging, through the real ``mlflow`` client; and the translation on its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from shipyard.errors import InvalidInput
from shipyard.mlflow_compat.search import run_filter, run_order_by

from .conftest import MlflowTarget


@pytest.fixture(autouse=True)
def _no_active_experiment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import mlflow.tracking.fluent as fluent

    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


# name, lr param, acc metric, team tag, status, start_time
RUNS = [
    ("r0", "0.1", 0.50, "vision", "FINISHED", 1_000),
    ("r1", "0.01", 0.90, "vision", "FINISHED", 2_000),
    ("r2", "0.001", 0.70, "nlp", "FAILED", 3_000),
    ("r3", "0.01", 0.95, "NLP team", "RUNNING", 4_000),
]


@pytest.fixture
def seeded(mlflow_client: Any) -> tuple[Any, str, dict[str, str]]:
    """Four runs in one experiment (and one in another); returns client, experiment, ids."""
    eid = mlflow_client.create_experiment("search")
    ids: dict[str, str] = {}
    for name, lr, acc, team, status, start in RUNS:
        run = mlflow_client.create_run(eid, run_name=name, start_time=start)
        run_id = run.info.run_id
        ids[name] = run_id
        mlflow_client.log_batch(
            run_id,
            metrics=[Metric("acc", acc, start, 0), Metric("val loss", 1 - acc, start, 0)],
            params=[Param("lr", lr)],
            tags=[RunTag("team", team), RunTag("mlflow.user", f"user-{name}")],
        )
        if status != "RUNNING":
            mlflow_client.set_terminated(run_id, status=status, end_time=start + 500)
    other = mlflow_client.create_experiment("elsewhere")
    mlflow_client.create_run(other, run_name="far")
    return mlflow_client, eid, ids


def _names(found: Any) -> list[str]:
    return [r.info.run_name for r in found]


def test_filters_in_mlflow_syntax(seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, eid, ids = seeded

    def names(filter_string: str, **kw: Any) -> list[str]:
        return _names(client.search_runs([eid], filter_string, **kw))

    # Default order: start_time DESC.
    assert names("") == ["r3", "r2", "r1", "r0"]
    assert names("metrics.acc > 0.8") == ["r3", "r1"]
    assert names("metrics.acc >= 0.7 and params.lr = '0.01'") == ["r3", "r1"]
    assert names("metrics.`val loss` < 0.2") == ["r3", "r1"]
    assert names('metrics."val loss" < 0.2') == ["r3", "r1"]
    assert names("params.lr != '0.01'") == ["r2", "r0"]
    assert names('params.lr = "0.1"') == ["r0"]
    assert names("tags.team = 'vision'") == ["r1", "r0"]
    assert names("tags.team LIKE 'N%'") == ["r3"]
    assert names("tags.team ILIKE 'n%'") == ["r3", "r2"]
    assert names("tags.`team` IS NULL") == []
    assert names("attributes.status = 'FINISHED'") == ["r1", "r0"]
    assert names("status != 'RUNNING'") == ["r2", "r1", "r0"]
    assert names("attributes.run_name = 'r2'") == ["r2"]
    assert names("run_name LIKE 'r%' and attributes.start_time >= 3000") == ["r3", "r2"]
    assert names("tags.mlflow.runName = 'r1'") == ["r1"]
    assert names("tags.`mlflow.runName` ILIKE 'R0'") == ["r0"]
    assert names("attributes.created < 2500") == ["r1", "r0"]
    assert names("attributes.end_time > 3000") == ["r2"]
    assert names(f"attributes.run_id IN ('{ids['r0']}', '{ids['r2']}')") == ["r2", "r0"]
    assert names(f"attributes.user_id = '{client.get_run(ids['r0']).info.user_id}'") == [
        "r3",
        "r2",
        "r1",
        "r0",
    ]
    assert names("tags.mlflow.user = 'user-r3'") == ["r3"]


def test_order_by_in_mlflow_syntax(seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, eid, _ = seeded

    def names(*order_by: str) -> list[str]:
        return _names(client.search_runs([eid], order_by=list(order_by)))

    assert names("metrics.acc DESC") == ["r3", "r1", "r2", "r0"]
    assert names("metrics.acc") == ["r0", "r2", "r1", "r3"]
    assert names("params.lr ASC", "metrics.acc DESC") == ["r2", "r3", "r1", "r0"]
    assert names("attributes.start_time ASC") == ["r0", "r1", "r2", "r3"]
    assert names("start_time DESC") == ["r3", "r2", "r1", "r0"]
    assert names("tags.mlflow.runName DESC") == ["r3", "r2", "r1", "r0"]
    assert names("attributes.run_name") == ["r0", "r1", "r2", "r3"]
    assert names("metrics.`val loss` ASC") == ["r3", "r1", "r2", "r0"]


def test_paging_and_views(seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, eid, ids = seeded
    first = client.search_runs([eid], max_results=3, order_by=["attributes.run_name"])
    assert _names(first) == ["r0", "r1", "r2"] and first.token
    rest = client.search_runs(
        [eid], max_results=3, order_by=["attributes.run_name"], page_token=first.token
    )
    assert _names(rest) == ["r3"] and rest.token is None

    client.delete_run(ids["r1"])
    client.delete_run(ids["r2"])
    assert _names(client.search_runs([eid])) == ["r3", "r0"]
    assert _names(client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)) == ["r2", "r1"]
    page = client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY, max_results=1)
    assert _names(page) == ["r2"] and page.token
    page = client.search_runs(
        [eid], run_view_type=ViewType.DELETED_ONLY, max_results=1, page_token=page.token
    )
    assert _names(page) == ["r1"]
    assert len(client.search_runs([eid], run_view_type=ViewType.ALL)) == 4

    # Several experiments at once, and the empty list.
    other = client.get_experiment_by_name("elsewhere").experiment_id
    assert sorted(_names(client.search_runs([eid, other]))) == ["far", "r0", "r3"]


def test_search_runs_into_a_dataframe(seeded: tuple[Any, str, dict[str, str]]) -> None:
    _, eid, ids = seeded
    df = mlflow.search_runs(
        experiment_ids=[eid], filter_string="metrics.acc > 0.6", order_by=["metrics.acc DESC"]
    )
    assert list(df["run_id"]) == [ids["r3"], ids["r1"], ids["r2"]]
    assert list(df["metrics.acc"]) == [0.95, 0.9, 0.7]
    assert list(df["params.lr"]) == ["0.01", "0.01", "0.001"]
    assert list(df["tags.team"]) == ["NLP team", "vision", "nlp"]
    assert list(df["tags.mlflow.runName"]) == ["r3", "r1", "r2"]
    assert list(df["status"]) == ["RUNNING", "FINISHED", "FAILED"]
    by_name = mlflow.search_runs(experiment_names=["search"], max_results=2)
    assert len(by_name) == 2
    as_list = mlflow.search_runs([eid], output_format="list", filter_string="params.lr = '0.1'")
    assert [r.info.run_id for r in as_list] == [ids["r0"]]


def test_bad_searches_are_refused(seeded: tuple[Any, str, dict[str, str]]) -> None:
    client, eid, _ = seeded
    for bad in (
        "metrics.acc >",
        "metrics.acc LIKE 'x'",
        "nonsense.x = 1",
        "attributes.artifact_uri = 'x'",
        "datasets.size = 'x'",
        "datasets.name > 'x'",
        "datasets.name IS NULL",
        "params.lr = 'unterminated",
    ):
        with pytest.raises(MlflowException) as err:
            client.search_runs([eid], bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", bad
    for order in ("metrics.acc SIDEWAYS", "datasets.name"):
        with pytest.raises(MlflowException) as err:
            client.search_runs([eid], order_by=[order])
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", order
    with pytest.raises(MlflowException) as err:
        client.search_runs([eid], max_results=50_001)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.search_runs([eid], page_token="not-a-token")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_experiments(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    ids = [mlflow_client.create_experiment(f"exp-{i}", tags={"i": str(i)}) for i in range(5)]
    mlflow_client.delete_experiment(ids[4])

    def names(**kw: Any) -> list[str]:
        return [e.name for e in mlflow_client.search_experiments(**kw)]

    assert names() == ["exp-3", "exp-2", "exp-1", "exp-0"]
    assert names(view_type=ViewType.ALL) == ["exp-4", "exp-3", "exp-2", "exp-1", "exp-0"]
    assert names(filter_string="name = 'exp-1'") == ["exp-1"]
    assert names(filter_string="name != 'exp-1' AND tags.i != '0'") == ["exp-3", "exp-2"]
    assert names(filter_string="name ILIKE 'EXP-%' and tags.i IS NOT NULL") == [
        "exp-3",
        "exp-2",
        "exp-1",
        "exp-0",
    ]
    assert names(filter_string="tags.missing IS NULL", order_by=["name ASC"])[:1] == ["exp-0"]
    assert names(filter_string=f"attributes.experiment_id IN ('{ids[0]}', '{ids[2]}')") == [
        "exp-2",
        "exp-0",
    ]
    created = mlflow_client.get_experiment(ids[2]).creation_time
    assert "exp-2" in names(filter_string=f"creation_time >= {created}")
    assert names(order_by=["name ASC"]) == ["exp-0", "exp-1", "exp-2", "exp-3"]
    assert names(order_by=["experiment_id DESC"]) == ["exp-3", "exp-2", "exp-1", "exp-0"]

    page = mlflow_client.search_experiments(max_results=3, order_by=["name"])
    assert [e.name for e in page] == ["exp-0", "exp-1", "exp-2"] and page.token
    page = mlflow_client.search_experiments(max_results=3, order_by=["name"], page_token=page.token)
    assert [e.name for e in page] == ["exp-3"] and page.token is None
    assert [e.name for e in mlflow.search_experiments(filter_string="name LIKE '%-0'")] == ["exp-0"]

    for bad in ("name > 'x'", "owner = 'x'", "tags.i IN ('1')", "name = 'x' OR name = 'y'"):
        with pytest.raises(MlflowException) as err:
            mlflow_client.search_experiments(filter_string=bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(MlflowException) as err:
        mlflow_client.search_experiments(order_by=["owner"])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


# --- the translation alone (no server) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mlflow_filter", "shipyard_filter"),
    [
        ("metrics.acc > 0.9", "metrics.acc > 0.9"),
        ("tags.mlflow.runName = 'a'", "attributes.run_name = 'a'"),
        ("tags.`mlflow.parentRunId` = 'p'", "attributes.parent_run_id = 'p'"),
        ("attributes.user_id = 'u'", "attributes.user = 'u'"),
        ("created > 5 and user_id != 'x'", "attributes.start_time > 5 and attributes.user != 'x'"),
        ("attributes.`run name` = 'it''s'", "attributes.run_name = 'it''s'"),
        ("run.status = 'FINISHED'", "attributes.status = 'FINISHED'"),
        ("tags.team = 'x'", "tags.team = 'x'"),
    ],
)
def test_filter_translation(mlflow_filter: str, shipyard_filter: str) -> None:
    assert run_filter(mlflow_filter) == shipyard_filter


def test_order_by_translation() -> None:
    assert run_order_by(["tags.mlflow.runName DESC", "metrics.acc"]) == [
        "attributes.run_name DESC",
        "metrics.acc",
    ]
    assert run_filter("  ") is None
    with pytest.raises(InvalidInput):
        run_filter("attributes.lifecycle_stage = 'active'")
    with pytest.raises(InvalidInput):
        run_order_by([3])


def test_searched_runs_carry_exact_values(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    # Each backend builds the messages' children its own way (rows on SQLite, JSON on
    # PostgreSQL): both keep every bit of a double, big steps, and the keys' order.
    eid = mlflow_client.create_experiment("exact")
    run = mlflow_client.create_run(eid)
    rid = run.info.run_id
    values = {"b": 0.1 + 0.2, "a": 1 / 3, "c": 5e-324, "d": 1.7976931348623157e308}
    for key, value in values.items():
        mlflow_client.log_metric(rid, key, value, timestamp=1_700_000_000_123, step=2**40)
    mlflow_client.log_param(rid, "p", 'ü"\\')
    mlflow_client.set_tag(rid, "t", "x")
    [found] = mlflow_client.search_runs([eid])
    assert found.data.metrics == values
    assert found.data.params == {"p": 'ü"\\'}
    assert found.data.tags["t"] == "x"
    assert [m.key for m in found.data._metric_objs] == ["a", "b", "c", "d"]
    assert {(m.step, m.timestamp) for m in found.data._metric_objs} == {(2**40, 1_700_000_000_123)}
    assert found.to_dictionary() == mlflow_client.get_run(rid).to_dictionary()


def test_filters_on_the_datasets_runs_read(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    """``datasets.name``, ``.digest`` and ``.context``, as MLflow's server answers them:
    a run matches when one of its dataset inputs does (a logged model it read is no
    dataset). The native search language has the same fields."""
    import mlflow.data
    import pandas as pd

    from shipyard.client import Client

    eid = mlflow_client.create_experiment("inputs")
    mlflow.set_experiment(experiment_id=eid)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    train = mlflow.data.from_pandas(frame, source="s3://b/train.parquet", name="train")
    holdout = mlflow.data.from_pandas(
        frame.tail(1), source="s3://b/holdout.parquet", name="holdout"
    )
    runs = {}
    for name, inputs in {
        "both": [(train, "training"), (holdout, "eval")],
        "train-only": [(train, "training")],
        "none": [],
    }.items():
        with mlflow.start_run(run_name=name) as run:
            for dataset, context in inputs:
                mlflow.log_input(dataset, context=context)
        runs[run.info.run_id] = name

    def names(filter_string: str) -> list[str]:
        found = mlflow_client.search_runs([eid], filter_string)
        return sorted(runs[r.info.run_id] for r in found)

    assert names("datasets.name = 'train'") == ["both", "train-only"]
    assert names("datasets.name = 'holdout'") == ["both"]
    assert names("datasets.context = 'eval'") == ["both"]
    assert names(f"datasets.digest = '{holdout.digest}'") == ["both"]
    assert names("datasets.name IN ('holdout', 'nothing')") == ["both"]
    assert names("datasets.name LIKE 'tr%' and datasets.context = 'training'") == [
        "both",
        "train-only",
    ]
    assert names("datasets.name != 'train'") == ["both"]  # has an input other than train
    assert names("datasets.name = 'train' and attributes.run_name = 'none'") == []
    with Client(mlflow_target.url) as native:
        found = native.runs.search([int(eid)], filter="datasets.context = 'eval'").runs
        assert [r.name for r in found] == ["both"]
