"""PostgreSQL's pooled connections: a connection that idled is checked before use,
one that was just used is not (no extra round trip per request), and the one returned
last is the one handed out next."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from tests.conftest import PG_ADMIN_URL

from shipyard.db import Database, engine


@pytest.fixture
def own_db_url(pg_url: str) -> Iterator[str]:
    """A database of this test's own: killing its connections touches no other test."""
    del pg_url  # requested for its check that PostgreSQL is up
    name = f"shipyard_pool_{uuid.uuid4().hex[:8]}"
    admin = Database(PG_ADMIN_URL)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _kill_backends(url: str) -> int:
    """Terminate every server process of ``url``'s database (a restart, as seen by a pool)."""
    admin = Database(PG_ADMIN_URL)
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": url.rsplit("/", 1)[1]},
                ).all()
            )
    finally:
        admin.dispose()


def _read_one(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(text("SELECT 1")).scalar_one())


def test_an_idle_connection_killed_by_the_server_is_replaced(
    own_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(own_db_url)
    try:
        assert _read_one(db) == 1  # one pooled connection, now idle
        assert _kill_backends(own_db_url) == 1
        monkeypatch.setattr(engine, "PING_AFTER_IDLE_S", 0.0)  # it has idled long enough
        assert _read_one(db) == 1  # pinged, found dead, replaced: the caller saw nothing
    finally:
        db.dispose()


def test_a_connection_just_used_is_not_pinged(own_db_url: str) -> None:
    db = Database(own_db_url)
    try:
        assert _read_one(db) == 1
        assert _kill_backends(own_db_url) == 1
        # Used a moment ago: no ping, so this request meets the dead connection...
        with pytest.raises(OperationalError):
            _read_one(db)
        # ...and the pool, told of the disconnect, opens a new one for the next.
        assert _read_one(db) == 1
    finally:
        db.dispose()


def _backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize("kind", ["read", "write"])
def test_the_connection_returned_last_is_handed_out_next(own_db_url: str, kind: str) -> None:
    """After a burst opened three connections, one caller at a time keeps getting the
    connection returned last (whose server process has the statements prepared and
    planned), not each idle one in turn."""
    db = Database(own_db_url)
    sessions: Callable[[], AbstractContextManager[Session]] = getattr(db, kind)
    try:
        with ExitStack() as burst:
            pids = [_backend_pid(burst.enter_context(sessions())) for _ in range(3)]
        assert len(set(pids)) == 3
        # ExitStack closed them last-opened first: pids[0] went back to the pool last.
        following = []
        for _ in range(5):
            with sessions() as session:
                following.append(_backend_pid(session))
        assert following == [pids[0]] * 5
    finally:
        db.dispose()
