"""Reading an MLflow server or database for ``shipyard import mlflow``, with MLflow's
own client (``shipyard[mlflow]``): checks that the source is there before anything is
written, pages through its objects, and opens its artifact repositories."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from shipyard.errors import InvalidInput, NotFound, Unavailable

SOURCE_PAGE = 1000
KEPT_POINTS = 250_000
"""Most metric points read for a thorough comparison that are held for the copy that
follows it (~100 MB: an MLflow ``Metric`` read over REST takes ~250-400 bytes): a run
found changed then has its histories read once, not twice, while the budget lasts."""
# Experiments per search of logged models: one short request each.
LOGGED_MODEL_EXPERIMENTS = 100
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
        self._kept: dict[tuple[str, str], list[Any]] = {}
        self._kept_points = 0
        self._kept_lock = threading.Lock()
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
        """Every point of a metric of a run (kept ones are handed over, once)."""
        with self._kept_lock:
            kept = self._kept.pop((run_id, key), None)
            if kept is not None:
                self._kept_points -= len(kept)
                return kept
        return list(self.client.get_metric_history(run_id, key))

    def metric_counts(
        self, run_id: str, keys: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, list[Any]] | None]:
        """How many points each metric of a run has (MLflow has no cheaper count: each
        history is read), and the histories themselves while :data:`KEPT_POINTS` has
        room for all of them (None once it has not: what was held is let go). Hand
        them to :meth:`keep_histories` or :meth:`release`."""
        counts: dict[str, int] = {}
        held: dict[str, list[Any]] | None = {}
        for key in keys:
            points = self.metric_history(run_id, key)
            counts[key] = len(points)
            if held is None:
                continue
            with self._kept_lock:
                room = self._kept_points + len(points) <= KEPT_POINTS
                if room:
                    self._kept_points += len(points)
            if room:
                held[key] = points
            else:
                self.release(held)
                held = None
        return counts, held

    def keep_histories(self, run_id: str, held: dict[str, list[Any]]) -> None:
        """Keep ``held`` (from :meth:`metric_counts`) for the run's next
        :meth:`metric_history` calls, which take each once."""
        with self._kept_lock:
            for key, points in held.items():
                self._kept[(run_id, key)] = points

    def release(self, held: dict[str, list[Any]]) -> None:
        """Give back the budget of ``held`` histories that will not be kept."""
        with self._kept_lock:
            self._kept_points -= sum(map(len, held.values()))

    def discard_kept(self, run_id: str) -> None:
        """Drop what is still kept of a run (its copy failed before reading it all)."""
        with self._kept_lock:
            for key in [k for k in self._kept if k[0] == run_id]:
                self._kept_points -= len(self._kept.pop(key))

    def version_files_uri(self, name: str, version: str) -> str:
        """Where a version's files are stored, ``runs:/`` resolved to its run's location."""
        return self.resolve(str(self.client.get_model_version_download_uri(name, version)))

    def resolve(self, uri: str) -> str:
        """``runs:/<run>/<path>`` as the run's own artifact location plus the path.

        MLflow resolves ``runs:/`` through its tracking server only, and a caller
        comparing locations needs the form the run's ``artifact_uri`` has.
        """
        if urlsplit(uri).scheme != "runs":
            return uri
        from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

        run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
        root = str(self.client.get_run(run_id).info.artifact_uri).rstrip("/")
        return f"{root}/{path.strip('/')}" if path and path.strip("/") else root

    def logged_models(self, experiment_ids: list[str]) -> int | None:
        """How many MLflow 3 logged models the experiments hold; None when the source
        cannot say (an MLflow 2 server)."""
        from mlflow.exceptions import MlflowException

        count = 0
        for first in range(0, len(experiment_ids), LOGGED_MODEL_EXPERIMENTS):
            chunk = experiment_ids[first : first + LOGGED_MODEL_EXPERIMENTS]
            try:
                count += sum(
                    1
                    for _ in self._pages(
                        lambda token, chunk=chunk: self.client.search_logged_models(
                            chunk, max_results=SOURCE_PAGE, page_token=token
                        )
                    )
                )
            except (MlflowException, AttributeError):
                return None
        return count

    def repository(self, artifact_uri: str) -> Any:
        """The artifact repository of ``artifact_uri``; ArtifactsUnreachable when only the
        MLflow server could read it and the source is its database."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        artifact_uri = self.resolve(artifact_uri)
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
    def files(repo: Any, path: str | None = None) -> list[tuple[str, int | None]]:
        """``(path, size)`` of every file below ``path`` of an artifact repository."""
        found: list[tuple[str, int | None]] = []
        for entry in repo.list_artifacts(path):
            if entry.is_dir:
                found += MlflowSource.files(repo, entry.path)
            else:
                found.append((entry.path, entry.file_size))
        return found

    @staticmethod
    def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = fetch(token)
            yield from page
            token = page.token
            if not token:
                return
