"""Bulk writes shared by the tracking services: one statement per kind of row.

``INSERT ... ON CONFLICT`` exists with the same meaning on SQLite and
PostgreSQL; SQLAlchemy spells it per dialect, so the dialect is picked here.
Rows are written in key order so that concurrent writers on PostgreSQL take
row locks in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from shipyard.db.driver import driver_cursor
from shipyard.errors import Conflict
from shipyard.tracking.tables import ParamRow


def dialect_insert(session: Session, table: Table) -> Any:
    """An ``INSERT`` that knows ``on_conflict_do_*`` for the session's database."""
    # Imported here: the session's engine has loaded its own dialect already, and the
    # other one costs a SQLite command ~40 ms of imports.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def upsert_tags(
    session: Session, row_cls: Any, owner_column: str, owner_id: Any, tags: dict[str, str]
) -> None:
    """Set ``tags`` (insert or overwrite) on the row ``owner_id`` of a tag table."""
    if not tags:
        return
    table: Table = row_cls.__table__
    stmt = dialect_insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[owner_column], table.c.key], set_={"value": stmt.excluded.value}
    )
    session.execute(
        stmt, [{owner_column: owner_id, "key": k, "value": tags[k]} for k in sorted(tags)]
    )


def insert_params(session: Session, run_id: str, params: dict[str, str]) -> None:
    """Log params of a run.

    A param already logged with the same value is fine; one with a different
    value raises Conflict (and the caller's transaction, with everything else
    it wrote, rolls back). Inserting first and comparing after is safe against
    a concurrent writer of the same key, and does not trust driver rowcounts.
    """
    if not params:
        return
    table: Table = ParamRow.__table__  # type: ignore[assignment]
    keys = sorted(params)
    stmt = dialect_insert(session, table).on_conflict_do_nothing(
        index_elements=[table.c.run_id, table.c.key]
    )
    session.execute(stmt, [{"run_id": run_id, "key": k, "value": params[k]} for k in keys])
    query = select(table.c.key, table.c.value).where(
        table.c.run_id == run_id, table.c.key.in_(keys)
    )
    stored: dict[str, str] = {key: value for key, value in session.execute(query)}
    changed = sorted(k for k in keys if stored.get(k) != params[k])
    if changed:
        key = changed[0]
        raise Conflict(
            f"param {key!r} is already logged with value {stored.get(key)!r}; it cannot change "
            f"to {params[key]!r} (params are immutable; nothing of this request was stored)",
            {"keys": changed},
        )


# COPY in binary: the fastest way into PostgreSQL, about twice the speed of an
# INSERT over unnest() arrays (no text arrays to render and parse).
_PG_COPY_POINTS = 'COPY metrics (series_id, step, "timestamp", value) FROM STDIN (FORMAT BINARY)'
_PG_POINT_TYPES = ("int8", "int8", "int8", "float8")
_INSERT_POINTS = "INSERT INTO metrics (series_id, step, timestamp, value) VALUES (?, ?, ?, ?)"

Point = tuple[int, int, float | None]
"""A metric point's (step, timestamp, value)."""


