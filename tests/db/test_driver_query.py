"""DriverQuery: a SQLAlchemy SELECT compiled once per dialect and run on the driver's
cursor gives the rows SQLAlchemy's own execution gives, with ``IN`` lists, values
that their type converts on the way in, and parameters that change per call."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from shipyard.db import Database
from shipyard.db.driver import DriverQuery
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow
from shipyard.tracking.search import CaseSensitiveLike


def _add_projects(platform: Platform, names: list[str]) -> None:
    with platform.db.write() as session:
        for name in names:
            session.add(
                ProjectRow(name=name, description=f"about {name}", created_at=0, created_by="t")
            )


def test_rows_match_sqlalchemy(platform: Platform) -> None:
    _add_projects(platform, ["Alpha", "alpine", "beta", "gamma", "delta"])
    stmt = (
        select(ProjectRow.name, ProjectRow.description)
        .where(ProjectRow.name.in_(["Alpha", "alpine", "beta", "gamma"]))
        # Case-sensitive on SQLite too: its bind processor turns the pattern into GLOB.
        .where(~CaseSensitiveLike(ProjectRow.name, "A%"))
        .order_by(ProjectRow.name)
        .offset(bindparam("skip"))
        .limit(bindparam("take"))
    )
    query = DriverQuery(stmt, ("skip", "take"))
    with platform.db.read() as session:
        for skip, take in [(0, 10), (1, 1), (0, 2), (5, 3)]:
            expected = [tuple(r) for r in session.execute(stmt, {"skip": skip, "take": take})]
            assert query.rows(session, skip=skip, take=take) == expected
        assert [r[0] for r in query.rows(session, skip=0, take=10)] == ["alpine", "beta", "gamma"]


def test_the_per_call_parameters_are_required(platform: Platform) -> None:
    query = DriverQuery(select(ProjectRow.name).limit(bindparam("take")), ("take",))
    with platform.db.read() as session:
        with pytest.raises(TypeError, match="take"):
            query.rows(session)
        with pytest.raises(TypeError, match="skip"):
            query.rows(session, take=1, skip=2)


def _prepared(session: Session) -> list[str]:
    """The statements psycopg has prepared on the session's connection."""
    found = session.connection().exec_driver_sql("SELECT statement FROM pg_prepared_statements")
    return [text for text in found.scalars() if "AS hot_name" in text]


def test_a_hot_statement_is_prepared_at_its_first_run_on_postgres(
    pg_database: Database,
) -> None:
    query = DriverQuery(
        select(ProjectRow.name.label("hot_name")).limit(bindparam("take")), ("take",)
    )
    with pg_database.read() as session:
        query.rows(session, take=1)
        assert len(_prepared(session)) == 1


def test_nothing_is_prepared_where_the_connection_prepares_nothing(pg_url: str) -> None:
    db = Database(pg_url)  # PgBouncer in transaction mode: prepare_threshold=None
    try:
        with db.read() as session:
            session.connection().connection.driver_connection.prepare_threshold = None
            query = DriverQuery(
                select(ProjectRow.name.label("hot_name")).limit(bindparam("take")), ("take",)
            )
            for _ in range(8):
                query.rows(session, take=1)
            assert _prepared(session) == []
    finally:
        db.dispose()
