"""The model registry through MLflow's REST API, with the real ``mlflow`` client: what it
registers is an ordinary Shipyard registered model and version, and what Shipyard
registers is visible to MLflow code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from tests.auth.conftest import Secured

from shipyard.auth.tables import AuditEventRow
from shipyard.client import Client
from shipyard.platform import Platform
from shipyard.registry.tables import ModelVersionRow, RegisteredModelRow

from .conftest import MlflowTarget

REGISTRY = "/api/2.0/mlflow"


# --- helpers -------------------------------------------------------------------------------


def _code(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return str(excinfo.value.error_code)


def _audit_actions(platform: Platform) -> list[str]:
    with platform.db.read() as session:
        return list(session.scalars(select(AuditEventRow.action).order_by(AuditEventRow.id)))


def _counts(platform: Platform) -> tuple[int, int]:
    """(registered models, model versions) in the store."""
    with platform.db.read() as session:
        models = session.scalar(select(func.count()).select_from(RegisteredModelRow))
        versions = session.scalar(select(func.count()).select_from(ModelVersionRow))
    return int(models or 0), int(versions or 0)


def _native_run(target: MlflowTarget, tmp_path: Path, project: str | None = None) -> str:
    """A run made with Shipyard's own SDK holding two files under ``model/``."""
    folder = tmp_path / f"saved-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 4)
    with Client(target.url, project=project) as native:
        run_id = native.runs.create("registry").id
        native.artifacts.upload_dir(run_id, folder, "model")
    return run_id


def _experiment_of(target: MlflowTarget, run_id: str) -> int:
    with Client(target.url) as native:
        return native.runs.get(run_id).experiment_id


# --- registered models ----------------------------------------------------------------------


