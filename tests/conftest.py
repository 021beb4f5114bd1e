"""Shared fixtures: real backends (SQLite, PostgreSQL, S3 on loopback) and both SDK modes.

In CI (CI=true) a backend that is not reachable is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from shipyard.client import Client
from shipyard.client.inprocess import InProcessTransport
from shipyard.config import Settings
from shipyard.db import Database, upgrade
from shipyard.db.base import all_tables
from shipyard.platform import Platform
from shipyard.server.app import create_app

PG_ADMIN_URL = os.environ.get(
    "SHIPYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def backend_missing(what: str) -> None:
    """Skip locally, fail in CI: a missing backend must never pass silently there."""
    if IN_CI:
        pytest.fail(f"{what} is not reachable (CI requires every backend)")
    pytest.skip(f"{what} is not reachable")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- PostgreSQL: one fresh database per test session, emptied between tests ----------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not _port_open("127.0.0.1", 5432):
        backend_missing("PostgreSQL on 127.0.0.1:5432")
    name = f"shipyard_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = Database(PG_ADMIN_URL)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    upgrade(db)
    yield db
    db.dispose()


def _empty_postgres(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in all_tables().sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(
            text(
                "INSERT INTO projects (name, description, created_at, created_by) "
                "VALUES ('default', 'The project used when none is named.', 0, 'system')"
            )
        )


# --- Platforms -------------------------------------------------------------------------


def make_settings(home: Path, **overrides: object) -> Settings:
    return Settings(home=home, **overrides)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Parametrize a test over both metadata backends."""
    return str(request.param)


def build_platform(
    request: pytest.FixtureRequest, backend: str, home: Path, *, auth_required: bool = False
) -> Platform:
    if backend == "postgres":
        db: Database = request.getfixturevalue("pg_database")
        _empty_postgres(db)
        settings = make_settings(home, database_url=str(db.url.render_as_string(False)))
        platform = Platform.from_settings(settings, migrate=False)
        platform.db.dispose()
        platform.db = db
    else:
        platform = Platform.from_settings(make_settings(home))
    platform.auth_required = auth_required
    return platform


@pytest.fixture
def platform(request: pytest.FixtureRequest, db_backend: str, tmp_path: Path) -> Platform:
    """A platform on each metadata backend, auth off (loopback defaults)."""
    return build_platform(request, db_backend, tmp_path / "home")


# --- A real server on loopback --------------------------------------------------------


class ServerThread:
    """uvicorn serving an app on a free loopback port, in a thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server_for() -> Iterator[object]:
    """Start a server for a platform: ``server_for(platform) -> ServerThread``."""
    started: list[ServerThread] = []

    def start(platform: Platform) -> ServerThread:
        srv = ServerThread(create_app(platform)).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__()


def embedded_client(platform: Platform, **kwargs: object) -> Client:
    """An SDK client mounting the app in-process over ``platform``."""
    http = httpx.Client(
        transport=InProcessTransport(create_app(platform)), base_url="http://embedded.shipyard"
    )
    return Client(settings=platform.settings, http=http, **kwargs)  # type: ignore[arg-type]


# The SDK runs both ways: embedded over SQLite, remote (real HTTP) over PostgreSQL.
CLIENT_MODES = ["embedded-sqlite", "remote-postgres"]


@pytest.fixture(params=CLIENT_MODES)
def client(request: pytest.FixtureRequest, tmp_path: Path, server_for: object) -> Iterator[Client]:
    """An SDK client, in each mode, over a fresh platform with auth off."""
    mode, backend = str(request.param).split("-")
    platform = build_platform(request, backend, tmp_path / "home")
    if mode == "embedded":
        c = embedded_client(platform)
    else:
        srv = server_for(platform)  # type: ignore[operator]
        c = Client(srv.url, settings=platform.settings)
    yield c
    c.close()
