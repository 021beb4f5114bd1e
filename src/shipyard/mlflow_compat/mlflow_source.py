"""Reading an MLflow server or database for ``shipyard import mlflow``, with MLflow's
own client (``shipyard[mlflow]``): checks that the source is there before anything is
written, pages through its objects, and opens its artifact repositories."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from shipyard.errors import InvalidInput, NotFound, Unavailable

SOURCE_PAGE = 1000
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mssql"})


class ArtifactsUnreachable(Exception):
    """The source's artifacts cannot be read from here; ``reason`` says why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shown_uri(uri: str) -> str:
    """``uri`` without a password, fit for messages and tags."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def load_mlflow() -> ModuleType:
    """The ``mlflow`` package, imported on first use (it is an optional extra)."""
    try:
        import mlflow
    except ImportError:
        raise InvalidInput(
            "importing from MLflow needs the mlflow package: pip install 'shipyard[mlflow]'"
        ) from None
    return mlflow


def _check_http(uri: str) -> None:
    # MLflow's client retries a dead host for minutes; one quick request says it
    # at once. Only reachability is checked here (no credentials are sent).
    try:
        httpx.get(uri, timeout=httpx.Timeout(10.0), verify=False)
    except httpx.TransportError as exc:
        raise Unavailable(f"cannot reach the MLflow server at {shown_uri(uri)}: {exc}") from None
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"invalid MLflow tracking URI {shown_uri(uri)!r}: {exc}") from None


def _check_sqlite(uri: str) -> None:
    # MLflow would create (and migrate) a database at a mistyped path: refuse
    # anything that is not an existing MLflow database, and open it read-only.
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:":
        raise InvalidInput(f"{uri!r} names no database file")
    path = Path(database)
    if not path.is_file():
        raise NotFound(f"no MLflow database at {path} (from {uri!r})")
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            found = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'experiments'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise InvalidInput(f"{path} is not a readable SQLite database: {exc}") from None
    if found is None:
        raise InvalidInput(f"{path} is not an MLflow database (it has no experiments table)")


def _check_database(uri: str) -> None:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(uri)
        try:
            found = inspect(engine).has_table("experiments")
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as exc:
        raise Unavailable(f"cannot reach the MLflow database {shown_uri(uri)}: {exc}") from None
    if not found:
        raise InvalidInput(f"{shown_uri(uri)} is not an MLflow database (no experiments table)")


class MlflowSource:
    """An MLflow tracking store and model registry, read with MLflow's client.

    ``artifacts_destination`` is the MLflow server's ``--artifacts-destination``:
    with a database URI as the source, ``mlflow-artifacts:/`` locations (which
    only the server can resolve) are read from there instead.
    """

    def __init__(self, uri: str, artifacts_destination: str | None = None) -> None:
        self.uri = uri
        self.shown = shown_uri(uri)
        self.artifacts_destination = artifacts_destination
        scheme = urlsplit(uri).scheme.lower()
        self.is_server = scheme in ("http", "https")
        if self.is_server:
            _check_http(uri)
        elif scheme.split("+")[0] == "sqlite":
            _check_sqlite(uri)
        elif scheme.split("+")[0] in DATABASE_SCHEMES:
            _check_database(uri)
        elif scheme in ("", "file"):
            folder = Path(urlsplit(uri).path if scheme else uri)
            if not folder.is_dir():
                raise NotFound(f"no MLflow store at {folder}")
        self.mlflow = load_mlflow()
        from mlflow.entities import ViewType

        self.view_type = ViewType
        try:
            self.client = self.mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            self.client.search_experiments(max_results=1)
        except Exception as exc:
            raise Unavailable(f"cannot read MLflow at {self.shown}: {exc}") from None

    def experiments(self) -> list[Any]:
        """Every experiment, deleted ones included (they are reported as skipped)."""
        return list(
            self._pages(
                lambda token: self.client.search_experiments(
                    view_type=self.view_type.ALL, max_results=SOURCE_PAGE, page_token=token
                )
            )
        )

    def runs(self, experiment_id: str) -> list[Any]:
        """Every run of an experiment, deleted ones included."""
        return list(
            self._pages(
                lambda token: self.client.search_runs(
                    [experiment_id],
                    run_view_type=self.view_type.ALL,
                    max_results=SOURCE_PAGE,
                    page_token=token,
                )
            )
        )

    def models(self) -> list[Any]:
        """Every registered model."""
        return list(
            self._pages(
                lambda token: self.client.search_registered_models(
                    max_results=SOURCE_PAGE, page_token=token
                )
            )
        )

    def versions(self, model_name: str) -> list[Any]:
        """Every version of a registered model, oldest first."""
        quote = "'" if "'" not in model_name else '"'
        found = self._pages(
            lambda token: self.client.search_model_versions(
                f"name = {quote}{model_name}{quote}", max_results=SOURCE_PAGE, page_token=token
            )
        )
        return sorted(found, key=lambda v: int(v.version))

    def metric_history(self, run_id: str, key: str) -> list[Any]:
        """Every point of a metric of a run."""
        return list(self.client.get_metric_history(run_id, key))

    def version_files_uri(self, name: str, version: str) -> str:
        """Where a version's files are stored."""
        return str(self.client.get_model_version_download_uri(name, version))

    def repository(self, artifact_uri: str) -> Any:
        """The artifact repository of ``artifact_uri``; ArtifactsUnreachable when only the
        MLflow server could read it and the source is its database."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        parts = urlsplit(artifact_uri)
        if parts.scheme == "mlflow-artifacts" and not self.is_server:
            if not self.artifacts_destination:
                raise ArtifactsUnreachable(
                    "behind the MLflow server (mlflow-artifacts:/): import from its "
                    "http:// URI or pass --artifacts-destination"
                )
            artifact_uri = self.artifacts_destination.rstrip("/") + parts.path
        return get_artifact_repository(artifact_uri, tracking_uri=self.uri, registry_uri=self.uri)

    @staticmethod
    def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = fetch(token)
            yield from page
            token = page.token
            if not token:
                return