def test_model_names_with_spaces_work_both_ways(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    from shipyard.client import Client

    mlflow_client.create_registered_model("Churn Model", description="spaces are common")
    mlflow_client.set_registered_model_tag("Churn Model", "team", "growth")
    found = mlflow_client.search_registered_models(filter_string="name LIKE 'Churn %'")
    assert [m.name for m in found] == ["Churn Model"]
    with Client(mlflow_target.url) as native:
        assert native.models.get("Churn Model").description == "spaces are common"


def test_registered_model_lifecycle(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    created = client.create_registered_model(
        "churn", tags={"team": "growth"}, description="first cut"
    )
    assert (created.name, created.description, created.tags) == (
        "churn",
        "first cut",
        {"team": "growth"},
    )
    assert created.creation_timestamp > 0 and created.latest_versions == []

    before = _counts(mlflow_target.platform)
    with pytest.raises(MlflowException) as dup:
        client.create_registered_model("churn")
    assert _code(dup) == "RESOURCE_ALREADY_EXISTS"
    assert _counts(mlflow_target.platform) == before

    assert client.update_registered_model("churn", description="second").description == "second"
    client.set_registered_model_tag("churn", "stage", "beta")
    client.set_registered_model_tag("churn", "team", "core")
    assert client.get_registered_model("churn").tags == {"team": "core", "stage": "beta"}
    client.delete_registered_model_tag("churn", "stage")
    client.delete_registered_model_tag("churn", "never-set")  # MLflow: not an error
    assert client.get_registered_model("churn").tags == {"team": "core"}

    client.create_registered_model("taken")
    with pytest.raises(MlflowException) as clash:
        client.rename_registered_model("churn", "taken")
    assert _code(clash) == "RESOURCE_ALREADY_EXISTS"
    client.rename_registered_model("churn", "churn-v2")
    renamed = client.get_registered_model("churn-v2")
    assert (renamed.name, renamed.description, renamed.tags) == (
        "churn-v2",
        "second",
        {"team": "core"},
    )
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model("churn")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"

    # The same model through the native SDK.
    with Client(mlflow_target.url) as native:
        assert native.models.get("churn-v2").tags == {"team": "core"}

    client.delete_registered_model("churn-v2")
    with pytest.raises(MlflowException) as deleted:
        client.get_registered_model("churn-v2")
    assert _code(deleted) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as twice:
        client.delete_registered_model("churn-v2")
    assert _code(twice) == "RESOURCE_DOES_NOT_EXIST"

    actions = _audit_actions(mlflow_target.platform)
    for action in (
        "models.create",
        "models.update",
        "models.set_tags",
        "models.delete_tag",
        "models.rename",
        "models.delete",
    ):
        assert action in actions
    # The tag that was never set left no trace.
    assert actions.count("models.delete_tag") == 1


def test_bad_model_requests_change_nothing(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    client.create_registered_model("kept")
    before = (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform)))
    for call in (
        lambda: client.create_registered_model("trailing space "),
        lambda: client.create_registered_model("a@b"),
        lambda: client.rename_registered_model("kept", "bad@name"),
        lambda: client.set_registered_model_tag("kept", "", "x"),
        lambda: client.set_registered_model_tag("kept", "k" * 251, "x"),
        lambda: client.set_registered_model_tag("kept", "k", "a\x00b"),  # both databases
        lambda: client.set_registered_model_tag("kept", "k", "v" * 8001),
        lambda: client.update_registered_model("kept", description="a\x00b"),
        lambda: client.set_registered_model_alias("kept", "champion", "abc"),
    ):
        with pytest.raises(MlflowException) as bad:
            call()
        assert _code(bad) == "INVALID_PARAMETER_VALUE", bad.value
    for call in (
        lambda: client.update_registered_model("missing", description="x"),
        lambda: client.set_registered_model_tag("missing", "k", "v"),
        lambda: client.delete_registered_model_tag("missing", "k"),
        lambda: client.set_registered_model_alias("kept", "champion", "1"),
        lambda: client.get_model_version("kept", "1"),
        lambda: client.get_model_version_by_alias("kept", "champion"),
    ):
        with pytest.raises(MlflowException) as missing:
            call()
        assert _code(missing) == "RESOURCE_DOES_NOT_EXIST", missing.value
    assert (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform))) == before
    assert client.get_registered_model("kept").tags == {}

    # Raw requests: a missing field and a body that is not JSON.
    response = httpx.post(f"{mlflow_target.url}{REGISTRY}/registered-models/create", json={})
    assert (response.status_code, response.json()["error_code"]) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "name" in response.json()["message"]
    response = httpx.post(
        f"{mlflow_target.url}{REGISTRY}/registered-models/create", content=b"{not json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"error_code", "message"}


def test_search_registered_models(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    for name, team in (
        ("cls-a", "red"),
        ("cls-b", "blue"),
        ("CLS-c", "red"),
        ("reg-x", "blue"),
        ("reg-y", None),
    ):
        client.create_registered_model(name, tags={"team": team} if team else None)

    def names(filter_string: str | None = None, **kwargs: Any) -> list[str]:
        return [m.name for m in client.search_registered_models(filter_string, **kwargs)]

    assert names() == ["CLS-c", "cls-a", "cls-b", "reg-x", "reg-y"]
    assert names("name LIKE 'cls-%'") == ["cls-a", "cls-b"]  # LIKE is case-sensitive
    assert names("name ILIKE 'cls-%'") == ["CLS-c", "cls-a", "cls-b"]
    assert names("name = 'reg-x'") == ["reg-x"]
    assert names("name != 'reg-x' AND name LIKE 'reg%'") == ["reg-y"]
    assert names("tags.team = 'red'") == ["CLS-c", "cls-a"]
    assert names("tags.`team` != 'red'") == ["cls-b", "reg-x"]  # untagged models do not match
    assert names("tags.team LIKE 'b%' AND name ILIKE 'REG%'") == ["reg-x"]
    assert names("name IN ('cls-a', 'reg-y')") == ["cls-a", "reg-y"]
    assert names(order_by=["name DESC"]) == ["reg-y", "reg-x", "cls-b", "cls-a", "CLS-c"]
    client.update_registered_model("cls-b", description="touched last")
    assert names(order_by=["last_updated_timestamp DESC"])[0] == "cls-b"
    assert names(order_by=["creation_timestamp ASC"])[0] == "cls-a"

    # Paging: two at a time, the same five in the same order.
    seen: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=2, page_token=token)
        assert len(page) <= 2
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == names()

    # The fluent API pages through everything.
    import mlflow

    assert [m.name for m in mlflow.search_registered_models(filter_string="name LIKE 'reg%'")] == [
        "reg-x",
        "reg-y",
    ]

    for bad in ("name = ", "name ~ 'x'", "owner = 'me'", "name = 'a' OR name = 'b'"):
        with pytest.raises(MlflowException) as invalid:
            client.search_registered_models(bad)
        assert _code(invalid) == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(MlflowException) as invalid:
        client.search_registered_models(order_by=["size DESC"])
    assert _code(invalid) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as invalid:
        client.search_registered_models(max_results=1001)
    assert _code(invalid) == "INVALID_PARAMETER_VALUE"


# --- versions from runs made with the native SDK -------------------------------------------


def test_versions_of_native_runs(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    run_id = _native_run(mlflow_target, tmp_path)
    experiment = _experiment_of(mlflow_target, run_id)
    client.create_registered_model("fraud")

    first = client.create_model_version(
        "fraud",
        f"runs:/{run_id}/model",
        run_id=run_id,
        tags={"data": "v1"},
        description="baseline",
    )
    assert (first.name, first.version, first.status, first.run_id) == (
        "fraud",
        "1",
        "READY",
        run_id,
    )
    assert (first.source, first.description, first.tags) == (
        f"runs:/{run_id}/model",
        "baseline",
        {"data": "v1"},
    )
    assert first.current_stage == "None"

    # The artifact proxy's path of the same folder is a source too.
    proxied = f"mlflow-artifacts:/{experiment}/{run_id}/artifacts/model"
    second = client.create_model_version("fraud", proxied, run_id=run_id)
    assert (second.version, second.source) == ("2", proxied)

    got = client.get_model_version("fraud", 1)
    assert (got.version, got.tags, got.description) == ("1", {"data": "v1"}, "baseline")
    assert client.update_model_version("fraud", 1, description="better").description == "better"
    client.set_model_version_tag("fraud", "1", "reviewed", "yes")
    client.delete_model_version_tag("fraud", "1", "data")
    client.delete_model_version_tag("fraud", "1", "never-set")  # MLflow: not an error
    assert client.get_model_version("fraud", "1").tags == {"reviewed": "yes"}

    assert client.get_model_version_download_uri("fraud", 1) == proxied

    # Search: by model, by run, by version number; order and paging.
    def found(filter_string: str, **kwargs: Any) -> list[tuple[str, str]]:
        return [(v.name, v.version) for v in client.search_model_versions(filter_string, **kwargs)]

    assert found("name = 'fraud'") == [("fraud", "2"), ("fraud", "1")]
    assert found(f"run_id = '{run_id}'") == [("fraud", "2"), ("fraud", "1")]
    assert found("name = 'fraud' AND version_number > 1") == [("fraud", "2")]
    assert found("tags.reviewed = 'yes'") == [("fraud", "1")]
    assert found("name = 'fraud'", order_by=["version_number ASC"]) == [
        ("fraud", "1"),
        ("fraud", "2"),
    ]
    page = client.search_model_versions("name = 'fraud'", max_results=1)
    assert [v.version for v in page] == ["2"] and page.token
    rest = client.search_model_versions("name = 'fraud'", max_results=1, page_token=page.token)
    assert [v.version for v in rest] == ["1"] and not rest.token
    with pytest.raises(MlflowException) as invalid:
        client.search_model_versions("version_number > 'x'")
    assert _code(invalid) == "INVALID_PARAMETER_VALUE"

    # The registered model shows its newest version and its aliases.
    client.set_registered_model_alias("fraud", "champion", "1")
    model = client.get_registered_model("fraud")
    assert model.aliases == {"champion": "1"}
    assert [v.version for v in model.latest_versions] == ["2"]
    assert client.get_model_version_by_alias("fraud", "champion").version == "1"
    assert client.get_model_version("fraud", "1").aliases == ["champion"]

    # The same versions through the native SDK, with the run's files.
    with Client(mlflow_target.url) as native:
        version = native.models.get_version("fraud", "champion")
        assert (version.version, version.run_id, version.description) == (1, run_id, "better")
        assert sorted(f.path for f in version.files or []) == ["MLmodel", "weights.bin"]
        run_files = {
            a.path[len("model/") :]: a.hash for a in native.artifacts.list(run_id, "model")
        }
        assert {f.path: f.hash for f in version.files or []} == run_files
        # An alias set natively is what MLflow sees.
        native.models.set_alias("fraud", "challenger", 2)
    assert client.get_model_version_by_alias("fraud", "challenger").version == "2"
    assert client.get_registered_model("fraud").aliases == {"champion": "1", "challenger": "2"}

    client.delete_registered_model_alias("fraud", "challenger")
    client.delete_registered_model_alias("fraud", "challenger")  # MLflow: not an error
    with pytest.raises(MlflowException) as unset:
        client.get_model_version_by_alias("fraud", "challenger")
    assert _code(unset) == "RESOURCE_DOES_NOT_EXIST"

    # Deleting a version: gone for both clients, and its number is never reused.
    client.delete_model_version("fraud", "2")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version("fraud", "2")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert found("name = 'fraud'") == [("fraud", "1")]
    third = client.create_model_version("fraud", f"runs:/{run_id}/model", run_id=run_id)
    assert third.version == "3"
    with Client(mlflow_target.url) as native:
        assert [v.version for v in native.models.list_versions("fraud")] == [3, 1]

    actions = _audit_actions(mlflow_target.platform)
    for action in (
        "models.create_version",
        "models.update_version",
        "models.set_version_tags",
        "models.delete_version_tag",
        "models.set_alias",
        "models.delete_alias",
        "models.delete_version",
    ):
        assert action in actions
    assert actions.count("models.delete_alias") == 1
    assert actions.count("models.delete_version_tag") == 1


def test_version_made_natively_is_seen_by_mlflow(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    run_id = _native_run(mlflow_target, tmp_path)
    with Client(mlflow_target.url) as native:
        native.models.create("native-model", description="from the SDK")
        native.models.create_version("native-model", run_id, "model", tags={"k": "v"})
        native.models.set_alias("native-model", "prod", 1)
    version = mlflow_client.get_model_version_by_alias("native-model", "prod")
    assert (version.version, version.run_id, version.tags) == ("1", run_id, {"k": "v"})
    assert version.source == f"runs:/{run_id}/model"
    assert version.status == "READY"
    experiment = _experiment_of(mlflow_target, run_id)
    assert (
        mlflow_client.get_model_version_download_uri("native-model", "1")
        == f"mlflow-artifacts:/{experiment}/{run_id}/artifacts/model"
    )
    assert mlflow_client.get_registered_model("native-model").description == "from the SDK"


def test_a_changed_source_is_not_served_as_the_version(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = _native_run(mlflow_target, tmp_path)
    mlflow_client.create_registered_model("pinned")
    mlflow_client.create_model_version("pinned", f"runs:/{run_id}/model", run_id=run_id)
    assert mlflow_client.get_model_version_download_uri("pinned", "1").endswith("/model")
    # The run's file is replaced after registration: the version still holds the old one.
    changed = tmp_path / "weights.bin"
    changed.write_bytes(b"not the registered weights")
    with Client(mlflow_target.url) as native:
        native.artifacts.upload_file(run_id, changed, "model")
    with pytest.raises(MlflowException) as stale:
        mlflow_client.get_model_version_download_uri("pinned", "1")
    assert _code(stale) == "INVALID_STATE"
    assert "changed" in str(stale.value)
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts("models:/pinned/1", dst_path=str(tmp_path / "out"))
    # Shipyard's own client downloads the registered bytes, verified by hash.
    with Client(mlflow_target.url) as native:
        folder = native.models.download("pinned/1", tmp_path / "native")
    assert (folder / "weights.bin").read_bytes() == bytes(range(256)) * 4


def test_bad_version_requests_change_nothing(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    run_id = _native_run(mlflow_target, tmp_path)
    other_run = _native_run(mlflow_target, tmp_path)
    experiment = _experiment_of(mlflow_target, run_id)
    client.create_registered_model("strict")
    before = (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform)))

    invalid = [
        ("s3://bucket/model", None),
        ("/tmp/model", None),
        ("file:///tmp/model", None),
        (f"runs:/{run_id}/../escape", run_id),
        (f"runs:/{run_id}/model", other_run),  # the run_id contradicts the source
        (f"runs:/{run_id}/nothing-here", run_id),
        (f"mlflow-artifacts:/{experiment + 1000}/{run_id}/artifacts/model", run_id),
        (f"mlflow-artifacts:/{experiment}/{run_id}/elsewhere/model", run_id),
        ("models:/strict/Production", None),
        ("models://other-host/m-0123", None),
    ]
    for source, source_run in invalid:
        with pytest.raises(MlflowException) as bad:
            client.create_model_version("strict", source, run_id=source_run)
        assert _code(bad) == "INVALID_PARAMETER_VALUE", source
    missing = [
        (f"runs:/{'0' * 32}/model", None),
        (f"models:/m-{'0' * 32}", None),
        ("models:/strict/1", None),
        ("models:/no-such-model@champion", None),
    ]
    for source, source_run in missing:
        with pytest.raises(MlflowException) as absent:
            client.create_model_version("strict", source, run_id=source_run)
        assert _code(absent) == "RESOURCE_DOES_NOT_EXIST", source
    with pytest.raises(MlflowException) as no_model:
        client.create_model_version("no-such-model", f"runs:/{run_id}/model", run_id=run_id)
    assert _code(no_model) == "RESOURCE_DOES_NOT_EXIST"
    for version in ("abc", "1.5"):
        with pytest.raises(MlflowException) as bad_number:
            client.get_model_version("strict", version)
        assert _code(bad_number) == "INVALID_PARAMETER_VALUE"
    assert (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform))) == before

    client.create_model_version("strict", f"runs:/{run_id}/model", run_id=run_id)
    before = (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform)))
    for alias in ("latest", "7", "has space"):
        with pytest.raises(MlflowException) as bad_alias:
            client.set_registered_model_alias("strict", alias, "1")
        assert _code(bad_alias) == "INVALID_PARAMETER_VALUE", alias
    with pytest.raises(MlflowException) as bad_stage:
        client.transition_model_version_stage("strict", "1", "Shipped")
    assert _code(bad_stage) == "INVALID_PARAMETER_VALUE"
    assert (_counts(mlflow_target.platform), len(_audit_actions(mlflow_target.platform))) == before


