"""MLflow 3 logged models with the real ``mlflow`` client: ``log_model``, loading
``models:/<model_id>``, and the LoggedModel API (create, get, search, finalize, tags,
params, delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from shipyard.auth.tables import AuditEventRow
from shipyard.platform import Platform
from shipyard.tracking.logged_models import logged_model_files
from shipyard.tracking.tables import LoggedModelRow

from .conftest import MlflowTarget


def _audit_actions(platform: Platform, object_id: str) -> list[str]:
    with platform.db.read() as session:
        return list(
            session.scalars(
                select(AuditEventRow.action)
                .where(AuditEventRow.object_id == object_id)
                .order_by(AuditEventRow.id)
            )
        )


def _model_count(platform: Platform) -> int:
    with platform.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(LoggedModelRow)) or 0)


def _fit() -> tuple[Any, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def test_sklearn_log_model_and_load_it_back(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    model, x = _fit()
    with mlflow.start_run() as run:
        mlflow.log_param("C", "1.0")
        for step, loss in enumerate([0.5, 0.25, 0.125]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("acc", 0.9)
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2])
    model_id = info.model_id
    # log_model sent the run's points of step 0 again, linked to the model: each
    # point is stored once, as MLflow's own server does.
    history = mlflow_client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert [m.value for m in mlflow_client.get_metric_history(run.info.run_id, "acc")] == [0.9]
    # A point linked to a model that the run does not hold yet is stored.
    from mlflow.entities import Metric

    mlflow_client.log_batch(
        run.info.run_id, metrics=[Metric("loss", 0.0625, 0, 3, model_id=info.model_id)]
    )
    history = mlflow_client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history][-1] == (3, 0.0625)
    assert len(history) == 4
    assert model_id.startswith("m-")
    assert info.model_uri == f"models:/{model_id}"

    logged = mlflow_client.get_logged_model(model_id)
    assert logged.name == "model"
    assert logged.source_run_id == run.info.run_id
    assert logged.experiment_id == run.info.experiment_id
    assert logged.status.to_int() == 2  # READY
    assert logged.artifact_location == (
        f"mlflow-artifacts:/{run.info.experiment_id}/models/{model_id}/artifacts"
    )
    assert logged.params["C"] == "1.0"
    assert {m.key: m.value for m in logged.metrics} == {"acc": 0.9, "loss": 0.0625}

    # The run lists the model among its outputs.
    outputs = mlflow_client.get_run(run.info.run_id).outputs
    assert [o.model_id for o in outputs.model_outputs] == [model_id]

    expected = model.predict(x)
    loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert (loaded.predict(x) == expected).all()
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    assert (np.asarray(pyfunc.predict(x)) == expected).all()
    # MLflow 3 finds a run's model by name among the run's logged models.
    by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert (np.asarray(by_run.predict(x)) == expected).all()

    # Its files are blobs of the logged model (what the registry copies), in the
    # model's folder of the artifact proxy.
    with mlflow_target.platform.db.read() as session:
        paths = [p for p, _, _ in logged_model_files(session, model_id)]
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= set(paths), paths
    assert any(p.startswith("model.") for p in paths), paths
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "m")))
    assert (local / "MLmodel").read_text().count(model_id) >= 1
    listed = httpx.get(
        f"{mlflow_target.url}/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories"
    ).json()
    assert listed["root_uri"] == logged.artifact_location
    assert "MLmodel" in {f["path"] for f in listed["files"]}

    actions = _audit_actions(mlflow_target.platform, model_id)
    assert actions[0] == "logged_models.create"
    assert "logged_models.upload" in actions
    assert actions[-1] == "logged_models.finalize"
    assert "runs.log_outputs" in _audit_actions(mlflow_target.platform, run.info.run_id)


def test_log_model_outside_a_run_lands_in_the_default_experiment(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow
    import mlflow.sklearn

    model, x = _fit()
    info = mlflow.sklearn.log_model(model, name="loose")
    logged = mlflow_client.get_logged_model(info.model_id)
    default = mlflow_client.get_experiment_by_name("Default")
    assert logged.experiment_id == default.experiment_id
    assert not logged.source_run_id
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert (loaded.predict(x) == model.predict(x)).all()


def test_logged_model_api(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    from mlflow.entities import LoggedModelStatus

    experiment_id = mlflow_client.create_experiment("models-api")
    run = mlflow_client.create_run(experiment_id)
    mlflow_client.log_metric(run.info.run_id, "score", 0.7)
    first = mlflow_client.create_logged_model(
        experiment_id,
        name="first",
        source_run_id=run.info.run_id,
        tags={"team": "a"},
        params={"depth": "3"},
        model_type="classifier",
    )
    second = mlflow_client.create_logged_model(experiment_id, name="second", tags={"team": "b"})
    assert first.status == LoggedModelStatus.PENDING
    assert first.tags == {"team": "a"} and first.params == {"depth": "3"}
    assert first.model_type == "classifier"

    mlflow_client.set_logged_model_tags(first.model_id, {"stage": "dev", "team": "c"})
    mlflow_client.delete_logged_model_tag(first.model_id, "stage")
    mlflow_client.log_model_params(first.model_id, {"lr": "0.1", "depth": "3"})
    finalized = mlflow_client.finalize_logged_model(first.model_id, LoggedModelStatus.READY)
    assert finalized.status == LoggedModelStatus.READY
    got = mlflow_client.get_logged_model(first.model_id)
    assert got.tags == {"team": "c"}
    assert got.params == {"depth": "3", "lr": "0.1"}

    def names(**kwargs: Any) -> list[str]:
        found = mlflow_client.search_logged_models(experiment_ids=[experiment_id], **kwargs)
        return [m.name for m in found]

    assert names() == ["second", "first"]  # newest first
    assert names(filter_string="name = 'first'") == ["first"]
    assert names(filter_string="tags.team = 'b'") == ["second"]
    assert names(filter_string="params.lr = '0.1' AND status = 'READY'") == ["first"]
    assert names(filter_string="metrics.score > 0.5") == ["first"]
    assert names(filter_string="model_type LIKE 'class%'") == ["first"]
    assert names(filter_string=f"source_run_id = '{run.info.run_id}'") == ["first"]
    assert names(order_by=[{"field_name": "name", "ascending": True}]) == ["first", "second"]
    assert names(order_by=[{"field_name": "metrics.score", "ascending": False}]) == [
        "first",
        "second",
    ]
    page = mlflow_client.search_logged_models(experiment_ids=[experiment_id], max_results=1)
    assert [m.name for m in page] == ["second"] and page.token
    rest = mlflow_client.search_logged_models(
        experiment_ids=[experiment_id], max_results=1, page_token=page.token
    )
    assert [m.name for m in rest] == ["first"] and not rest.token

    mlflow_client.delete_logged_model(second.model_id)
    assert names() == ["first"]
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        mlflow_client.get_logged_model(second.model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    deleted = httpx.get(
        f"{mlflow_target.url}/api/2.0/mlflow/logged-models/{second.model_id}",
        params={"allow_deleted": "true"},
    ).json()["model"]
    assert deleted["info"]["name"] == "second"

    actions = _audit_actions(mlflow_target.platform, first.model_id)
    assert actions == [
        "logged_models.create",
        "logged_models.set_tags",
        "logged_models.delete_tag",
        "logged_models.log_params",
        "logged_models.finalize",
    ]
    assert _audit_actions(mlflow_target.platform, second.model_id)[-1] == "logged_models.delete"


def test_bad_logged_model_requests_change_nothing(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

    experiment_id = mlflow_client.create_experiment("bad-models")
    model = mlflow_client.create_logged_model(experiment_id, name="ok", params={"a": "1"})
    count = _model_count(mlflow_target.platform)
    audits = len(_audit_actions(mlflow_target.platform, model.model_id))

    def code(call: Any, *args: Any, **kwargs: Any) -> str:
        with pytest.raises(MlflowException) as err:
            call(*args, **kwargs)
        return str(err.value.error_code)

    assert code(mlflow_client.create_logged_model, experiment_id, name="a/b") == (
        "INVALID_PARAMETER_VALUE"
    )
    assert code(mlflow_client.create_logged_model, "999999", name="x") == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert code(
        mlflow_client.create_logged_model, experiment_id, name="x", source_run_id="f" * 32
    ) == ("RESOURCE_DOES_NOT_EXIST")
    assert code(mlflow_client.log_model_params, model.model_id, {"a": "2"}) == (
        "INVALID_PARAMETER_VALUE"
    )
    assert code(mlflow_client.delete_logged_model_tag, model.model_id, "nope") == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert code(mlflow_client.get_logged_model, "m-" + "0" * 32) == "RESOURCE_DOES_NOT_EXIST"
    assert code(mlflow_client.get_logged_model, "not-an-id") == "RESOURCE_DOES_NOT_EXIST"
    assert code(mlflow_client.finalize_logged_model, model.model_id, LoggedModelStatus.PENDING) == (
        "INVALID_PARAMETER_VALUE"
    )
    search = mlflow_client.search_logged_models
    assert code(search, [experiment_id], filter_string="name = ") == "INVALID_PARAMETER_VALUE"
    assert code(search, [experiment_id], filter_string="colour = 'red'") == (
        "INVALID_PARAMETER_VALUE"
    )
    assert code(search, [experiment_id], order_by=[{"field_name": "tags.x"}]) == (
        "INVALID_PARAMETER_VALUE"
    )
    assert code(search, ["999999"]) == "RESOURCE_DOES_NOT_EXIST"

    assert _model_count(mlflow_target.platform) == count
    assert mlflow_client.get_logged_model(model.model_id).params == {"a": "1"}
    assert len(_audit_actions(mlflow_target.platform, model.model_id)) == audits

    # A deleted model takes no more changes.
    mlflow_client.delete_logged_model(model.model_id)
    assert code(mlflow_client.set_logged_model_tags, model.model_id, {"k": "v"}) == (
        "INVALID_PARAMETER_VALUE"
    )


def test_logged_model_files_outside_the_model_are_refused(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    experiment_id = mlflow_client.create_experiment("model-files")
    model = mlflow_client.create_logged_model(experiment_id, name="m")
    other = mlflow_client.create_experiment("elsewhere")
    base = f"{mlflow_target.url}/api/2.0/mlflow-artifacts/artifacts"
    root = f"{base}/{experiment_id}/models/{model.model_id}/artifacts"
    with httpx.Client() as http:
        assert http.put(f"{root}/weights/w.bin", content=b"w").status_code == 200
        assert http.get(f"{root}/weights/w.bin").content == b"w"
        wrong = http.put(f"{base}/{other}/models/{model.model_id}/artifacts/x", content=b"x")
        assert wrong.status_code == 404
        bad = http.put(f"{root}/%2E%2E/x", content=b"x")
        assert bad.status_code == 400
    with mlflow_target.platform.db.read() as session:
        assert [p for p, _, _ in logged_model_files(session, model.model_id)] == ["weights/w.bin"]
