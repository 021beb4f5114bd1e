"""Settings: the only reader of the environment.

Every field can be set with a ``SHIPYARD_<NAME>`` environment variable; the CLI
overrides some of them with flags. With nothing set, everything lives under
``SHIPYARD_HOME`` (default ``./.shipyard``): a SQLite database in WAL mode and a
local blob folder.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


@lru_cache(maxsize=1024)  # asked on every request of a server with auth off
def is_loopback_host(name: str) -> bool:
    """Whether host ``name`` can only mean this machine: localhost (and its
    subdomains), 127.0.0.0/8, or ::1 (bracketed or not)."""
    name = name.lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Shipyard's configuration, read from ``SHIPYARD_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    home: Path = Field(
        default=Path(".shipyard"),
        description="Folder for the embedded defaults: SQLite database and blob folder.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store, e.g. postgresql+psycopg://u@h/db. "
        "Default: SQLite at <home>/shipyard.db.",
    )
    blob_url: str | None = Field(
        default=None,
        description="Where blobs live: a local folder or s3://bucket/prefix. "
        "Default: <home>/blobs.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (for MinIO, moto or another S3-compatible store)."
    )
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret key.")
    s3_region: str | None = Field(default=None, description="S3 region.")
    url: str | None = Field(
        default=None,
        description="Server the SDK talks to (http://host:8080). Unset: embedded mode.",
    )
    project: str = Field(default="default", description="Project the SDK uses when none is named.")
    token: str | None = Field(default=None, description="API token sent to the server.")
    auth: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Server authentication. auto: required unless the server listens on "
        "loopback only. 'off' is refused for a non-loopback host.",
    )
    secure_cookies: Literal["auto", "always"] = Field(
        default="auto",
        description="The web UI's session cookie is Secure (sent over HTTPS only) when the "
        "request came over HTTPS or a proxy says so in X-Forwarded-Proto (auto), or always. "
        "Set 'always' behind a TLS proxy that sends no X-Forwarded-Proto.",
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Largest JSON request body the server accepts.",
    )
    max_artifact_bytes: int = Field(
        default=100 * 1024**3, description="Largest single artifact upload."
    )
    max_uploads: int = Field(
        default=32,
        ge=1,
        description="Uploads the server receives at once (artifacts, dataset files, the "
        "MLflow artifact proxy; a join of a large file's pieces counts as 8, a JSON body "
        "over 1 MiB as one per 2 MiB). More wait, unread, for their turn: memory stays "
        "bounded whatever the number of clients.",
    )
    metric_flush_interval: float = Field(
        default=0.5, description="Seconds between background metric flushes in the SDK."
    )
    metric_batch_size: int = Field(
        default=5000, description="Most metrics the SDK sends in one request."
    )
    durable_metrics: bool = Field(
        default=False,
        description="PostgreSQL: wait for the disk on every metric-only batch. Off (the "
        "default), such batches commit without waiting for the WAL flush, as SQLite's WAL "
        "mode does: a crash of the database server may lose the last moments of acknowledged "
        "metric points, never anything else, and never corrupts.",
    )
    system_metrics_interval: float = Field(
        default=10.0, description="Seconds between system metric samples; 0 turns them off."
    )
    run_heartbeat_interval: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between the SDK's heartbeats for a run it logs into (0: none). "
        "A run whose heartbeats stop (its process was killed) is marked failed.",
    )
    run_heartbeat_timeout: float = Field(
        default=600.0,
        ge=0,
        description="Server: a running run whose last heartbeat is older than this many "
        "seconds is marked failed (0: never). Runs that never sent one are left alone.",
    )
    daemon: Literal["off", "auto"] | None = Field(
        default=None,
        description="The CLI's command daemon (`shipyard daemon start`). auto: a command "
        "that finds none for its home runs in its own process, then starts one in the "
        "background for the next commands; off: never. Unset: auto, except where the CI "
        "variable is set. Read by `cli/daemon_link.py` from the environment directly, "
        "before anything else is imported.",
    )

    @field_validator("daemon", mode="before")
    @classmethod
    def _daemon_in_any_case(cls, value: object) -> object:
        # As cli/daemon_link.py reads it: AUTO and " off " mean auto and off, empty unset.
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    otel: bool = Field(
        default=False,
        description="Let the server's FastAPI export OpenTelemetry spans, metrics and logs of "
        "its HTTP requests through the OpenTelemetry SDK this process configures (for example "
        "under `opentelemetry-instrument`). Off (the default), requests skip the check for a "
        "configured SDK that FastAPI otherwise makes on each of them.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        """The metadata store URL, defaulting to SQLite under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'shipyard.db').resolve()}"

    @cached_property
    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to a folder under ``home``."""
        return self.blob_url or str((self.home / "blobs").resolve())

    def auth_required(self, host: str | None) -> bool:
        """Whether a server bound to ``host`` must authenticate requests."""
        loopback = host is None or is_loopback_host(host)
        if self.auth == "on":
            return True
        if self.auth == "off" and not loopback:
            raise ValueError(
                f"auth cannot be off on {host}: a server reachable from the network "
                "must authenticate (listen on 127.0.0.1 or set SHIPYARD_AUTH=auto)"
            )
        return not loopback
