"""Engine and sessions for the metadata store (SQLite in WAL mode or PostgreSQL)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shipyard.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 60_000
PING_AFTER_IDLE_S = 10.0
"""A pooled PostgreSQL connection idle longer than this is pinged before use."""


class Database:
    """The metadata store: an engine plus read and write session factories.

    On SQLite a write session starts with ``BEGIN IMMEDIATE`` so that several
    processes writing one embedded home wait for the lock instead of failing
    when a read transaction tries to become a write one.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                self.url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            _configure_sqlite(self.engine, self.url.database)
            self._read_engine = self.engine
        else:
            options = _with_exact_floats(self.url.query.get("options"))
            self.engine = _postgres_engine(self.url, echo, options)
            # Reads on PostgreSQL go through connections of their own, in autocommit
            # and read-only by default: each statement is its own read-only
            # transaction, as consistent as a READ COMMITTED transaction's statements
            # are, without BEGIN and COMMIT or SQLAlchemy's read-only switch on each
            # checkout (a read session of one small query: 0.44 -> 0.14 ms here). A
            # write by mistake in a read session still fails.
            # (ROLLBACK, which makes psycopg forget its prepared statements, is never
            # sent: there is no transaction to end.)
            self._read_engine = _postgres_engine(
                self.url,
                echo,
                f"{options} -c default_transaction_read_only=on",
                isolation_level="AUTOCOMMIT",
            )
        self._writer = sessionmaker(
            self.engine.execution_options(shipyard_write=True), expire_on_commit=False
        )
        # SQLite has one writer at a time. Threads of this process take turns on a lock
        # that wakes the next one as soon as it is free; left to SQLite's busy handler,
        # a waiting writer sleeps 1, 2, 5, 10... up to 100 ms between tries (eight
        # uploads at once into a server spent a tenth of their time there). Other
        # processes still wait through the busy handler. Re-entrant: a write session
        # opened inside another on the same thread behaves as it did without the lock.
        self._turn = threading.RLock() if self.is_sqlite else None
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self._write_turn(), self._writer.begin() as session:
            yield session

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """This thread's turn to write (SQLite; PostgreSQL needs none). Past the busy
        timeout it goes on without the lock, and SQLite's own wait decides, as before
        (so a writer stuck behind another waits up to twice that before it fails). A
        write session ends on the thread that opened it, as a ``with`` block does."""
        if self._turn is None:
            yield
            return
        held = self._turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            yield
        finally:
            if held:
                self._turn.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: one transaction rolled back at the end on SQLite; on
        PostgreSQL each statement its own read-only transaction (see ``__init__``)."""
        with self._reader() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()


def _postgres_engine(url: Any, echo: bool, options: str, **kwargs: Any) -> Engine:
    """A pooled PostgreSQL engine with libpq ``options``, its idle connections pinged
    before use (:func:`_ping_idle_connections`).

    The pool hands out the connection returned last (LIFO): a statement PostgreSQL has
    planned for good lives in one connection (psycopg prepares a statement on its 5th
    run there, PostgreSQL plans it 5 more times before it settles on a generic plan,
    ~1 ms of planning each for a search), so a pool that took turns among its idle
    connections made each search shape pay that warm-up once per connection, 10
    connections over, and kept every connection's server process warm for nothing."""
    engine = create_engine(
        url,
        echo=echo,
        pool_size=10,
        max_overflow=20,
        pool_use_lifo=True,
        connect_args={"options": options},
        **kwargs,
    )
    _ping_idle_connections(engine)
    return engine


def _with_exact_floats(options: str | tuple[str, ...] | None) -> str:
    """libpq ``options`` (the URL's, if any) plus ``extra_float_digits=3``: doubles come
    back as text, and as JSON, exactly whatever the server's default, and metrics are
    read both ways."""
    given = " ".join([options] if isinstance(options, str) else options or ())
    return f"{given} -c extra_float_digits=3".strip()


def _configure_sqlite(engine: Engine, path: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # We issue BEGIN ourselves (below); the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            raise _unopenable(path, error) from None
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        write = conn.get_execution_options().get("shipyard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _unopenable(path: str | None, error: sqlite3.OperationalError) -> Exception:
    """What to raise when SQLite cannot open ``path``: Unavailable saying why where the
    reason is the folder (read-only, or not ours to write: WAL mode keeps two files
    beside the database, so even reading needs to write there); the error as it is
    otherwise."""
    if not path or path == ":memory:":
        return error
    folder = Path(path).parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return Unavailable(
            f"cannot open the metadata database {path}: its folder {folder} is not "
            "writable, and SQLite keeps its write-ahead log beside the file (reads "
            "included). Use a writable SHIPYARD_HOME, or a server (SHIPYARD_URL).",
            {"path": path},
        )
    if Path(path).exists() and not os.access(path, os.R_OK | os.W_OK):
        return Unavailable(
            f"cannot open the metadata database {path}: the file is not readable and "
            "writable by this user.",
            {"path": path},
        )
    return error


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle a while.

    ``pool_pre_ping`` pings on every checkout: one more round trip on every
    request (0.1-0.2 ms, a tenth of a small one). A connection that was in use a
    moment ago is as alive as a ping would find it; one that idled may have met
    a database restart or an idle timeout: that one is pinged, and a dead one is
    replaced before the request sees it (the pool retries on DisconnectionError).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return  # just opened, or just used
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            # Leave no transaction open behind the ping: COMMIT, since psycopg forgets its
            # prepared statements on ROLLBACK (see Database.__init__).
            dbapi_conn.commit()
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection is dead: {error}") from error
