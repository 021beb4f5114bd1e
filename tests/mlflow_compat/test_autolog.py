"""Autologging and datasets with the real ``mlflow`` client: ``mlflow.sklearn.autolog()``
logs params, metrics, the model and the training data; ``mlflow.log_input`` records a
dataset among the run's inputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from shipyard.auth.tables import AuditEventRow
from shipyard.platform import Platform
from shipyard.tracking.tables import RunInputRow

from .conftest import MlflowTarget


@pytest.fixture
def sklearn_autolog(mlflow_client: Any) -> Iterator[None]:
    import mlflow.sklearn

    mlflow.sklearn.autolog(silent=True)
    try:
        yield
    finally:
        mlflow.sklearn.autolog(disable=True)


def _inputs(platform: Platform, run_id: str) -> list[tuple[str, str]]:
    with platform.db.read() as session:
        return [
            (row.name, row.context)
            for row in session.scalars(
                select(RunInputRow).where(RunInputRow.run_id == run_id).order_by(RunInputRow.id)
            )
        ]


def test_sklearn_autolog_logs_params_metrics_model_and_data(
    mlflow_target: MlflowTarget, mlflow_client: Any, sklearn_autolog: None
) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] - x[:, 2] > 0).astype(int)
    with mlflow.start_run() as run:
        model = LogisticRegression(C=0.5, max_iter=200).fit(x, y)
    run_id = run.info.run_id

    got = mlflow_client.get_run(run_id)
    assert got.data.params["C"] == "0.5"
    assert got.data.params["max_iter"] == "200"
    assert 0.5 < got.data.metrics["training_accuracy_score"] <= 1.0
    assert got.data.tags["estimator_name"] == "LogisticRegression"
    # The training data is among the run's inputs, in the "train" context.
    contexts = [
        {t.key: t.value for t in d.tags}.get("mlflow.data.context")
        for d in got.inputs.dataset_inputs
    ]
    assert "train" in contexts

    found = mlflow_client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert len(found) == 1
    logged = found[0]
    assert logged.status.to_int() == 2  # READY
    assert [o.model_id for o in got.outputs.model_outputs] == [logged.model_id]
    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    assert (loaded.predict(x) == model.predict(x)).all()


def test_log_input_records_a_dataset_once(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    import mlflow
    import mlflow.data
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/iris.parquet", name="iris")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "v1"})
        mlflow.log_input(dataset, context="training")  # the same input again
        mlflow.log_input(dataset, context="eval")
    run_id = run.info.run_id

    inputs = mlflow_client.get_run(run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [
        ("iris", dataset.digest),
        ("iris", dataset.digest),
    ]
    first = inputs[0]
    assert {t.key: t.value for t in first.tags} == {
        "mlflow.data.context": "training",
        "split": "v1",
    }
    assert first.dataset.source_type == "s3"
    assert "s3://bucket/iris.parquet" in first.dataset.source
    assert "a" in first.dataset.schema
    assert _inputs(mlflow_target.platform, run_id) == [("iris", "training"), ("iris", "eval")]
    with mlflow_target.platform.db.read() as session:
        actions = session.scalars(
            select(AuditEventRow.action).where(AuditEventRow.object_id == run_id)
        ).all()
    assert actions.count("runs.log_inputs") == 3


def test_bad_inputs_and_outputs_change_nothing(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow

    with mlflow.start_run() as run:
        pass
    run_id = run.info.run_id
    url = f"{mlflow_target.url}/api/2.0/mlflow/runs"
    good = {"name": "d", "digest": "abc", "source_type": "local", "source": "/tmp/d"}
    missing_digest = {k: v for k, v in good.items() if k != "digest"}
    with httpx.Client() as http:

        def post(path: str, body: dict[str, Any]) -> tuple[int, str]:
            response = http.post(f"{url}/{path}", json=body)
            return response.status_code, response.json().get("error_code", "")

        # One bad dataset among good ones: nothing is stored.
        datasets = [{"dataset": good}, {"dataset": missing_digest}]
        assert post("log-inputs", {"run_id": run_id, "datasets": datasets}) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert post("log-inputs", {"run_id": run_id, "datasets": [{"dataset": "x"}]}) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        long_name = {**good, "name": "n" * 501}
        assert post("log-inputs", {"run_id": run_id, "datasets": [{"dataset": long_name}]}) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert post("log-inputs", {"run_id": "0" * 32, "datasets": [{"dataset": good}]}) == (
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        # Outputs must name logged models of the project.
        unknown = [{"model_id": "m-" + "0" * 32, "step": 1}]
        assert post("outputs", {"run_id": run_id, "models": unknown}) == (
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert post("outputs", {"run_id": run_id, "models": []}) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        # A deleted run takes no inputs.
        mlflow_client.delete_run(run_id)
        assert post("log-inputs", {"run_id": run_id, "datasets": [{"dataset": good}]}) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
    assert _inputs(mlflow_target.platform, run_id) == []
    assert mlflow_client.get_run(run_id).outputs is None or not (
        mlflow_client.get_run(run_id).outputs.model_outputs
    )


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm", "pytorch"])
def test_other_flavors_autolog_where_installed(
    mlflow_target: MlflowTarget, mlflow_client: Any, flavor: str
) -> None:
    library = {"pytorch": "torch"}.get(flavor, flavor)
    pytest.importorskip(library)
    import importlib

    import mlflow

    module = importlib.import_module(f"mlflow.{flavor}")
    module.autolog(silent=True)
    try:
        with mlflow.start_run() as run:
            _train_small(flavor)
    finally:
        module.autolog(disable=True)
    got = mlflow_client.get_run(run.info.run_id)
    if flavor != "pytorch":  # plain torch has no autolog: the model is logged explicitly
        assert got.data.params
    found = mlflow_client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
    )
    assert found


def _train_small(flavor: str) -> None:  # pragma: no cover - only where the library is
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    if flavor == "xgboost":
        import xgboost

        xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(x, label=y), 3)
    elif flavor == "lightgbm":
        import lightgbm

        lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(x, y), 3)
    else:
        import mlflow.pytorch
        import torch

        net = torch.nn.Linear(3, 1)
        info = mlflow.pytorch.log_model(net, name="model", input_example=x[:5])
        # The model comes back through the artifact proxy and predicts the same.
        loaded = mlflow.pytorch.load_model(info.model_uri)
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
            got = loaded(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6)
