"""The ``mlflow`` client against a server that requires auth: its token and its
username/password are Shipyard's, with the same roles, project boundaries and audit
events as native calls."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from tests.auth.conftest import Secured


@pytest.fixture
def secured(secured: Secured) -> Secured:
    """The compat suite's secured server, with the projects alpha and beta."""
    secured.project("alpha")
    secured.project("beta")
    return secured


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Switch the credentials the mlflow client sends (it reads them on every call)."""

    def use(token: str | None = None, username: str | None = None, password: str = "") -> None:
        for name in (
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
        ):
            monkeypatch.delenv(name, raising=False)
        if token:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        if username:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    yield use
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri("")


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(MlflowException) as err:
        call()
    return str(err.value.error_code)


def test_token_and_basic_credentials(secured: Secured, as_user: Callable[..., None]) -> None:
    token = secured.user("ed", password="ed-password-1", roles={"alpha": "editor"})
    client = mlflow.MlflowClient(f"{secured.url}/projects/alpha")

    as_user(token=token)
    eid = client.create_experiment("by-token")
    run = client.create_run(eid, run_name="r")
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).info.user_id == "ed"

    as_user(username="ed", password="ed-password-1")
    client.log_param(run.info.run_id, "p", "1")
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}

    # The fluent API with the same credentials, in the project of the tracking URI.
    mlflow.set_tracking_uri(f"{secured.url}/projects/alpha")
    with mlflow.start_run(experiment_id=eid) as fluent_run:
        mlflow.log_metric("f", 2.0)
    assert client.get_run(fluent_run.info.run_id).data.metrics == {"f": 2.0}

    as_user()
    assert _code(lambda: client.get_run(run.info.run_id)) == "UNAUTHENTICATED"
    assert _code(lambda: client.search_experiments()) == "UNAUTHENTICATED"
    as_user(username="ed", password="wrong")
    assert _code(lambda: client.get_run(run.info.run_id)) == "UNAUTHENTICATED"
    as_user(token="shy_not-a-token")
    assert _code(lambda: client.create_experiment("nope")) == "UNAUTHENTICATED"

    as_user(token=secured.admin_token)
    names = [
        e.name for e in mlflow.MlflowClient(f"{secured.url}/projects/alpha").search_experiments()
    ]
    assert "nope" not in names


def test_roles_and_projects(secured: Secured, as_user: Callable[..., None]) -> None:
    editor = secured.user("ed", roles={"alpha": "editor"})
    viewer = secured.user("vic", roles={"alpha": "viewer"})
    outsider = secured.user("out", roles={"beta": "editor"})
    alpha = mlflow.MlflowClient(f"{secured.url}/projects/alpha")
    beta = mlflow.MlflowClient(f"{secured.url}/projects/beta")

    as_user(token=editor)
    eid = alpha.create_experiment("shared")
    run_id = alpha.create_run(eid).info.run_id
    alpha.log_param(run_id, "p", "1")

    # A viewer reads and may not write; nothing changes.
    as_user(token=viewer)
    assert alpha.get_run(run_id).data.params == {"p": "1"}
    assert [e.name for e in alpha.search_experiments()] == ["shared"]
    assert len(alpha.search_runs([eid])) == 1
    assert _code(lambda: alpha.log_param(run_id, "q", "2")) == "PERMISSION_DENIED"
    assert _code(lambda: alpha.set_tag(run_id, "t", "v")) == "PERMISSION_DENIED"
    assert _code(lambda: alpha.create_experiment("mine")) == "PERMISSION_DENIED"
    assert _code(lambda: alpha.create_run(eid)) == "PERMISSION_DENIED"
    assert _code(lambda: alpha.delete_run(run_id)) == "PERMISSION_DENIED"
    assert _code(lambda: alpha.rename_experiment(eid, "x")) == "PERMISSION_DENIED"
    # MLflow's experiment "0" is made on first use, by one who may write: a viewer's
    # reads of it find none and create none.
    assert _code(lambda: alpha.get_experiment("0")) == "RESOURCE_DOES_NOT_EXIST"
    assert alpha.get_experiment_by_name("Default") is None
    assert [e.name for e in alpha.search_experiments()] == ["shared"]
    as_user(token=editor)
    assert alpha.get_experiment("0").name == "default"  # an editor's read makes it
    got = alpha.get_run(run_id)
    assert got.data.params == {"p": "1"} and "t" not in got.data.tags
    assert got.info.lifecycle_stage == "active"
    assert alpha.get_experiment(eid).name == "shared"

    # No access across projects: beta's editor cannot reach alpha's objects, by id,
    # by name or by search, through either project's tracking URI.
    as_user(token=outsider)
    assert _code(lambda: alpha.search_experiments()) == "PERMISSION_DENIED"
    assert _code(lambda: beta.get_run(run_id)) == "PERMISSION_DENIED"
    assert _code(lambda: beta.get_experiment(eid)) == "PERMISSION_DENIED"
    assert _code(lambda: beta.log_param(run_id, "x", "1")) == "PERMISSION_DENIED"
    assert _code(lambda: beta.create_run(eid)) == "PERMISSION_DENIED"
    assert beta.get_experiment_by_name("shared") is None
    assert _code(lambda: beta.search_runs([eid])) == "RESOURCE_DOES_NOT_EXIST"
    beta_eid = beta.create_experiment("shared")  # names are per project
    assert beta_eid != eid
    # Experiment "0" is each project's own default experiment.
    beta_default = beta.get_experiment("0").experiment_id
    as_user(token=editor)
    assert alpha.get_experiment("0").experiment_id != beta_default


def test_mlflow_mutations_audit_like_native_calls(
    secured: Secured, as_user: Callable[..., None]
) -> None:
    token = secured.user("ed", roles={"alpha": "editor"})
    alpha = mlflow.MlflowClient(f"{secured.url}/projects/alpha")
    sdk = secured.sdk(token)
    sdk.project = "alpha"

    def events(after: int) -> list[tuple[str, str, str, str, int | None]]:
        return [
            (e.actor, e.action, e.object_type, e.object_id, e.project_id)
            for e in secured.audit_rows(after)
        ]

    as_user(token=token)

    start = secured.last_audit_id()
    eid = int(alpha.create_experiment("via-mlflow"))
    run_id = alpha.create_run(str(eid)).info.run_id
    alpha.log_batch(run_id, params=[mlflow.entities.Param("p", "1")])
    alpha.set_terminated(run_id)
    alpha.set_experiment_tag(str(eid), "k", "v")
    alpha.delete_run(run_id)
    alpha.restore_run(run_id)
    alpha.delete_experiment(str(eid))
    alpha.restore_experiment(str(eid))
    via_mlflow = events(start)

    middle = secured.last_audit_id()
    exp = sdk.experiments.create("via-sdk")
    run = sdk.runs.create(exp.id)
    sdk.runs.log_batch(run.id, params={"p": "1"})
    sdk.runs.end(run.id)
    sdk.experiments.set_tag(exp.id, "k", "v")
    sdk.runs.delete(run.id)
    sdk.runs.restore(run.id)
    sdk.experiments.delete(exp.id)
    sdk.experiments.restore(exp.id)
    native = events(middle)

    ids = {str(eid): "E", run_id: "R", str(exp.id): "E", run.id: "R"}
    shape = [(a, act, t, ids[o], p) for a, act, t, o, p in via_mlflow]
    assert shape == [(a, act, t, ids[o], p) for a, act, t, o, p in native]
    assert [e[1] for e in via_mlflow] == [
        "experiments.create",
        "runs.create",
        "runs.log_batch",
        "runs.update",
        "experiments.set_tags",
        "runs.delete",
        "runs.restore",
        "experiments.delete",
        "experiments.restore",
    ]
    assert {e[0] for e in via_mlflow} == {"ed"}
    assert len({e[4] for e in via_mlflow}) == 1 and via_mlflow[0][4] is not None

    # MLflow-only mutations are audited too.
    before = secured.last_audit_id()
    alpha.delete_experiment_tag(str(eid), "k")
    rid = alpha.create_run(str(eid)).info.run_id
    alpha.set_tag(rid, "t", "1")
    alpha.delete_tag(rid, "t")
    actions = [e[1] for e in events(before)]
    assert actions == ["experiments.delete_tag", "runs.create", "runs.log_batch", "runs.delete_tag"]