def insert_metric_rows(
    session: Session, rows: Iterable[tuple[int, int, int, float | None]]
) -> None:
    """Append ``(series_id, step, timestamp, value)`` points, of any series: one COPY on
    PostgreSQL, one executemany of plain tuples on SQLite. The series must exist
    (:func:`upsert_latest_metrics`, :func:`insert_latest_metrics`)."""
    cursor, dialect = driver_cursor(session)
    try:
        if dialect == "postgresql":
            with cursor.copy(_PG_COPY_POINTS) as copy:
                copy.set_types(_PG_POINT_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        else:
            cursor.executemany(_INSERT_POINTS, rows)
    finally:
        cursor.close()


# The same on both databases; the WHERE keeps a stored point that is newer (and
# RETURNING then leaves that row out).
_ON_CONFLICT_KEEP_NEWER = (
    "ON CONFLICT (run_id, key) DO UPDATE SET "
    "step = excluded.step, timestamp = excluded.timestamp, value = excluded.value "
    "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
    "AND excluded.timestamp >= latest_metrics.timestamp)"
)
# PostgreSQL numbers new series itself (an identity; a conflicting row spends a number
# too, harmless in 64 bits). The arrays keep one statement text whatever the number
# of keys, and the ORDER BY keeps the rows, and so their locks, in the keys' order.
_PG_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value) "  # noqa: S608
    "SELECT %s, k, s, t, v FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::float8[]) "
    f"WITH ORDINALITY AS u(k, s, t, v, n) ORDER BY n {_ON_CONFLICT_KEEP_NEWER} "
    "RETURNING key, id"
)
_PG_INSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::int8[], %s::int8[], %s::float8[]) "
    "RETURNING run_id, key, id"
)
_SQLITE_INSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, id) VALUES (?, ?, ?, ?, ?, ?)"
)
_SQLITE_UPSERT_LATEST = f"{_SQLITE_INSERT_LATEST} {_ON_CONFLICT_KEEP_NEWER}"
_SQLITE_HIGHEST_SERIES = "SELECT COALESCE(MAX(id), 0) FROM latest_metrics"
_PG_SERIES_OF_KEYS = "SELECT key, id FROM latest_metrics WHERE run_id = %s AND key = ANY(%s)"
_SQLITE_SERIES_OF_KEYS = (
    "SELECT key, id FROM latest_metrics "
    "WHERE run_id = ? AND key IN (SELECT value FROM json_each(?))"
)


def upsert_latest_metrics(
    session: Session, run_id: str, latest: dict[str, Point]
) -> dict[str, int]:
    """Keep ``latest_metrics`` at each key's highest (step, timestamp) point, and
    return each key's series id (new keys get a new series).

    ``latest`` maps a key to this batch's best ``(step, timestamp, value)``. Keys are
    written in order, so concurrent writers of one run lock its rows in one order.
    """
    if not latest:
        return {}
    keys = sorted(latest)
    cursor, dialect = driver_cursor(session)
    try:
        if dialect == "postgresql":
            columns = ([latest[k][i] for k in keys] for i in range(3))
            cursor.execute(_PG_UPSERT_LATEST, (run_id, keys, *columns))
            series = dict(cursor.fetchall())
            if len(series) < len(keys):
                # A key whose stored point is newer is not updated, so not returned.
                cursor.execute(_PG_SERIES_OF_KEYS, (run_id, keys))
                series = dict(cursor.fetchall())
            return series
        cursor.execute(_SQLITE_SERIES_OF_KEYS, (run_id, orjson.dumps(keys).decode()))
        series = dict(cursor.fetchall())
        new = [key for key in keys if key not in series]
        if new:
            series.update(zip(new, _new_series_ids(cursor, len(new)), strict=True))
        rows = [(run_id, key, *latest[key], series[key]) for key in keys]
        cursor.executemany(_SQLITE_UPSERT_LATEST, rows)
        return series
    finally:
        cursor.close()


def insert_latest_metrics(
    session: Session, rows: list[tuple[str, str, int, int, float | None]]
) -> dict[tuple[str, str], int]:
    """Insert the latest points ``(run_id, key, step, timestamp, value)`` of new runs
    (no key of theirs is stored yet), each a new series; their series ids by
    ``(run_id, key)``."""
    if not rows:
        return {}
    cursor, dialect = driver_cursor(session)
    try:
        if dialect == "postgresql":
            cursor.execute(_PG_INSERT_LATEST, [list(column) for column in zip(*rows, strict=True)])
            return {(run_id, key): id_ for run_id, key, id_ in cursor.fetchall()}
        ids = _new_series_ids(cursor, len(rows))
        numbered = [(*row, id_) for row, id_ in zip(rows, ids, strict=True)]
        cursor.executemany(_SQLITE_INSERT_LATEST, numbered)
        return {(row[0], row[1]): row[5] for row in numbered}
    finally:
        cursor.close()


def _new_series_ids(cursor: Any, count: int) -> range:
    """SQLite: ``count`` ids for new series, after the highest stored (the caller holds
    the write lock, so no other writer numbers series meanwhile)."""
    highest = cursor.execute(_SQLITE_HIGHEST_SERIES).fetchone()[0]
    return range(highest + 1, highest + 1 + count)
