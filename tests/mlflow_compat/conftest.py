"""The real ``mlflow`` client against a real Shipyard server.

``mlflow_target`` starts ``shipyard server``'s app on a loopback port over a fresh
platform, on SQLite with a local blob folder and on PostgreSQL with S3 (moto);
``mlflow_client`` points the mlflow package at it (tracking and registry) and
resets mlflow's global state afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.auth.conftest import Secured
from tests.conftest import build_platform

from shipyard.platform import Platform

TARGETS = ["sqlite-local", "postgres-s3"]


@dataclass
class MlflowTarget:
    """A running Shipyard server the mlflow client can use."""

    url: str
    platform: Platform

    def project_url(self, project: str) -> str:
        """The tracking URI that works inside another project."""
        return f"{self.url}/projects/{project}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # mlflow and the libraries it pulls in warn about their own deprecations; those
    # are not Shipyard's to fix, and the suite turns warnings into errors.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::FutureWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"))


@pytest.fixture(autouse=True)
def _mlflow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Errors must reach the test at once (mlflow retries 5xx and 429 with backoff),
    # and nothing may go looking for a Databricks or a default ./mlruns store.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=TARGETS)
def mlflow_target(
    request: pytest.FixtureRequest, tmp_path: Path, server_for: Callable[[Platform], Any]
) -> MlflowTarget:
    """A Shipyard server with auth off, on each pair of backends."""
    backend, blobs = str(request.param).split("-")
    platform = build_platform(request, backend, tmp_path / "home", blobs=blobs)
    return MlflowTarget(server_for(platform).url, platform)


@pytest.fixture
def mlflow_client(mlflow_target: MlflowTarget, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``mlflow.MlflowClient`` for the target; the fluent API points there too."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_target.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_target.url)
    mlflow.set_tracking_uri(mlflow_target.url)
    mlflow.set_registry_uri(mlflow_target.url)
    try:
        yield mlflow.MlflowClient(mlflow_target.url, registry_uri=mlflow_target.url)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        # set_experiment() keeps its choice in a global and in the environment.
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        mlflow.set_tracking_uri("")
        mlflow.set_registry_uri("")


@pytest.fixture(params=TARGETS)
def secured(
    request: pytest.FixtureRequest, tmp_path: Path, server_for: Callable[[Platform], Any]
) -> Iterator[Secured]:
    """A server that requires auth, on each pair of backends, with a site admin (root)."""
    backend, blobs = str(request.param).split("-")
    platform = build_platform(request, backend, tmp_path / "home", auth_required=True, blobs=blobs)
    s = Secured(platform, server_for(platform).url)
    s.admin_token = s.user("root", is_admin=True)
    yield s
    s.close()
