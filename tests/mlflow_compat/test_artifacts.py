"""Artifacts through MLflow's artifact proxy (``mlflow-artifacts:`` URIs), with the real
``mlflow`` client: what it logs is an ordinary Shipyard run artifact."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.auth.conftest import Secured

from shipyard.auth.tables import AuditEventRow
from shipyard.client import Client
from shipyard.mlflow_compat import artifact_routes
from shipyard.platform import Platform
from shipyard.tracking.tables import ArtifactRow

from .conftest import MlflowTarget

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _audit_actions(platform: Platform, object_id: str) -> list[str]:
    with platform.db.read() as session:
        return list(
            session.scalars(
                select(AuditEventRow.action)
                .where(AuditEventRow.object_id == object_id)
                .order_by(AuditEventRow.id)
            )
        )


def _stored_paths(platform: Platform, run_id: str) -> list[str]:
    with platform.db.read() as session:
        return sorted(session.scalars(select(ArtifactRow.path).where(ArtifactRow.run_id == run_id)))


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error_code"]


def test_fluent_artifact_calls_round_trip(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    single = tmp_path / "notes.txt"
    single.write_text("hello")
    folder = tmp_path / "data"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "nested" / "b.bin").write_bytes(bytes(range(256)) * 100)
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="docs")
        mlflow.log_artifacts(str(folder), artifact_path="data")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "config/settings.json")
        mlflow.log_text("some text", "texts/readme.md")
        mlflow.log_figure(fig, "plots/figure.png")
    plt.close(fig)
    run_id = run.info.run_id
    assert run.info.artifact_uri == (
        f"mlflow-artifacts:/{run.info.experiment_id}/{run_id}/artifacts"
    )

    top = mlflow_client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("config", True),
        ("data", True),
        ("docs", True),
        ("notes.txt", False),
        ("plots", True),
        ("texts", True),
    ]
    assert top[3].file_size == 5
    nested = mlflow_client.list_artifacts(run_id, "data")
    assert [(f.path, f.is_dir) for f in nested] == [("data/a.csv", False), ("data/nested", True)]
    # A file path lists nothing (MLflow's answer), a missing folder too.
    assert mlflow_client.list_artifacts(run_id, "notes.txt") == []
    assert mlflow_client.list_artifacts(run_id, "no-such-folder") == []

    artifact_uri = run.info.artifact_uri
    assert mlflow.artifacts.load_dict(f"{artifact_uri}/config/settings.json") == {
        "a": 1,
        "b": [1, 2],
    }
    assert mlflow.artifacts.load_text(f"{artifact_uri}/texts/readme.md") == "some text"
    dst = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "out")))
    assert (dst / "notes.txt").read_text() == "hello"
    assert (dst / "docs" / "notes.txt").read_text() == "hello"
    assert (dst / "data" / "nested" / "b.bin").read_bytes() == bytes(range(256)) * 100
    assert (dst / "plots" / "figure.png").read_bytes().startswith(b"\x89PNG")
    one = mlflow_client.download_artifacts(run_id, "data/a.csv", str(tmp_path / "one"))
    assert Path(one).read_text() == "x,y\n1,2\n"

    # The same files are ordinary Shipyard artifacts, with the native audit events.
    with Client(mlflow_target.url) as native:
        assert native.artifacts.read_bytes(run_id, "texts/readme.md") == b"some text"
        listed = {a.path for a in native.artifacts.list(run_id, "data")}
        assert listed == {"data/a.csv", "data/nested"}
    assert _audit_actions(mlflow_target.platform, run_id).count("artifacts.upload") == 7


def test_runs_made_by_shipyard_are_readable_by_mlflow(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow

    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00\x01" * 1000)
    with Client(mlflow_target.url) as native:
        run = native.runs.create("native-exp")
        native.artifacts.upload_file(run.id, source, "model")
    files = mlflow_client.list_artifacts(run.id, "model")
    assert [(f.path, f.file_size) for f in files] == [("model/weights.bin", 2000)]
    local = mlflow.artifacts.download_artifacts(
        run_id=run.id, artifact_path="model/weights.bin", dst_path=str(tmp_path / "d")
    )
    assert Path(local).read_bytes() == source.read_bytes()
    # And MLflow's run-based listing (the UI's) answers from the run's root.
    response = httpx.get(
        f"{mlflow_target.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run.id, "path": "model"},
    )
    assert response.json() == {
        "root_uri": f"mlflow-artifacts:/{run.experiment_id}/{run.id}/artifacts",
        "files": [{"path": "model/weights.bin", "is_dir": False, "file_size": 2000}],
    }


def test_artifacts_in_another_project(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow

    with Client(mlflow_target.url) as native:
        native.projects.create("vision")
    mlflow.set_tracking_uri(mlflow_target.project_url("vision"))
    with mlflow.start_run() as run:
        mlflow.log_text("in vision", "a.txt")
    assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/a.txt") == "in vision"
    with Client(mlflow_target.url, project="vision") as native:
        assert native.runs.get(run.info.run_id).experiment_id == int(run.info.experiment_id)


def test_bad_paths_are_refused_and_store_nothing(
    mlflow_target: MlflowTarget, mlflow_client: Any
) -> None:
    import mlflow

    with mlflow.start_run() as run:
        pass
    run_id, experiment_id = run.info.run_id, run.info.experiment_id
    base = f"{mlflow_target.url}{PROXY}"
    root = f"{base}/{experiment_id}/{run_id}/artifacts"
    with httpx.Client() as http:
        # An empty or '..' segment inside the run (Starlette decodes %2E%2E).
        assert _error(http.put(f"{root}/a//b.txt", content=b"x")) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert _error(http.put(f"{root}/a/%2E%2E/b.txt", content=b"x")) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        # Not under a run's or model's artifacts at all.
        assert _error(http.put(f"{base}/{experiment_id}/{run_id}/x.txt", content=b"x")) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        # A run that is not in the experiment the path names, an unknown run.
        other = int(experiment_id) + 1000
        assert _error(http.put(f"{base}/{other}/{run_id}/artifacts/x.txt", content=b"x")) == (
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert _error(
            http.put(f"{base}/{experiment_id}/{'0' * 32}/artifacts/x.txt", content=b"x")
        ) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert _error(http.get(f"{root}/missing.txt")) == (404, "RESOURCE_DOES_NOT_EXIST")
        # A file under a file, and a file where a folder is.
        assert http.put(f"{root}/f.txt", content=b"x").status_code == 200
        assert http.put(f"{root}/d/g.txt", content=b"y").status_code == 200
        assert _error(http.put(f"{root}/f.txt/h.txt", content=b"x")) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert _error(http.put(f"{root}/d", content=b"x")) == (400, "INVALID_PARAMETER_VALUE")
        # Deleting is refused; the file stays.
        assert _error(http.delete(f"{root}/f.txt")) == (400, "INVALID_STATE")
        assert http.get(f"{root}/f.txt").content == b"x"
    assert _stored_paths(mlflow_target.platform, run_id) == ["d/g.txt", "f.txt"]

    mlflow_client.delete_run(run_id)
    with httpx.Client() as http:
        assert _error(http.put(f"{root}/late.txt", content=b"x")) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
    assert _stored_paths(mlflow_target.platform, run_id) == ["d/g.txt", "f.txt"]


def test_server_info_offers_no_multipart(mlflow_target: MlflowTarget, mlflow_client: Any) -> None:
    import mlflow
    from mlflow.exceptions import _UnsupportedMultipartUploadException

    info = httpx.get(f"{mlflow_target.url}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False
    # A client forced into multipart (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD) is told to
    # fall back, in the words it recognises, with a status it does not retry.
    with mlflow.start_run() as run:
        pass
    where = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/x.bin"
    response = httpx.post(
        f"{mlflow_target.url}/api/2.0/mlflow-artifacts/mpu/create/{where}",
        json={"path": "x.bin", "num_parts": 2},
    )
    assert response.status_code == 501
    assert response.json()["message"].startswith(_UnsupportedMultipartUploadException.MESSAGE)
    assert _stored_paths(mlflow_target.platform, run.info.run_id) == []


def test_forced_multipart_upload_falls_back_to_one_stream(
    mlflow_target: MlflowTarget,
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "10")
    source = tmp_path / "big.txt"
    source.write_text("x" * 1000)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source))
    assert _stored_paths(mlflow_target.platform, run.info.run_id) == ["big.txt"]


def _write_large(path: Path, size_mib: int) -> str:
    """A file of ``size_mib`` MiB of varied bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as f:
        for i in range(size_mib):
            chunk = i.to_bytes(4, "big") + block[4:]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("mlflow_target", ["sqlite-local"], indirect=True)
