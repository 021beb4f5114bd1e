"""Read sessions: nothing written in one is ever kept, and on PostgreSQL they end so
that the driver keeps its prepared statements (a repeated query is planned once)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from shipyard.db import Database
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow


def _projects(platform: Platform) -> int:
    with platform.db.read() as session:
        return int(session.execute(select(func.count()).select_from(ProjectRow)).scalar_one())


def test_a_write_in_a_read_session_is_never_kept(platform: Platform) -> None:
    before = _projects(platform)
    insert = text(
        "INSERT INTO projects (name, description, created_at, created_by) VALUES ('x', '', 0, 'me')"
    )
    if platform.db.is_sqlite:
        with platform.db.read() as session:  # SQLite rolls the read transaction back
            session.execute(insert)
    else:
        with pytest.raises(DBAPIError, match="read-only transaction"), platform.db.read() as s:
            s.execute(insert)
    assert _projects(platform) == before


def test_postgresql_reads_keep_prepared_statements(pg_database: Database) -> None:
    db = Database(pg_database.url.render_as_string(hide_password=False))  # one connection
    try:
        query = select(ProjectRow.name).where(ProjectRow.id == 0)
        for _ in range(8):  # psycopg prepares a statement on its 6th use in one connection
            with db.read() as session:
                assert session.execute(query).all() == []
        with db.read() as session:
            prepared = session.execute(
                text("SELECT statement FROM pg_prepared_statements WHERE statement LIKE :q"),
                {"q": "SELECT projects.name %"},
            ).all()
        assert len(prepared) == 1
    finally:
        db.dispose()


def test_each_statement_of_a_postgresql_read_is_its_own_transaction(
    pg_database: Database,
) -> None:
    """On PostgreSQL each statement of a read session is its own read-only transaction
    (autocommit): no BEGIN and COMMIT round trips around the session's queries."""
    with pg_database.read() as session:
        first = session.execute(text("SELECT now(), pg_sleep(0.02)")).scalar_one()
        second, read_only = session.execute(
            text("SELECT now(), current_setting('transaction_read_only')")
        ).one()
        assert session.connection().connection.driver_connection.autocommit is True
    assert second > first  # a transaction of its own: in one, now() would not move
    assert read_only == "on"
