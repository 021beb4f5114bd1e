"""``shipyard import mlflow``: a real ``mlflow server`` (its own SQLite database and
proxied artifacts) is populated with the mlflow client, then imported into a
Shipyard project on each backend; what arrives is compared with the source."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from blake3 import blake3
from tests.conftest import embedded_client, free_port
from typer.testing import CliRunner

from shipyard.client import Client
from shipyard.mlflow_compat.cli import import_app
from shipyard.mlflow_compat.importer import (
    ALREADY,
    TAG_ARTIFACTS,
    TAG_PARENT,
    TAG_RUN,
    TAG_STATUS,
    TAG_USER,
    TAG_VERSION,
    VERSION_FILES_PREFIX,
    ImportSummary,
    import_mlflow,
)
from shipyard.tracking.types import Run

from .conftest import MlflowTarget

STEPS = 300
T0 = 1_700_000_000_000


@dataclass
class MlflowServer:
    """A running ``mlflow server`` and where it keeps things."""

    url: str
    database_uri: str
    artifacts: Path

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(self.url, registry_uri=self.url)

    def stored(self, artifact_uri: str) -> Path:
        """The local folder behind an ``mlflow-artifacts:/`` location."""
        return self.artifacts / urlsplit(artifact_uri).path.lstrip("/")


def _start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Its own process group: the server starts uvicorn as a child, and both must go.
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            tail = (root / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"mlflow server did not start:\n{tail}")
        time.sleep(0.25)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _populate(server: MlflowServer) -> None:
    """Two experiments, runs with params, tags, metric histories and artifacts, a
    nested run, a deleted run and experiment, and models with versions and an alias."""
    import mlflow
    import numpy as np
    from mlflow.entities import Metric
    from sklearn.linear_model import LogisticRegression

    mc = server.client()
    vision = mc.create_experiment("vision", tags={"team": "cv", "mlflow.note.content": "images"})
    nlp = mc.create_experiment("nlp", tags={"team": "text"})
    gone = mc.create_experiment("abandoned")
    mc.delete_experiment(gone)

    def history(run_id: str, keys: dict[str, Any]) -> None:
        points = [
            Metric(key, float(fn(step)), T0 + 10 * step, step)
            for key, fn in keys.items()
            for step in range(STEPS)
        ]
        for start in range(0, len(points), 1000):
            mc.log_batch(run_id, metrics=points[start : start + 1000])

    mlflow.set_tracking_uri(server.url)
    try:
        X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
        y = np.array([0, 0, 0, 1, 1, 1])
        run_ids = []
        for name, c in (("train-a", 1.0), ("train-b", 0.5)):
            with mlflow.start_run(experiment_id=vision, run_name=name) as run:
                mlflow.log_params({"C": c, "solver": "lbfgs"})
                mlflow.set_tags({"stage": "dev", "owner": "ana"})
                history(
                    run.info.run_id, {"loss": lambda s: 1 / (s + 1), "acc": lambda s: s / STEPS}
                )
                mlflow.sklearn.log_model(LogisticRegression(C=c).fit(X, y), name="model")
                run_ids.append(run.info.run_id)
                if name == "train-a":
                    mlflow.log_text("hello\n", "notes.txt")
                    mlflow.log_dict({"classes": [0, 1]}, "data/meta.json")
                    mlflow.log_text("a,b\n1,2\n", "data/tables/t.csv")
                    with mlflow.start_run(
                        experiment_id=vision, run_name="tune-1", nested=True
                    ) as child:
                        mlflow.log_param("C", c * 2)
                        history(child.info.run_id, {"loss": lambda s: 2 / (s + 1)})
        with mlflow.start_run(experiment_id=nlp, run_name="bert") as run:
            mlflow.log_param("layers", 12)
            history(run.info.run_id, {"ppl": lambda s: math.nan if s == 7 else 100 - s / 10})
        with mlflow.start_run(experiment_id=nlp, run_name="oops") as run:
            mlflow.log_param("x", 1)
        mc.delete_run(run.info.run_id)

        for run_id in run_ids:
            mlflow.register_model(f"runs:/{run_id}/model", "clf")
        mc.update_registered_model("clf", description="a classifier")
        mc.set_registered_model_tag("clf", "task", "binary")
        mc.set_registered_model_alias("clf", "champion", "2")
        mc.update_model_version("clf", "2", description="the better one")
        mc.set_model_version_tag("clf", "2", "validated", "yes")
        # Version 2 of "gappy" is deleted in MLflow: 1 and 3 keep their numbers.
        for _ in range(3):
            mlflow.register_model(f"runs:/{run_ids[0]}/model", "gappy")
        mc.delete_model_version("gappy", "2")
        mc.create_registered_model("not@allowed")
        # Registered from a plain folder of a run's artifacts (no logged model).
        mc.create_registered_model("from-artifacts")
        artifact_uri = mc.get_run(run_ids[0]).info.artifact_uri
        mc.create_model_version("from-artifacts", f"{artifact_uri}/data", run_ids[0])
    finally:
        mlflow.set_tracking_uri("")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on loopback, populated once for the module."""
    root = tmp_path_factory.mktemp("mlflow-source")
    proc, url = _start_server(root)
    try:
        server = MlflowServer(url, f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
        _populate(server)
        yield server
    finally:
        _stop(proc)


@pytest.fixture
def shipyard(mlflow_target: MlflowTarget) -> Iterator[Client]:
    """The SDK over the target's server (remote)."""
    with Client(mlflow_target.url, settings=mlflow_target.platform.settings) as client:
        yield client


# --- helpers --------------------------------------------------------------------------


def imported_runs(client: Client) -> dict[str, Run]:
    """The project's imported runs, by MLflow run id."""
    page = client.runs.search(filter=f"tags.{TAG_RUN} IS NOT NULL", max_results=1000)
    return {r.tags[TAG_RUN]: r for r in page.runs}


def source_runs(mc: Any) -> list[Any]:
    """Every active run of the MLflow server."""
    experiments = [e.experiment_id for e in mc.search_experiments()]
    return list(mc.search_runs(experiments, max_results=1000))


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_import(source: str, client: Client, **kwargs: Any) -> ImportSummary:
    summary = import_mlflow(source, client, show_progress=False, **kwargs)
    assert summary.failures == 0, summary.to_dict()
    return summary


def assert_nothing_new(summary: ImportSummary) -> None:
    assert summary.changes == 0, summary.to_dict()
    for kind in ("experiments", "runs", "models", "versions", "aliases"):
        assert set(summary.kinds[kind].skipped) <= {
            ALREADY,
            "deleted in MLflow",
            "name not allowed in Shipyard (letters, digits, spaces, '.', '_', '-')",
            "their model was not imported",
        }, summary.to_dict()


def assert_runs_copied(server: MlflowServer, client: Client, *, artifacts: bool = True) -> None:
    """Every active MLflow run has a faithful copy: fields, params, tags, histories,
    parent links and (with ``artifacts``) byte-identical artifacts."""
    mc = server.client()
    copies = imported_runs(client)
    sources = source_runs(mc)
    assert set(copies) == {r.info.run_id for r in sources}
    for src in sources:
        info, data = src.info, src.data
        copy = copies[info.run_id]
        assert copy.name == info.run_name
        assert copy.status == info.status.lower()
        assert (copy.start_time, copy.end_time) == (info.start_time, info.end_time)
        assert copy.params == data.params
        assert copy.tags[TAG_USER] == info.user_id
        assert copy.tags[TAG_STATUS] == info.status
        for key, value in data.tags.items():
            if key != "mlflow.parentRunId":
                assert copy.tags[key] == value
        parent = data.tags.get("mlflow.parentRunId")
        if parent:
            assert copy.parent_run_id == copies[parent].id
            assert copy.tags["mlflow.parentRunId"] == copies[parent].id
            assert copy.tags[TAG_PARENT] == parent
        else:
            assert copy.parent_run_id is None
        for key in data.metrics:
            want = mc.get_metric_history(info.run_id, key)
            got = client.runs.metric_history(copy.id, key)
            assert len(want) == len(got.steps) >= STEPS
            assert got.steps == [m.step for m in want]
            assert got.timestamps == [m.timestamp for m in want]
            assert got.values == [None if math.isnan(m.value) else m.value for m in want]
        if artifacts:
            want_files = files_under(server.stored(info.artifact_uri))
            with tempfile.TemporaryDirectory() as tmp:
                got = client.artifacts.download(copy.id, "", Path(tmp, "a"))
                # Versions' files are recorded under their own folder of the run.
                copied = {
                    path: content
                    for path, content in files_under(got).items()
                    if not path.startswith(f"{VERSION_FILES_PREFIX}/")
                }
                assert copied == want_files
            assert copy.tags[TAG_ARTIFACTS] == "copied"


def assert_models_copied(server: MlflowServer, client: Client) -> None:
    """Both models arrived with their versions (same numbers, same files), tags,
    descriptions and alias."""
    mc = server.client()
    copies = imported_runs(client)
    clf = client.models.get("clf")
    assert clf.description == "a classifier"
    assert clf.tags["task"] == "binary"
    assert clf.aliases == {"champion": 2}
    assert client.models.resolve("clf@champion").version == 2
    for number in (1, 2):
        src = mc.get_model_version("clf", str(number))
        version = client.models.get_version("clf", number)
        assert version.tags[TAG_VERSION] == str(number)
        assert version.run_id == copies[src.run_id].id
        assert version.description == (src.description or "")
        want = files_under(server.stored(mc.get_model_version_download_uri("clf", str(number))))
        assert {f.path for f in version.files or []} == set(want) >= {"MLmodel"}
        for file in version.files or []:
            assert file.hash == blake3(want[file.path]).hexdigest()
            assert file.size == len(want[file.path])
    assert client.models.get_version("clf", 2).tags["validated"] == "yes"
    assert [v.version for v in client.models.list_versions("gappy")] == [3, 1]
    # A version made from the run's own artifacts points at the run's copy of them.
    plain = client.models.get_version("from-artifacts", 1)
    assert plain.source_path == "data"
    assert {f.path for f in plain.files or []} == {"meta.json", "tables/t.csv"}


# --- tests ----------------------------------------------------------------------------


def test_import_copies_everything_then_nothing_new(
    mlflow_server: MlflowServer, shipyard: Client
) -> None:
    summary = run_import(mlflow_server.url, shipyard)
    active_runs = len(source_runs(mlflow_server.client()))
    kinds = summary.kinds
    assert kinds["experiments"].copied == 3  # vision, nlp and MLflow's Default
    assert kinds["experiments"].skipped == {"deleted in MLflow": 1}
    assert kinds["runs"].copied == active_runs
    assert kinds["runs"].skipped["deleted in MLflow"] >= 1
    assert kinds["metric points"].copied >= 6 * STEPS
    assert kinds["artifact files"].copied > 0
    assert kinds["models"].copied == 3
    assert kinds["models"].skipped == {
        "name not allowed in Shipyard (letters, digits, spaces, '.', '_', '-')": 1
    }
    assert kinds["versions"].copied == 5
    assert kinds["aliases"].copied == 1

    vision = shipyard.experiments.get_by_name("vision")
    assert vision.description == "images"
    assert vision.tags["team"] == "cv"
    assert shipyard.experiments.get_by_name("nlp").tags["team"] == "text"
    assert_runs_copied(mlflow_server, shipyard)
    assert_models_copied(mlflow_server, shipyard)

    again = run_import(mlflow_server.url, shipyard)
    assert_nothing_new(again)
    assert again.kinds["runs"].skipped[ALREADY] == active_runs
    assert again.kinds["versions"].skipped[ALREADY] == 5
    assert len(imported_runs(shipyard)) == active_runs


def test_import_from_the_database_uri(
    mlflow_server: MlflowServer, mlflow_target: MlflowTarget
) -> None:
    # Embedded this time: the SDK mounts the app over the platform in-process.
    with embedded_client(mlflow_target.platform) as client:
        # Without the artifact store, the runs come (artifacts skipped, with why);
        # the versions, whose files are only there, wait.
        summary = run_import(mlflow_server.database_uri, client)
        assert summary.kinds["runs"].copied == len(source_runs(mlflow_server.client()))
        reasons = " ".join(summary.kinds["artifact files"].skipped)
        assert "--artifacts-destination" in reasons
        assert summary.kinds["versions"].copied == 0
        assert_runs_copied(mlflow_server, client, artifacts=False)
        assert all(
            r.tags[TAG_ARTIFACTS].startswith("not copied") for r in imported_runs(client).values()
        )

        # With it, the same import completes the runs and brings the versions.
        destination = str(mlflow_server.artifacts)
        summary = run_import(mlflow_server.database_uri, client, artifacts_destination=destination)
        assert summary.kinds["runs"].copied == 0
        assert summary.kinds["runs"].updated == len(source_runs(mlflow_server.client()))
        assert summary.kinds["metric points"].copied == 0  # the histories were complete
        assert summary.kinds["versions"].copied == 5
        assert_runs_copied(mlflow_server, client)
        assert_models_copied(mlflow_server, client)

        assert_nothing_new(
            run_import(mlflow_server.database_uri, client, artifacts_destination=destination)
        )


def _cli(*args: str) -> Any:
    # Wide enough that rich does not wrap the summary's reasons.
    return CliRunner().invoke(import_app, ["mlflow", *args], env={"COLUMNS": "250"})


def _text(result: Any) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_bad_source_is_a_clear_error_and_changes_nothing(
    mlflow_target: MlflowTarget, shipyard: Client, tmp_path: Path
) -> None:
    target = ["--url", mlflow_target.url, "--no-progress"]
    before = shipyard.experiments.list(include_deleted=True)

    result = _cli("--from", f"http://127.0.0.1:{free_port()}", *target)
    assert result.exit_code == 1
    assert "cannot reach the MLflow server" in _text(result)

    missing = tmp_path / "missing.db"
    result = _cli("--from", f"sqlite:///{missing}", *target)
    assert result.exit_code == 1
    assert "no MLflow database" in _text(result)
    assert not missing.exists()  # MLflow's client would have created one

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    content = other.read_bytes()
    result = _cli("--from", f"sqlite:///{other}", *target)
    assert result.exit_code == 1
    assert "is not an MLflow database" in _text(result)
    assert other.read_bytes() == content

    result = _cli("--from", str(tmp_path / "no-such-folder"), *target)
    assert result.exit_code == 1
    assert "no MLflow store" in _text(result)

    assert shipyard.experiments.list(include_deleted=True) == before
    assert imported_runs(shipyard) == {}


def test_bad_target_project_changes_nothing(
    mlflow_server: MlflowServer, mlflow_target: MlflowTarget, shipyard: Client
) -> None:
    result = _cli(
        "--from",
        mlflow_server.url,
        "--url",
        mlflow_target.url,
        "--project",
        "nope",
        "--no-progress",
    )
    assert result.exit_code == 1
    assert "nope" in _text(result)
    assert shipyard.experiments.list(include_deleted=True) == []


def test_reimport_copies_exactly_the_new_run_through_the_cli(
    mlflow_server: MlflowServer, mlflow_target: MlflowTarget, shipyard: Client
) -> None:
    args = ["--from", mlflow_server.url, "--url", mlflow_target.url]
    first = _cli(*args, "--json")
    assert first.exit_code == 0, first.output
    before = len(imported_runs(shipyard))
    assert before == len(source_runs(mlflow_server.client()))

    second = _cli(*args)
    assert second.exit_code == 0, second.output
    assert re.search(r"\b(\d+)/\1\b", second.output)  # the progress bar, complete
    assert "already imported" in _text(second)
    assert len(imported_runs(shipyard)) == before

    mc = mlflow_server.client()
    nlp = mc.get_experiment_by_name("nlp").experiment_id
    new = mc.create_run(nlp, run_name="late")
    mc.log_param(new.info.run_id, "k", "v")
    mc.log_metric(new.info.run_id, "m", 1.5, step=3)
    mc.set_terminated(new.info.run_id)

    third = _cli(*args, "--json")
    assert third.exit_code == 0, third.output
    kinds = orjson.loads(third.stdout)["kinds"]
    assert kinds["runs"]["copied"] == 1 and kinds["runs"]["updated"] == 0
    assert kinds["experiments"]["copied"] == 0
    assert kinds["versions"]["copied"] == 0
    copy = imported_runs(shipyard)[new.info.run_id]
    assert copy.name == "late" and copy.params == {"k": "v"} and copy.status == "finished"
    assert shipyard.runs.metric_history(copy.id, "m").values == [1.5]
    assert len(imported_runs(shipyard)) == before + 1


def test_a_run_still_running_is_refreshed_by_the_next_import(
    mlflow_server: MlflowServer, shipyard: Client, request: pytest.FixtureRequest
) -> None:
    mc = mlflow_server.client()
    experiment = mc.create_experiment(f"live-{request.node.callspec.id}")
    run = mc.create_run(experiment, run_name="live")
    run_id = run.info.run_id
    mc.log_batch(run_id, metrics=[_metric("loss", 1.0 / (s + 1), s) for s in range(50)])
    run_import(mlflow_server.url, shipyard)
    copy = imported_runs(shipyard)[run_id]
    assert copy.status == "running" and copy.tags[TAG_STATUS] == "RUNNING"
    first_id = copy.id

    # Still running: the next import brings what was logged since.
    mc.log_batch(run_id, metrics=[_metric("loss", 1.0 / (s + 1), s) for s in range(50, 80)])
    mc.log_param(run_id, "late", "yes")
    summary = run_import(mlflow_server.url, shipyard)
    assert summary.kinds["runs"].updated == 1
    assert summary.kinds["metric points"].copied == 30

    mc.log_batch(run_id, metrics=[_metric("loss", 1.0 / (s + 1), s) for s in range(80, 100)])
    mc.set_terminated(run_id, "FAILED")
    summary = run_import(mlflow_server.url, shipyard)
    assert summary.kinds["runs"].updated == 1 and summary.kinds["runs"].copied == 0
    copy = imported_runs(shipyard)[run_id]
    assert copy.id == first_id
    assert copy.status == "failed" and copy.tags[TAG_STATUS] == "FAILED"
    assert copy.end_time == mc.get_run(run_id).info.end_time
    assert copy.params["late"] == "yes"
    history = shipyard.runs.metric_history(copy.id, "loss")
    assert history.steps == list(range(100))

    # Finished now: nothing more to do.
    assert_nothing_new(run_import(mlflow_server.url, shipyard))

    # MLflow takes tags and metrics on a finished run (an evaluation logged later):
    # the next import brings them, and only them.
    mc.set_tag(run_id, "review", "approved")
    mc.log_batch(run_id, metrics=[_metric("eval_acc", 0.875, 0)])
    summary = run_import(mlflow_server.url, shipyard)
    assert summary.kinds["runs"].updated == 1 and summary.kinds["runs"].copied == 0
    assert summary.kinds["metric points"].copied == 1
    copy = imported_runs(shipyard)[run_id]
    assert copy.tags["review"] == "approved" and copy.metrics["eval_acc"] == 0.875
    assert shipyard.runs.metric_history(copy.id, "loss").steps == list(range(100))
    assert_nothing_new(run_import(mlflow_server.url, shipyard))


def _metric(key: str, value: float, step: int) -> Any:
    from mlflow.entities import Metric

    return Metric(key, value, T0 + step, step)
