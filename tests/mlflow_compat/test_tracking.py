"""MLflow tracking calls (the real ``mlflow`` client) against a Shipyard server: what
they log is an ordinary Shipyard run, and what Shipyard logs is visible to them."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from shipyard.auth.authz import RequestContext
from shipyard.auth.principal import Principal
from shipyard.tracking import experiments, runs
from shipyard.tracking.client import DEFAULT_EXPERIMENT
from shipyard.tracking.types import RunCreate

from .conftest import MlflowTarget


@pytest.fixture(autouse=True)
def _no_active_experiment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # mlflow.set_experiment() leaves the experiment id in a global and in the
    # environment; the next test's server has no such experiment.
    import mlflow.tracking.fluent as fluent

    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def _ctx(target: MlflowTarget) -> RequestContext:
    return RequestContext(target.platform, Principal.local(), 1, "test")


def test_experiments_create_get_by_name_and_search(
    mlflow_client: Any, mlflow_target: MlflowTarget
) -> None:
    eid = mlflow_client.create_experiment("alpha", tags={"team": "vision"})
    exp = mlflow_client.get_experiment(eid)
    assert exp.name == "alpha"
    assert exp.tags == {"team": "vision"}
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert exp.creation_time > 0 and exp.last_update_time >= exp.creation_time
    assert mlflow_client.get_experiment_by_name("alpha").experiment_id == eid
    assert mlflow_client.get_experiment_by_name("nope") is None

    # The same experiment through Shipyard's own service.
    native = experiments.get_experiment(mlflow_target.platform, int(eid))
    assert native.name == "alpha" and native.tags == {"team": "vision"}

    with pytest.raises(MlflowException) as err:
        mlflow_client.create_experiment("alpha")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"

    beta = mlflow_client.create_experiment("beta")
    names = [e.name for e in mlflow_client.search_experiments()]
    assert names == ["beta", "alpha"]  # MLflow's default order: newest first
    found = mlflow_client.search_experiments(filter_string="name LIKE 'al%'")
    assert [e.experiment_id for e in found] == [eid]
    found = mlflow_client.search_experiments(filter_string="tags.team = 'vision'")
    assert [e.name for e in found] == ["alpha"]
    ordered = mlflow_client.search_experiments(order_by=["name DESC"])
    assert [e.name for e in ordered] == ["beta", "alpha"]
    assert mlflow.get_experiment_by_name("beta").experiment_id == beta


def test_default_experiment_is_zero(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    # MLflow's experiment "0" is the experiment Shipyard's SDK logs to when none is
    # named; MLflow's name for it finds it too.
    default = mlflow_client.get_experiment("0")
    assert default.name == DEFAULT_EXPERIMENT
    assert mlflow_client.get_experiment_by_name("Default").experiment_id == default.experiment_id
    run = mlflow_client.create_run("0")
    assert run.info.experiment_id == default.experiment_id
    native = experiments.get_experiment_by_name(mlflow_target.platform, 1, DEFAULT_EXPERIMENT)
    assert str(native.id) == default.experiment_id
    sdk_run = runs.create_run(_ctx(mlflow_target), native.id, RunCreate(name="from-sdk"))
    found = mlflow_client.search_runs(["0"])
    assert {r.info.run_id for r in found} == {run.info.run_id, sdk_run.id}


def test_runs_create_get_update_and_log(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    eid = mlflow_client.create_experiment("runs")
    run = mlflow_client.create_run(eid, run_name="first", tags={"k": "v"}, start_time=1_000)
    run_id = run.info.run_id
    assert run.info.run_name == "first"
    assert run.info.status == "RUNNING"
    assert run.info.start_time == 1_000
    assert run.info.artifact_uri == f"mlflow-artifacts:/{eid}/{run_id}/artifacts"
    assert run.data.tags == {"k": "v", "mlflow.runName": "first"}

    mlflow_client.log_param(run_id, "lr", 0.01)
    mlflow_client.log_metric(run_id, "loss", 0.5, step=1, timestamp=2_000)
    mlflow_client.log_metric(run_id, "loss", 0.25, step=2, timestamp=3_000)
    mlflow_client.set_tag(run_id, "stage", "train")
    mlflow_client.log_batch(
        run_id,
        metrics=[
            Metric("acc", 0.9, 4_000, 0),
            Metric("bad", float("nan"), 4_000, 0),
            Metric("up", float("inf"), 4_000, 0),
            Metric("down", float("-inf"), 4_000, 0),
        ],
        params=[Param("epochs", "3")],
        tags=[RunTag("batch", "yes")],
    )
    got = mlflow_client.get_run(run_id)
    assert got.data.params == {"lr": "0.01", "epochs": "3"}
    assert got.data.metrics["loss"] == 0.25 and got.data.metrics["acc"] == 0.9
    assert math.isnan(got.data.metrics["bad"])
    # Infinities come back as MLflow's server returns them: the largest doubles.
    assert got.data.metrics["up"] == sys.float_info.max
    assert got.data.metrics["down"] == -sys.float_info.max
    assert got.data.tags["stage"] == "train" and got.data.tags["batch"] == "yes"
    loss = next(m for m in got.data._metric_objs if m.key == "loss")
    assert (loss.step, loss.timestamp) == (2, 3_000)

    # A param that changes: MLflow's INVALID_PARAMETER_VALUE, and nothing of the batch stored.
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_batch(run_id, params=[Param("lr", "0.1")], tags=[RunTag("x", "1")])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "x" not in mlflow_client.get_run(run_id).data.tags

    mlflow_client.update_run(run_id, name="renamed")
    mlflow_client.set_terminated(run_id, status="FAILED", end_time=9_000)
    info = mlflow_client.get_run(run_id).info
    assert (info.run_name, info.status, info.end_time) == ("renamed", "FAILED", 9_000)
    assert mlflow_client.get_run(run_id).data.tags["mlflow.runName"] == "renamed"

    # The same run through Shipyard's service.
    native = runs.get_run(mlflow_target.platform, run_id)
    assert native.name == "renamed" and native.status == "failed"
    assert native.params == {"epochs": "3", "lr": "0.01"}
    assert native.metrics["loss"] == 0.25


def test_shipyard_runs_are_visible_to_mlflow(
    mlflow_client: Any, mlflow_target: MlflowTarget
) -> None:
    ctx = _ctx(mlflow_target)
    from shipyard.tracking.types import ExperimentCreate

    exp = experiments.create_experiment(ctx, ExperimentCreate(name="native"))
    run = runs.create_run(ctx, exp.id, RunCreate(name="n1", params={"a": "1"}, tags={"t": "x"}))
    got = mlflow_client.get_run(run.id)
    assert got.info.experiment_id == str(exp.id)
    assert got.info.run_name == "n1"
    assert got.data.params == {"a": "1"}
    assert got.data.tags == {"t": "x", "mlflow.runName": "n1"}


def test_fluent_api(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    with mlflow.start_run(run_name="fluent") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"beta": 1, "gamma": "g"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.8, "f1": 0.7})
        mlflow.set_tag("phase", "dev")
        mlflow.set_tags({"owner": "me"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("inner", 1.0)
    got = mlflow_client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "fluent"
    assert got.info.experiment_id == mlflow_client.get_experiment_by_name("Default").experiment_id
    assert got.data.params == {"alpha": "0.5", "beta": "1", "gamma": "g"}
    assert got.data.metrics == {"loss": pytest.approx(1 / 3), "acc": 0.8, "f1": 0.7}
    # System tags the client sets are kept.
    assert got.data.tags["phase"] == "dev" and got.data.tags["owner"] == "me"
    assert "mlflow.user" in got.data.tags and "mlflow.source.name" in got.data.tags
    assert got.data.tags["mlflow.source.type"] == "LOCAL"
    history = mlflow_client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]

    # Nested: the child's parent is a Shipyard column, shown as the mlflow.parentRunId tag.
    kid = mlflow_client.get_run(child.info.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert runs.get_run(mlflow_target.platform, child.info.run_id).parent_run_id == run.info.run_id
    found = mlflow_client.search_runs(
        [got.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]

    # Resuming a finished run: running again, then finished again, its history kept.
    with mlflow.start_run(run_id=run.info.run_id):
        assert mlflow_client.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("loss", 0.1, step=3)
    resumed = mlflow_client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.metrics["loss"] == 0.1
    assert len(mlflow_client.get_metric_history(run.info.run_id, "loss")) == 4

    # set_experiment then runs in it; the fluent API sees them.
    mlflow.set_experiment("fluent-exp")
    with mlflow.start_run():
        mlflow.log_metric("x", 1.0)
    df = mlflow.search_runs()
    assert list(df["metrics.x"]) == [1.0]
    assert df["status"].tolist() == ["FINISHED"]


def test_experiment_lifecycle_and_tags(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    eid = mlflow_client.create_experiment("life")
    mlflow_client.rename_experiment(eid, "life2")
    assert mlflow_client.get_experiment(eid).name == "life2"
    mlflow_client.set_experiment_tag(eid, "k", "v")
    mlflow_client.set_experiment_tag(eid, "gone", "soon")
    mlflow_client.delete_experiment_tag(eid, "gone")
    assert mlflow_client.get_experiment(eid).tags == {"k": "v"}
    with pytest.raises(MlflowException) as err:
        mlflow_client.delete_experiment_tag(eid, "gone")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    mlflow_client.delete_experiment(eid)
    assert mlflow_client.get_experiment(eid).lifecycle_stage == "deleted"
    assert [e.name for e in mlflow_client.search_experiments(view_type=ViewType.DELETED_ONLY)] == [
        "life2"
    ]
    assert "life2" not in [e.name for e in mlflow_client.search_experiments()]
    with pytest.raises(MlflowException) as err:
        mlflow_client.create_run(eid)
    assert err.value.error_code == "INVALID_STATE"
    mlflow_client.restore_experiment(eid)
    assert mlflow_client.get_experiment(eid).lifecycle_stage == "active"
    assert native_lifecycle(mlflow_target, int(eid)) == "active"


def native_lifecycle(target: MlflowTarget, experiment_id: int) -> str:
    return experiments.get_experiment(target.platform, experiment_id).lifecycle


def test_run_lifecycle_and_tags(mlflow_client: Any) -> None:
    eid = mlflow_client.create_experiment("rl")
    run_id = mlflow_client.create_run(eid).info.run_id
    mlflow_client.set_tag(run_id, "a", "1")
    mlflow_client.set_tag(run_id, "b", "2")
    mlflow_client.delete_tag(run_id, "a")
    assert "a" not in mlflow_client.get_run(run_id).data.tags
    with pytest.raises(MlflowException) as err:
        mlflow_client.delete_tag(run_id, "a")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # A tag named mlflow.runName renames the run.
    mlflow_client.set_tag(run_id, "mlflow.runName", "by-tag")
    assert mlflow_client.get_run(run_id).info.run_name == "by-tag"

    mlflow_client.delete_run(run_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mlflow_client.search_runs([eid]) == []
    deleted = mlflow_client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_param(run_id, "p", "1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    mlflow_client.restore_run(run_id)
    assert [r.info.run_id for r in mlflow_client.search_runs([eid])] == [run_id]
    assert mlflow_client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.RUNNING)


def test_metric_history_pages(mlflow_client: Any, mlflow_target: MlflowTarget) -> None:
    eid = mlflow_client.create_experiment("hist")
    run_id = mlflow_client.create_run(eid).info.run_id
    points = [Metric("m", float(i), 1_000 + i, i) for i in range(250)]
    for start in range(0, 250, 100):
        mlflow_client.log_batch(run_id, metrics=points[start : start + 100])
    history = mlflow_client.get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(250))
    assert [m.value for m in history] == [float(i) for i in range(250)]
    assert mlflow_client.get_metric_history(run_id, "unknown") == []

    store = mlflow_client._tracking_client.store
    first = store.get_metric_history(run_id, "m", max_results=100)
    assert [m.step for m in first] == list(range(100)) and first.token
    second = store.get_metric_history(run_id, "m", max_results=100, page_token=first.token)
    third = store.get_metric_history(run_id, "m", max_results=100, page_token=second.token)
    assert [m.step for m in second] == list(range(100, 200))
    assert [m.step for m in third] == list(range(200, 250)) and third.token is None


def test_metric_history_bulk_interval(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    import httpx

    eid = mlflow_client.create_experiment("bulk")
    a = mlflow_client.create_run(eid).info.run_id
    b = mlflow_client.create_run(eid).info.run_id
    for run_id in (a, b):
        mlflow_client.log_batch(run_id, metrics=[Metric("m", i, 0, i) for i in range(50)])
    url = f"{mlflow_target.url}/api/2.0/mlflow/metrics/get-history-bulk-interval"
    params: dict[str, Any] = {"run_ids": [a, b], "metric_key": "m", "max_results": 5}
    body = httpx.get(url, params=params).json()
    by_run: dict[str, list[int]] = {}
    for m in body["metrics"]:
        by_run.setdefault(m["run_id"], []).append(m["step"])
    assert by_run[a][0] == 0 and by_run[a][-1] == 49 and len(by_run[a]) == 5
    body = httpx.get(url, params={**params, "start_step": 10, "end_step": 12}).json()
    assert [m["step"] for m in body["metrics"] if m["run_id"] == a] == [10, 11, 12]
