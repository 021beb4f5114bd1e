"""Shared fixtures: real backends (SQLite, PostgreSQL, S3 on loopback) and both SDK modes.

In CI (CI=true) a backend that is not reachable is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from shipyard.blobs import BlobStore, open_blob_store
from shipyard.blobs.store import LAYOUT_FILE
from shipyard.client import Client
from shipyard.client.inprocess import InProcessTransport
from shipyard.config import Settings
from shipyard.db import Database, upgrade
from shipyard.db.base import all_tables
from shipyard.platform import Platform
from shipyard.server.app import KEEP_ALIVE_SECONDS, create_app

PG_ADMIN_URL = os.environ.get(
    "SHIPYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Outside CI the CLI starts a command daemon for each home it serves: the suite's many
# temporary homes must not each leave one behind (tests/cli/test_daemon.py asks for them).
os.environ["SHIPYARD_DAEMON"] = "off"


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


# --- S3: moto's server on loopback, one per test session -----------------------------

S3_BUCKET = "shipyard-test"
S3_KEY = "testing"
S3_SECRET = "testing"
S3_REGION = "us-east-1"


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    if shutil.which("moto_server"):
        return ["moto_server", "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 holding the bucket ``S3_BUCKET``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        proc = subprocess.Popen(
            _moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        backend_missing(f"moto S3 server ({exc})")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    backend_missing(f"moto S3 server on {url}")
                time.sleep(0.1)
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )
        s3.create_bucket(Bucket=S3_BUCKET)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_settings(endpoint: str) -> dict[str, str]:
    """Settings that put blobs under a fresh prefix of the test bucket."""
    return {
        "blob_url": f"s3://{S3_BUCKET}/{uuid.uuid4().hex}",
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": S3_KEY,
        "s3_secret_access_key": S3_SECRET,
        "s3_region": S3_REGION,
    }


class StoredBlob:
    """One blob as stored by a blob store (local or S3), for tests that tamper with it."""

    def __init__(self, store: BlobStore, path: str) -> None:
        self.store = store
        self.path = path

    def read_bytes(self) -> bytes:
        return bytes(self.store.fs.cat_file(self.path))

    def write_bytes(self, data: bytes) -> None:
        self.store.fs.pipe_file(self.path, data)


def stored_blobs_of(settings: Settings) -> list[StoredBlob]:
    """Every committed blob in the store ``settings`` name (in-flight temporaries excluded)."""
    store = open_blob_store(settings)
    return [StoredBlob(store, p) for p in sorted(store.fs.find(store.root)) if is_stored(store, p)]


def is_stored(store: BlobStore, path: str) -> bool:
    """Whether ``path`` (under the store's root) is a stored object: neither an in-flight
    temporary nor the store's layout file."""
    return not path.startswith(f"{store.root}/tmp/") and path != f"{store.root}/{LAYOUT_FILE}"


def stored_blob(settings: Settings, digest: str) -> StoredBlob:
    """The stored object of one blob."""
    store = open_blob_store(settings)
    return StoredBlob(store, store._path(digest))


def as_plain_user() -> list[str]:
    """A command prefix that runs the command without root's power to read, write and
    enter any file or folder (nothing for another user), so that file modes apply."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to drop root's file permission override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


# --- Platforms -------------------------------------------------------------------------


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)`` on a thread of its own: once the session's Playwright
    browser has started, the main thread has a running event loop, and asyncio.run
    refuses to start another there."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def make_settings(home: Path, **overrides: object) -> Settings:
    return Settings(home=home, **overrides)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Parametrize a test over both metadata backends."""
    return str(request.param)


def build_platform(
    request: pytest.FixtureRequest,
    backend: str,
    home: Path,
    *,
    auth_required: bool = False,
    blobs: str = "local",
) -> Platform:
    """A fresh platform on ``backend`` (sqlite/postgres) with blobs "local" or on "s3"."""
    extra: dict[str, object] = {}
    if blobs == "s3":
        extra.update(s3_settings(request.getfixturevalue("s3_endpoint")))
    if backend == "postgres":
        db: Database = request.getfixturevalue("pg_database")
        _empty_postgres(db)
        settings = make_settings(home, database_url=str(db.url.render_as_string(False)), **extra)
        platform = Platform.from_settings(settings, migrate=False)
        platform.db.dispose()
        platform.db = db
    else:
        platform = Platform.from_settings(make_settings(home, **extra))
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
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,  # as `shipyard server` runs it
        )  # fmt: skip
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


@contextmanager
def home_client(home: Path) -> Iterator[Client]:
    """An embedded client over a home another process wrote (closed afterwards)."""
    platform = Platform.from_settings(make_settings(home))
    try:
        with embedded_client(platform) as client:
            yield client
    finally:
        platform.close()


def embedded_client(platform: Platform, **kwargs: object) -> Client:
    """An SDK client mounting the app in-process over ``platform``, as ``Client()``
    does with no URL (the SDK's routes only, each domain's built when first called)."""
    app = create_app(platform, mlflow=False, ui=False, lazy=True)
    http = httpx.Client(transport=InProcessTransport(app), base_url="http://embedded.shipyard")
    return Client(settings=platform.settings, http=http, **kwargs)  # type: ignore[arg-type]


# The SDK runs both ways: embedded over SQLite and a local blob folder (the laptop
# defaults), remote over real HTTP on PostgreSQL and S3 (the production backends).
CLIENT_MODES = ["embedded-sqlite", "remote-postgres"]


@pytest.fixture(params=CLIENT_MODES)
def client(request: pytest.FixtureRequest, tmp_path: Path, server_for: object) -> Iterator[Client]:
    """An SDK client, in each mode, over a fresh platform with auth off."""
    mode, backend = str(request.param).split("-")
    blobs = "s3" if backend == "postgres" else "local"
    platform = build_platform(request, backend, tmp_path / "home", blobs=blobs)
    if mode == "embedded":
        c = embedded_client(platform)
    else:
        srv = server_for(platform)  # type: ignore[operator]
        c = Client(srv.url, settings=platform.settings)
    yield c
    c.close()
