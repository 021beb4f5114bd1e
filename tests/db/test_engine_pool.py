"""PostgreSQL's pooled connections: a connection that idled is checked before use,
one that was just used is not (no extra round trip per request)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
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
