"""The database driver's own cursor, for hot paths where SQLAlchemy's per-execution
work costs more than the statement: parameters built into SQLAlchemy's structures,
the statement's cache key computed again, and a Row object per result row.

Each use stays in the session's transaction (the cursor is on the session's
connection), and SQL is still written once: either as text with ``?`` placeholders
(:func:`driver_sql`) or as a SQLAlchemy statement compiled once per dialect
(:class:`DriverQuery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable


def driver_cursor(session: Session) -> tuple[Any, str]:
    """A cursor of the driver itself on the session's connection (same transaction),
    and the dialect name. For hot paths where building SQLAlchemy parameters
    would cost more than the statement."""
    connection = session.connection()
    return connection.connection.cursor(), connection.dialect.name


def execute_hot(cursor: Any, dialect: str, sql: str, params: Any) -> None:
    """Run ``sql`` on ``cursor`` (from :func:`driver_cursor`), a statement that runs
    again and again (a search's page, its summaries): on PostgreSQL prepared from its
    first run, unless the connection prepares nothing.

    psycopg prepares a statement on its 6th run on a connection (``prepare_threshold``,
    5 by default) and PostgreSQL then plans it afresh 5 more times (custom plans) before
    it may keep a generic plan. So a search repeated right after a server starts (a
    page, then refreshes) parsed, analysed and planned its page query every time;
    prepared at once, a run skips parsing and analysis, and the generic plan may come
    5 runs sooner (filtered search of 2,000 runs on new connections, median of runs 2
    to 8: the page query alone 3.15 -> 2.54 ms; the whole search in the server 5.48 ->
    5.21 ms). Only these statements: preparing every statement at its first run would
    cost each one-off statement a round trip more and churn psycopg's cache of 100.
    A connection made with ``prepare_threshold=None`` (PgBouncer in transaction mode
    without its prepared statement support) prepares nothing here either."""
    if dialect != "postgresql" or cursor.connection.prepare_threshold is None:
        cursor.execute(sql, params)
    else:
        cursor.execute(sql, params, prepare=True)


def driver_sql(sql: str, dialect: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's placeholder style."""
    return sql.replace("?", "%s") if dialect == "postgresql" else sql


class _Compiled:
    """One dialect's text of a :class:`DriverQuery`, and how to bind its parameters."""

    __slots__ = ("sql", "fixed", "order", "processors")

    def __init__(self, statement: Executable, session: Session, names: Sequence[str]) -> None:
        dialect = session.get_bind().dialect
        compiled = statement.compile(dialect=dialect)
        # Expanding parameters (``IN`` lists) are rendered now, from the values the
        # statement carries; the per-call ones get stand-ins, replaced on each run.
        state = compiled.construct_expanded_state(dict.fromkeys(names))
        self.sql: str = state.statement
        # What each value goes through on its way to the driver (a LIKE pattern becomes
        # a GLOB pattern on SQLite, say): its type's, and the expanded elements' own.
        self.processors: dict[str, Any] = {
            name: processor
            for parameter, name in compiled.bind_names.items()
            if (processor := parameter.type.bind_processor(dialect)) is not None
        }
        self.processors.update(state.processors)
        self.fixed: dict[str, Any] = {
            name: self._processed(name, value)
            for name, value in state.parameters.items()
            if name not in names
        }
        # Positional drivers (sqlite3) take a tuple in this order; named ones (psycopg's
        # %(name)s) a dict.
        self.order: tuple[str, ...] | None = (
            None if state.positiontup is None else tuple(state.positiontup)
        )

    def _processed(self, name: str, value: Any) -> Any:
        processor = self.processors.get(name)
        return value if processor is None or value is None else processor(value)

    def bind(self, params: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = dict(self.fixed)
        for name, value in params.items():
            values[name] = self._processed(name, value)
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)


class DriverQuery:
    """A SQLAlchemy SELECT compiled once per dialect and run on the driver's cursor,
    its rows as plain tuples.

    ``per_call`` names the statement's bind parameters that take a new value on each
    run (given to :meth:`rows`); every other parameter, ``IN`` lists included, keeps
    the value the statement was built with. Result columns get no type processing, so
    the statement must select only columns that the driver already returns as the
    right Python type (text, integers, floats).
    """

    def __init__(self, statement: Executable, per_call: Sequence[str] = ()) -> None:
        self.statement = statement
        self._per_call = tuple(per_call)
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, session: Session, **params: Any) -> list[tuple[Any, ...]]:
        """The result rows of one run, in the session's transaction."""
        if set(params) != set(self._per_call):
            raise TypeError(f"expected parameters {sorted(self._per_call)}, got {sorted(params)}")
        cursor, dialect = driver_cursor(session)
        compiled = self._compiled.get(dialect)
        if compiled is None:  # two threads may both compile it: the same text either way
            compiled = self._compiled[dialect] = _Compiled(self.statement, session, self._per_call)
        try:
            execute_hot(cursor, dialect, compiled.sql, compiled.bind(params))
            return cursor.fetchall()
        finally:
            cursor.close()
