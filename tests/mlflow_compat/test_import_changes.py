"""``shipyard import mlflow`` run again after MLflow changed: what changed on finished
runs, experiments and the registry reaches the copies, and only that is copied.

A real ``mlflow server`` of its own (this module changes what it holds); each test
works on objects named after its target, and imports into a fresh Shipyard project.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from mlflow import MlflowClient

from shipyard.client import Client
from shipyard.mlflow_compat import mlflow_source
from shipyard.mlflow_compat.importer import (
    ALREADY,
    SAME_FILE,
    TAG_DELETED,
    VERSION_FILES_PREFIX,
    ImportSummary,
)

from .conftest import MlflowTarget
from .test_import import (
    T0,
    MlflowServer,
    _cli,
    _start_server,
    _stop,
    _text,
    assert_nothing_new,
    files_under,
    imported_runs,
    run_import,
)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on loopback; the tests add what they need."""
    root = tmp_path_factory.mktemp("mlflow-changes")
    proc, url = _start_server(root)
    try:
        yield MlflowServer(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    finally:
        _stop(proc)


@pytest.fixture
def shipyard(mlflow_target: MlflowTarget) -> Iterator[Client]:
    with Client(mlflow_target.url, settings=mlflow_target.platform.settings) as client:
        yield client


@pytest.fixture
def label(request: pytest.FixtureRequest) -> str:
    """Unique per test and target: the module's server is shared."""
    return f"{request.node.name.split('[')[0].removeprefix('test_')}-{request.node.callspec.id}"


def _metric(key: str, value: float, step: int) -> Any:
    from mlflow.entities import Metric

    return Metric(key, value, T0 + step, step)


def _finished_run(mc: Any, experiment: str, name: str = "r") -> str:
    """A finished run with a history, a tag and one artifact file."""
    run_id = mc.create_run(experiment, run_name=name).info.run_id
    mc.log_batch(run_id, metrics=[_metric("m", float(s), s) for s in range(11)])
    mc.set_tag(run_id, "review", "pending")
    mc.log_text(run_id, "first\n", "a.txt")
    mc.set_terminated(run_id)
    return run_id


def _kind(summary: ImportSummary, kind: str) -> Any:
    return summary.kinds[kind]


def test_reimport_brings_late_points_files_and_deleted_tags_of_a_finished_run(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    run_id = _finished_run(mc, mc.create_experiment(label))
    run_import(mlflow_server.url, shipyard)

    # None of these changes what a search of MLflow runs shows but the tag set: the
    # point at step 1 leaves step 10 the latest, the file is not in the run's fields.
    # The deleted tag is enough for the default import to refresh the run, and a
    # refresh brings every point and file the copy lacks.
    mc.log_batch(run_id, metrics=[_metric("m", 42.0, 1)])
    mc.log_text(run_id, "late\n", "late/b.txt")
    mc.delete_tag(run_id, "review")
    summary = run_import(mlflow_server.url, shipyard)

    assert _kind(summary, "runs").updated == 1, summary.to_dict()
    assert _kind(summary, "metric points").copied == 1
    # Only the new file is uploaded; the one copied before is left as it is.
    assert _kind(summary, "artifact files").copied == 1
    assert _kind(summary, "artifact files").skipped[SAME_FILE] >= 1
    copy = imported_runs(shipyard)[run_id]
    assert "review" not in copy.tags
    history = shipyard.runs.metric_history(copy.id, "m")
    assert sorted(zip(history.steps, history.values, strict=True)) == sorted(
        (m.step, m.value) for m in mc.get_metric_history(run_id, "m")
    )
    with tempfile.TemporaryDirectory() as tmp:
        got = files_under(shipyard.artifacts.download(copy.id, "", Path(tmp, "a")))
    assert got == files_under(mlflow_server.stored(mc.get_run(run_id).info.artifact_uri))

    assert_nothing_new(run_import(mlflow_server.url, shipyard))


def test_a_run_deleted_in_mlflow_is_deleted_in_shipyard_and_restored_with_it(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    run_id = _finished_run(mc, mc.create_experiment(label))
    run_import(mlflow_server.url, shipyard)

    mc.delete_run(run_id)
    summary = run_import(mlflow_server.url, shipyard)
    assert _kind(summary, "runs").deleted == 1, summary.to_dict()
    copy = shipyard.runs.get(imported_runs_all(shipyard)[run_id].id)
    assert copy.lifecycle == "deleted"
    # Already deleted: the next import has nothing to do.
    again = run_import(mlflow_server.url, shipyard)
    assert again.changes == 0 and _kind(again, "runs").skipped["deleted in MLflow"] >= 1

    mc.restore_run(run_id)
    summary = run_import(mlflow_server.url, shipyard)
    assert _kind(summary, "runs").updated == 1 and _kind(summary, "runs").copied == 0
    copy = imported_runs(shipyard)[run_id]
    assert copy.lifecycle == "active" and TAG_DELETED not in copy.tags

    # Deleted in Shipyard alone, it stays deleted: that was not the import's doing.
    shipyard.runs.delete(copy.id)
    summary = run_import(mlflow_server.url, shipyard)
    assert summary.changes == 0, summary.to_dict()
    assert _kind(summary, "runs").skipped["imported before, deleted in Shipyard since"] == 1


def imported_runs_all(client: Client) -> dict[str, Any]:
    """Imported runs by MLflow run id, deleted ones too."""
    page = client.runs.search(
        filter="tags.`shipyard.import.mlflow_run_id` IS NOT NULL",
        max_results=1000,
        include_deleted=True,
    )
    return {r.tags["shipyard.import.mlflow_run_id"]: r for r in page.runs}


def test_a_renamed_experiment_is_renamed_not_copied_again(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    experiment = mc.create_experiment(label)
    run_id = _finished_run(mc, experiment)
    run_import(mlflow_server.url, shipyard)
    before = {e.id for e in shipyard.experiments.list(include_deleted=True)}

    mc.rename_experiment(experiment, f"{label}-renamed")
    summary = run_import(mlflow_server.url, shipyard)
    assert _kind(summary, "experiments").copied == 0, summary.to_dict()
    assert _kind(summary, "experiments").updated == 1
    assert {e.id for e in shipyard.experiments.list(include_deleted=True)} == before
    renamed = shipyard.experiments.get_by_name(f"{label}-renamed")
    assert imported_runs(shipyard)[run_id].experiment_id == renamed.id
    assert_nothing_new(run_import(mlflow_server.url, shipyard))


def test_registry_changes_reach_the_copies(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    run_id = _finished_run(mc, mc.create_experiment(label))
    name = f"model-{label}"
    mc.create_registered_model(name, tags={"team": "a", "old": "x"})
    source = f"{mc.get_run(run_id).info.artifact_uri}"
    for _ in range(3):
        mc.create_model_version(name, source, run_id)
    mc.set_model_version_tag(name, "1", "checked", "yes")
    mc.set_registered_model_alias(name, "champion", "1")
    mc.set_registered_model_alias(name, "old", "2")
    mc.set_registered_model_alias(name, "gone", "3")
    run_import(mlflow_server.url, shipyard)
    assert shipyard.models.get(name).aliases == {"champion": 1, "old": 2, "gone": 3}

    mc.update_model_version(name, "1", description="now described")
    mc.set_model_version_tag(name, "1", "new", "tag")
    mc.delete_model_version_tag(name, "1", "checked")
    mc.delete_registered_model_tag(name, "old")
    mc.set_registered_model_alias(name, "champion", "2")
    mc.delete_registered_model_alias(name, "old")
    mc.delete_model_version(name, "3")  # and "gone" with it
    summary = run_import(mlflow_server.url, shipyard)

    assert _kind(summary, "versions").updated == 1, summary.to_dict()
    assert _kind(summary, "versions").deleted == 1
    assert _kind(summary, "versions").skipped[ALREADY] >= 1
    assert _kind(summary, "models").updated == 1
    assert _kind(summary, "aliases").updated == 1  # champion moved
    assert _kind(summary, "aliases").deleted == 1  # old
    model = shipyard.models.get(name)
    assert model.aliases == {"champion": 2}
    assert "old" not in model.tags and model.tags["team"] == "a"
    assert shipyard.models.resolve(f"{name}@champion").version == 2
    assert [v.version for v in shipyard.models.list_versions(name)] == [2, 1]
    first = shipyard.models.get_version(name, 1)
    assert first.description == "now described"
    assert first.tags["new"] == "tag" and "checked" not in first.tags
    assert_nothing_new(run_import(mlflow_server.url, shipyard))


def _version_from_a_folder(mc: Any, label: str) -> tuple[str, str]:
    """A version registered as ``runs:/<run>/copy/of`` (a plain folder of the run)."""
    run_id = _finished_run(mc, mc.create_experiment(label))
    mc.log_text(run_id, "w\n", "copy/of/weights.txt")
    name = f"folder-{label}"
    mc.create_registered_model(name)
    mc.create_model_version(name, f"runs:/{run_id}/copy/of", run_id)
    assert mc.get_model_version_download_uri(name, "1").startswith("runs:/")
    return name, run_id


def test_a_version_of_a_run_folder_reuses_the_runs_copy(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    name, run_id = _version_from_a_folder(mc, label)
    run_import(mlflow_server.url, shipyard)
    version = shipyard.models.get_version(name, 1)
    assert version.source_path == "copy/of"
    assert {f.path for f in version.files or []} == {"weights.txt"}
    copy = imported_runs(shipyard)[run_id]
    assert shipyard.artifacts.list(copy.id, "") and not any(
        f.path.startswith(VERSION_FILES_PREFIX) for f in shipyard.artifacts.list(copy.id, "")
    )


def test_a_version_of_a_run_folder_from_the_database_uri(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    name, _ = _version_from_a_folder(mc, label)
    summary = import_from_database(mlflow_server, shipyard)
    assert not any(name in reason for reason in _kind(summary, "versions").failed)
    version = shipyard.models.get_version(name, 1)
    assert version.source_path == "copy/of"
    assert {f.path for f in version.files or []} == {"weights.txt"}


def import_from_database(server: MlflowServer, client: Client) -> ImportSummary:
    from shipyard.mlflow_compat.importer import import_mlflow

    return import_mlflow(
        server.database_uri,
        client,
        artifacts_destination=str(server.artifacts),
        show_progress=False,
    )


def test_logged_models_are_reported_not_dropped(
    mlflow_server: MlflowServer, shipyard: Client, label: str
) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    experiment = mlflow_server.client().create_experiment(label)
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        with mlflow.start_run(experiment_id=experiment):
            model = LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
            mlflow.sklearn.log_model(model, name="x")
    finally:
        mlflow.set_tracking_uri("")
    summary = run_import(mlflow_server.url, shipyard)
    skipped = _kind(summary, "logged models").skipped
    assert sum(n for reason, n in skipped.items() if "not imported yet" in reason) >= 1


def _late_point_and_file(mc: Any, run_id: str) -> None:
    """What a search of MLflow runs does not show: a point at an earlier step (step 10
    stays the latest) and a file logged after the run finished."""
    mc.log_batch(run_id, metrics=[_metric("m", 42.0, 1)])
    mc.log_text(run_id, "late\n", "late/b.txt")


def test_default_reimport_compares_what_a_search_shows_thorough_also_the_content(
    mlflow_server: MlflowServer, shipyard: Client, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mc = mlflow_server.client()
    run_id = _finished_run(mc, mc.create_experiment(label))
    run_import(mlflow_server.url, shipyard)
    _late_point_and_file(mc, run_id)

    # By default the run looks unchanged (same status, params, tags, latest values):
    # nothing is read per run, nothing copied, and the summary says what was compared.
    summary = run_import(mlflow_server.url, shipyard)
    assert summary.changes == 0, summary.to_dict()
    assert _kind(summary, "runs").skipped[ALREADY] >= 1
    assert any("--thorough" in note for note in summary.notes), summary.notes
    copy = imported_runs(shipyard)[run_id]
    assert len(shipyard.runs.metric_history(copy.id, "m").steps) == 11
    assert "late" not in {f.path for f in shipyard.artifacts.list(copy.id, "")}

    # Thorough: the histories and files are compared, and only what is new is copied;
    # the changed run's history is read from MLflow once, for both.
    reads: list[tuple[str, str]] = []
    history_of = MlflowClient.get_metric_history

    def counted(self: MlflowClient, run: str, key: str) -> Any:
        reads.append((run, key))
        return history_of(self, run, key)

    monkeypatch.setattr(MlflowClient, "get_metric_history", counted)
    summary = run_import(mlflow_server.url, shipyard, thorough=True)
    monkeypatch.undo()
    assert reads.count((run_id, "m")) == 1, reads
    # Past the budget for held points, a changed run is simply read twice again.
    mc.log_batch(run_id, metrics=[_metric("m", 43.0, 2)])  # another late point
    monkeypatch.setattr(MlflowClient, "get_metric_history", counted)
    monkeypatch.setattr(mlflow_source, "KEPT_POINTS", 5)
    reads.clear()
    refreshed = run_import(mlflow_server.url, shipyard, thorough=True)
    monkeypatch.undo()
    assert _kind(refreshed, "runs").updated == 1, refreshed.to_dict()
    assert reads.count((run_id, "m")) == 2, reads
    assert _kind(summary, "runs").updated == 1, summary.to_dict()
    assert _kind(summary, "runs").copied == 0
    assert _kind(summary, "metric points").copied == 1
    assert _kind(summary, "artifact files").copied == 1
    assert _kind(summary, "artifact files").skipped[SAME_FILE] >= 1
    copy = imported_runs(shipyard)[run_id]
    history = shipyard.runs.metric_history(copy.id, "m")
    assert sorted(zip(history.steps, history.values, strict=True)) == sorted(
        (m.step, m.value) for m in mc.get_metric_history(run_id, "m")
    )
    with tempfile.TemporaryDirectory() as tmp:
        got = files_under(shipyard.artifacts.download(copy.id, "", Path(tmp, "a")))
    assert got == files_under(mlflow_server.stored(mc.get_run(run_id).info.artifact_uri))

    again = run_import(mlflow_server.url, shipyard, thorough=True)
    assert_nothing_new(again)
    assert any("0 differed" in note for note in again.notes), again.notes
    assert_nothing_new(run_import(mlflow_server.url, shipyard))


def test_the_thorough_flag_reaches_the_import_from_the_cli(
    mlflow_server: MlflowServer, mlflow_target: MlflowTarget, shipyard: Client, label: str
) -> None:
    mc = mlflow_server.client()
    run_id = _finished_run(mc, mc.create_experiment(label))
    args = ["--from", mlflow_server.url, "--url", mlflow_target.url, "--no-progress"]
    assert _cli(*args).exit_code == 0
    mc.log_batch(run_id, metrics=[_metric("m", 42.0, 1)])

    default = _cli(*args)
    assert default.exit_code == 0, default.output
    assert "--thorough also compares their metric histories and artifact files" in _text(default)
    assert len(shipyard.runs.metric_history(imported_runs(shipyard)[run_id].id, "m").steps) == 11

    thorough = _cli(*args, "--thorough", "--json")
    assert thorough.exit_code == 0, thorough.output
    kinds = orjson.loads(thorough.stdout)["kinds"]
    assert kinds["runs"]["updated"] == 1 and kinds["runs"]["copied"] == 0
    assert kinds["metric points"]["copied"] == 1
    assert len(shipyard.runs.metric_history(imported_runs(shipyard)[run_id].id, "m").steps) == 12