def test_large_artifact_streams_both_ways(
    mlflow_target: MlflowTarget, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow

    size_mib = 256
    source = tmp_path / "large.bin"
    expected = _write_large(source, size_mib)
    with mlflow.start_run() as run:
        pass
    # The server runs in this process: the peak of traced memory covers both the
    # client and the server. Holding the file whole anywhere would show as 256 MiB.
    tracemalloc.start()
    try:
        mlflow_client.log_artifact(run.info.run_id, str(source), "blobs")
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="blobs/large.bin", dst_path=str(tmp_path / "o")
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _sha256(Path(local)) == expected
    assert peak < 64 * 1024 * 1024, f"peak traced memory {peak / 2**20:.0f} MiB"
    info = json.loads(
        httpx.get(
            f"{mlflow_target.url}{PROXY}",
            params={"path": f"{run.info.experiment_id}/{run.info.run_id}/artifacts/blobs"},
        ).content
    )
    assert info == {
        "files": [{"path": "large.bin", "is_dir": False, "file_size": size_mib * 1024 * 1024}]
    }
    assert artifact_routes.SERVER_INFO["multipart_uploads_enabled"] is False


def test_artifact_proxy_checks_the_callers_role(
    secured: Secured, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow
    import requests

    alice = secured.user("alice", password="alice-password", roles={"default": "editor"})
    vic = secured.user("vic", roles={"default": "viewer"})
    eve = secured.user("eve")
    client = mlflow.MlflowClient(secured.url)
    source = tmp_path / "a.txt"
    source.write_text("alice's")

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", alice)
    run = client.create_run(client.create_experiment("secure"))
    run_id = run.info.run_id
    client.log_artifact(run_id, str(source))
    # HTTP Basic (username and password) works the same.
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-password")
    client.log_artifact(run_id, str(source), "copy")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with secured.platform.db.read() as session:
        actors = session.scalars(
            select(AuditEventRow.actor).where(
                AuditEventRow.object_id == run_id, AuditEventRow.action == "artifacts.upload"
            )
        ).all()
    assert actors == ["alice", "alice"]

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", vic)
    assert [f.path for f in client.list_artifacts(run_id)] == ["a.txt", "copy"]
    local = client.download_artifacts(run_id, "a.txt", str(tmp_path / "v"))
    assert Path(local).read_text() == "alice's"
    # The artifact repository raises requests' HTTPError, as against MLflow's server.
    with pytest.raises(requests.HTTPError) as err:
        client.log_artifact(run_id, str(source), "by-vic")
    assert err.value.response.status_code == 403
    assert err.value.response.json()["error_code"] == "PERMISSION_DENIED"

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", eve)
    root = f"{secured.url}{PROXY}/{run.info.experiment_id}/{run_id}/artifacts"
    assert _error(httpx.get(f"{root}/a.txt", headers={"authorization": f"Bearer {eve}"})) == (
        403,
        "PERMISSION_DENIED",
    )
    assert _error(httpx.put(f"{root}/anon.txt", content=b"x")) == (401, "UNAUTHENTICATED")
    assert _stored_paths(secured.platform, run_id) == ["a.txt", "copy/a.txt"]
