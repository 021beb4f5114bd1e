"""The SDK client: one object composing each domain's client.

With a URL it talks to a server over HTTP; without one it mounts the same
application in this process (embedded mode), over the stores under
``SHIPYARD_HOME``. Both go through the same routes, so each operation exists
once.
"""

from __future__ import annotations

import atexit
import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING

import httpx

from shipyard.client.api import Api
from shipyard.config import Settings

if TYPE_CHECKING:
    from shipyard.auth.client import AuditClient, TokensClient, UsersClient
    from shipyard.datasets.client import DatasetsClient
    from shipyard.platform import Platform
    from shipyard.projects.client import ProjectsClient
    from shipyard.registry.client import ModelsClient
    from shipyard.tracking.artifacts_client import ArtifactsClient
    from shipyard.tracking.client import ExperimentsClient, RunsClient

_EMBEDDED: dict[tuple[str, str], Platform] = {}
_EMBEDDED_LOCK = threading.Lock()
EMBEDDED_BASE_URL = "http://embedded.shipyard"

# A forked child must not reuse its parent's database connections or loop thread.
os.register_at_fork(after_in_child=_EMBEDDED.clear)


def embedded_platform(settings: Settings) -> Platform:
    """The process-wide platform over ``settings``' stores (opened and migrated once)."""
    from shipyard.platform import Platform

    key = (settings.resolved_database_url, settings.resolved_blob_url)
    with _EMBEDDED_LOCK:
        if key not in _EMBEDDED:
            if not _EMBEDDED:
                atexit.register(close_embedded)
            _EMBEDDED[key] = Platform.from_settings(settings)
        return _EMBEDDED[key]


def close_embedded(*, sqlite_only: bool = False) -> None:
    """Close the embedded stores' connections (SQLite then folds its write-ahead log
    into the database file, so that the file alone holds everything): at exit, rather
    than leave it to finalisation, which a CLI command skips (``shipyard.heap``), and
    in the command daemon after each command (``sqlite_only``: a PostgreSQL pool is
    kept, with its planned statements). They reopen if used again."""
    with _EMBEDDED_LOCK:
        for platform in _EMBEDDED.values():
            if not sqlite_only:
                platform.close()
            elif platform.db.is_sqlite:
                platform.db.dispose()


def _embedded_http(settings: Settings) -> httpx.Client:
    from shipyard.client.inprocess import InProcessTransport
    from shipyard.server.app import create_app

    app = create_app(embedded_platform(settings), mlflow=False, ui=False, lazy=True)
    return httpx.Client(transport=InProcessTransport(app), base_url=EMBEDDED_BASE_URL, timeout=None)


class Client:
    """Entry point of the SDK.

    ``Client()`` reads ``SHIPYARD_URL``/``SHIPYARD_TOKEN``; with no URL it runs
    embedded over ``SHIPYARD_HOME``. ``project`` is the default project of
    every call that takes one.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        project: str | None = None,
        settings: Settings | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.url = url or self.settings.url
        token = token or self.settings.token
        if http is None:
            if self.url:
                headers = {"authorization": f"Bearer {token}"} if token else {}
                http = httpx.Client(
                    base_url=self.url.rstrip("/"),
                    headers=headers,
                    timeout=httpx.Timeout(60.0, connect=10.0),
                )
            else:
                http = _embedded_http(self.settings)
        self.api = Api(http)
        self.project = project or self.settings.project

    # Each domain's client is made on first use: importing one costs its pydantic
    # types, which a command of another domain never needs.

    @cached_property
    def projects(self) -> ProjectsClient:
        """Projects and their members."""
        from shipyard.projects.client import ProjectsClient

        return ProjectsClient(self.api)

    @cached_property
    def artifacts(self) -> ArtifactsClient:
        """Run artifacts: upload, list, download."""
        from shipyard.tracking.artifacts_client import ArtifactsClient

        return ArtifactsClient(self.api)

    @cached_property
    def experiments(self) -> ExperimentsClient:
        """Experiments of a project."""
        from shipyard.tracking.client import ExperimentsClient

        return ExperimentsClient(self.api, self)

    @cached_property
    def runs(self) -> RunsClient:
        """Runs: params, metrics, tags, search."""
        from shipyard.tracking.client import RunsClient

        return RunsClient(self.api, self)

    @cached_property
    def models(self) -> ModelsClient:
        """The model registry."""
        from shipyard.registry.client import ModelsClient

        return ModelsClient(self.api, self)

    @cached_property
    def datasets(self) -> DatasetsClient:
        """Datasets: ingest, versions, validation, diffs, lineage."""
        from shipyard.datasets.client import DatasetsClient

        return DatasetsClient(self.api, self)

    @cached_property
    def users(self) -> UsersClient:
        """User accounts."""
        from shipyard.auth.client import UsersClient

        return UsersClient(self.api)

    @cached_property
    def tokens(self) -> TokensClient:
        """API tokens."""
        from shipyard.auth.client import TokensClient

        return TokensClient(self.api)

    @cached_property
    def audit(self) -> AuditClient:
        """The audit log."""
        from shipyard.auth.client import AuditClient

        return AuditClient(self.api)

    @property
    def embedded(self) -> bool:
        """Whether this client runs the platform in-process."""
        return not self.url

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