def test_copy_of_a_version(mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path) -> None:
    client = mlflow_client
    run_id = _native_run(mlflow_target, tmp_path)
    client.create_registered_model("source-model")
    client.create_model_version("source-model", f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("source-model", "champion", "1")
    copied = client.copy_model_version("models:/source-model@champion", "copy-model")
    assert (copied.name, copied.version, copied.run_id) == ("copy-model", "1", run_id)
    assert copied.source == "models:/source-model/1"
    with Client(mlflow_target.url) as native:
        files = {f.path: f.hash for f in native.models.get_version("copy-model", 1).files or []}
        original = native.models.get_version("source-model", 1).files or []
        assert files == {f.path: f.hash for f in original}


def test_stages_are_kept_as_a_version_tag(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    client = mlflow_client
    run_id = _native_run(mlflow_target, tmp_path)
    client.create_registered_model("staged")
    for _ in range(3):
        client.create_model_version("staged", f"runs:/{run_id}/model", run_id=run_id)

    assert client.transition_model_version_stage("staged", "1", "production").current_stage == (
        "Production"
    )
    client.transition_model_version_stage("staged", "2", "Staging")
    moved = client.transition_model_version_stage(
        "staged", "3", "Production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='staged'")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}
    latest = client.get_latest_versions("staged", stages=["Production"])
    assert [(v.version, v.current_stage) for v in latest] == [("3", "Production")]
    every = {v.current_stage: v.version for v in client.get_latest_versions("staged")}
    assert every == {"Archived": "1", "Staging": "2", "Production": "3"}
    # MLflow does not list the stage among the tags; Shipyard keeps it as one.
    assert client.get_model_version("staged", "3").tags == {}
    with Client(mlflow_target.url) as native:
        assert native.models.get_version("staged", 3).tags == {"mlflow.stage": "Production"}
    client.transition_model_version_stage("staged", "3", "None")
    assert client.get_model_version("staged", "3").current_stage == "None"
    assert "models.transition_stage" in _audit_actions(mlflow_target.platform)


def test_registry_is_per_project(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    with Client(mlflow_target.url) as native:
        native.projects.create("vision")
    run_id = _native_run(mlflow_target, tmp_path, project="vision")
    vision = mlflow.MlflowClient(
        mlflow_target.project_url("vision"), registry_uri=mlflow_target.project_url("vision")
    )
    vision.create_registered_model("detector")
    vision.create_model_version("detector", f"runs:/{run_id}/model", run_id=run_id)
    assert [m.name for m in vision.search_registered_models()] == ["detector"]
    assert [m.name for m in mlflow_client.search_registered_models()] == []
    with pytest.raises(MlflowException) as elsewhere:
        mlflow_client.get_registered_model("detector")
    assert _code(elsewhere) == "RESOURCE_DOES_NOT_EXIST"
    # A run of another project is not a source here.
    mlflow_client.create_registered_model("detector")
    with pytest.raises(MlflowException) as foreign:
        mlflow_client.create_model_version("detector", f"runs:/{run_id}/model", run_id=run_id)
    assert _code(foreign) == "RESOURCE_DOES_NOT_EXIST"
    with Client(mlflow_target.url, project="vision") as native:
        assert native.models.get_version("detector", 1).run_id == run_id


# --- end to end: MLflow 3 logged models, register, load -------------------------------------


def _train() -> tuple[Any, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def test_register_a_logged_model_and_load_it(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow

    model, x = _train()
    expected = model.predict(x)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2])
    version = mlflow.register_model(info.model_uri, "classifier")
    assert (version.version, version.status) == ("1", "READY")
    # (MLflow's client does not read model_id back; the native check below does.)
    assert (version.run_id, version.source) == (run.info.run_id, info.model_uri)

    mlflow_client.set_registered_model_alias("classifier", "champion", version.version)
    for uri in ("models:/classifier@champion", "models:/classifier/1", "models:/classifier/latest"):
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(x), expected)
    assert mlflow_client.get_model_version_download_uri("classifier", "1") == (
        f"mlflow-artifacts:/{run.info.experiment_id}/models/{info.model_id}/artifacts"
    )

    # The same version natively: the logged model's files, by hash, and its run.
    with Client(mlflow_target.url) as native:
        seen = native.models.get_version("classifier", "champion")
        assert (seen.version, seen.logged_model_id, seen.run_id) == (
            1,
            info.model_id,
            run.info.run_id,
        )
        assert "MLmodel" in {f.path for f in seen.files or []}
        # An alias set natively is what an MLflow client loads.
        native.models.set_alias("classifier", "prod", 1)
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model("models:/classifier@prod").predict(x), expected
    )

    # MLflow 3 resolves runs:/<run>/<name> to the run's logged model of that name.
    again = mlflow.register_model(f"runs:/{run.info.run_id}/model", "classifier")
    assert (again.version, again.source) == ("2", info.model_uri)
    with Client(mlflow_target.url) as native:
        assert native.models.get_version("classifier", 2).logged_model_id == info.model_id
    # The client records the registrations on the logged model.
    assert mlflow_client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]


def test_log_model_with_registered_model_name(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow

    model, x = _train()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m", registered_model_name="auto")
    assert str(info.registered_model_version) == "1"
    loaded = mlflow.sklearn.load_model("models:/auto/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_register_a_logged_model_without_a_run(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow

    model, x = _train()
    assert mlflow.active_run() is None
    info = mlflow.sklearn.log_model(model, name="runless")
    version = mlflow.register_model(info.model_uri, "runless-model")
    assert not version.run_id
    with Client(mlflow_target.url) as native:
        seen = native.models.get_version("runless-model", 1)
        assert (seen.run_id, seen.logged_model_id) == (None, info.model_id)
    loaded = mlflow.pyfunc.load_model("models:/runless-model/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_register_a_model_logged_as_run_artifacts(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow

    model, x = _train()
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(model, saved)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(saved), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "from-artifacts")
    assert version.source == f"{run.info.artifact_uri}/model"
    assert version.run_id == run.info.run_id
    with Client(mlflow_target.url) as native:
        assert native.models.get_version("from-artifacts", 1).logged_model_id is None
    loaded = mlflow.pyfunc.load_model("models:/from-artifacts/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# --- roles -------------------------------------------------------------------------------------


def test_registry_checks_the_callers_role(
    secured: Secured, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    ed = secured.user("ed", roles={"default": "editor"})
    vic = secured.user("vic", roles={"default": "viewer"})
    secured.user("ada", password="ada-password", roles={"default": "admin"})
    client = mlflow.MlflowClient(secured.url, registry_uri=secured.url)

    def code(call: Callable[[], Any]) -> str:
        with pytest.raises(MlflowException) as err:
            call()
        return str(err.value.error_code)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ed)
    run = client.create_run(client.create_experiment("secure"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.create_registered_model("guarded")
    source = f"runs:/{run.info.run_id}/model"
    client.create_model_version("guarded", source, run_id=run.info.run_id)
    client.set_registered_model_alias("guarded", "champion", "1")

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", vic)
    assert client.get_model_version_by_alias("guarded", "champion").version == "1"
    assert [m.name for m in client.search_registered_models()] == ["guarded"]
    before = len(secured.audit_rows())
    for call in (
        lambda: client.create_registered_model("mine"),
        lambda: client.create_model_version("guarded", source, run_id=run.info.run_id),
        lambda: client.set_registered_model_alias("guarded", "champion", "1"),
        lambda: client.set_model_version_tag("guarded", "1", "k", "v"),
        lambda: client.delete_model_version("guarded", "1"),
    ):
        assert code(call) == "PERMISSION_DENIED"
    assert len(secured.audit_rows()) == before

    # Deleting a whole registered model takes a project admin, as natively.
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ed)
    assert code(lambda: client.delete_registered_model("guarded")) == "PERMISSION_DENIED"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ada")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "ada-password")
    client.delete_registered_model("guarded")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    assert code(lambda: client.get_registered_model("guarded")) == "UNAUTHENTICATED"

    events = {(r.actor, r.action) for r in secured.audit_rows()}
    assert {
        ("ed", "models.create"),
        ("ed", "models.create_version"),
        ("ed", "models.set_alias"),
        ("ada", "models.delete"),
    } <= events


def test_a_model_mlflow_logged_loads_through_shipyard(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    """Registered through mlflow, loaded with Shipyard's SDK (verified by hash, then
    read by mlflow's flavor): a scikit-learn model comes back as its estimator."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    y = np.array([0, 1, 1, 0])
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name="Churn Model")
    mlflow_client.set_registered_model_alias("Churn Model", "champion", "1")
    with Client(mlflow_target.url) as native:
        loaded = native.models.load("Churn Model@champion")
        assert isinstance(loaded, LogisticRegression)
        assert (loaded.predict(x) == model.predict(x)).all()
        version = native.models.resolve("Churn Model@champion")
        assert "MLmodel" in {f.path for f in version.files or []}


def test_a_model_shipyard_logged_loads_through_mlflow(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    """A scikit-learn model saved by Shipyard's SDK is also an MLflow model (an MLmodel
    beside the pickle): mlflow's loaders read it by alias and by version."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from shipyard.registry.flavors import save_model

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    model = LogisticRegression().fit(x, np.array([0, 1, 1, 0]))
    save_model(model, tmp_path / "saved")
    with Client(mlflow_target.url) as native:
        run_id = native.runs.create("registry").id
        native.artifacts.upload_dir(run_id, tmp_path / "saved", "model")
        native.models.create("native")
        native.models.create_version("native", run_id)
        native.models.set_alias("native", "champion", 1)
    by_alias = mlflow.pyfunc.load_model("models:/native@champion")
    assert (np.asarray(by_alias.predict(x)) == model.predict(x)).all()
    estimator = mlflow.sklearn.load_model("models:/native/1")
    assert isinstance(estimator, LogisticRegression)
    assert (estimator.predict(x) == model.predict(x)).all()
