"""Run summaries: a run's params, tags and latest metrics kept as three JSON objects in
one row of ``run_summaries``, what a search returns of each run.

Building them at search time took one index lookup into each of the three tables per
run of the page: on PostgreSQL ~1.7 ms for a page of 199 runs here, more than finding
the page; reading the kept ones is one lookup per run (~0.4 ms). On SQLite, 1.5 ms
against 0.8 (rows to dicts included), which is a tenth of a search over HTTP
(migration 0012 gave SQLite the table; 0009 gave it to PostgreSQL).

A write that changes a run's params, tags or latest metrics calls :func:`changed`
(``tracking`` only: runs, batches, bulk creation, liveness); the session's commit
then rebuilds the summaries of those runs from the tables, in two statements at the
very end of the transaction:

1. lock the summary rows, creating missing ones, in run id order. Only here does a
   transaction wait for a summary lock, after all its other writes: so two writers
   of one run cannot each hold what the other waits for (no deadlock), and the sorted
   order keeps writers of several runs apart too;
2. rebuild them. In READ COMMITTED this statement sees every transaction committed
   before it began, so a writer that waited in 1 for another's lock rebuilds from
   that one's rows as well: no change is lost to a summary built from an older
   snapshot.

SQLite holds its one writer's lock for the whole transaction, so it needs neither the
lock nor the ordering: its commit builds the summaries in Python from one query over
the three tables, since SQLite writes a REAL into JSON with 15 significant digits (and
its ``printf('%!.17g')`` is not exact either, before 3.43). An embedded home may also
be written by a process of an older version, which knows nothing of summaries:
triggers on the three tables delete a run's summary whenever a row of it changes
(migration 0013), so that run is built from the tables until a current process writes
it again.

A run with no summary row (a summary is made on its first change; runs from before
the migrations got theirs there) is built from the tables at search time, as are the
runs a write session has changed and not yet committed (:func:`pending`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from shipyard.db.driver import driver_cursor, execute_hot
from shipyard.tracking.tables import RunRow

if TYPE_CHECKING:
    from shipyard.db import Database

_STALE = "shipyard.stale_run_summaries"

# Runs gone meanwhile (a savepoint rolled back their creation) are left out.
_LOCK_SQL = (
    "INSERT INTO run_summaries (run_id) SELECT id FROM runs WHERE id = ANY(%s::text[]) "
    "ORDER BY id ON CONFLICT (run_id) DO UPDATE SET run_id = excluded.run_id"
)
PARTS = ("params", "tags", "metrics")
# What each part holds, from its table, for the run whose id is the SQL ``{run}``: the
# rebuild and a search of a run with no summary (:func:`kept`) use the same SQL, so the
# two cannot drift apart.
_BUILT = {
    part: f"(SELECT json_object_agg(key, value) FROM {table} WHERE run_id = {{run}})::text"  # noqa: S608
    for part, table in zip(PARTS, ("params", "run_tags", "latest_metrics"), strict=True)
}
# Built from the constants above.
_REBUILD_SQL = (
    "UPDATE run_summaries SET "  # noqa: S608
    + ", ".join(f"{part} = {_BUILT[part].format(run='run_summaries.run_id')}" for part in PARTS)
    + " WHERE run_id = ANY(%s::text[])"
)


def kept(part: str) -> str:
    """SQL of one of :data:`PARTS` of a run of ``page`` (see :data:`JOIN`): from its
    summary, or built from the table where it has none (the text of a JSON object;
    NULL where the run has none)."""
    return f"CASE WHEN s.run_id IS NULL THEN {_BUILT[part].format(run='page.id')} ELSE s.{part} END"


JOIN = " LEFT JOIN run_summaries s ON s.run_id = page.id"
"""For a query over the runs ``page(id)``: their summaries, as ``s``, for :func:`kept`."""
_NOT_PENDING = " AND s.run_id <> ALL(%s)"
# A page of runs, the ids passed as ONE parameter so that the text never changes and
# nothing renders a 1,000-item array (a comma-separated string: ids are hex): one row
# per run, its three parts from its summary, one index lookup per run; built here for
# a run that has none, one index lookup into each table. Joining the page's ids to the
# tables instead made PostgreSQL hash-join whole tables and sort them. Its JSON writes
# a double exactly (extra_float_digits, set on every connection in db/engine.py); NaN
# and the infinities come as strings.
_PG_PAGE_SQL = (
    "WITH page(id) AS (SELECT unnest(string_to_array(%s, ','))) "  # noqa: S608 (constants)
    "SELECT page.id, " + ", ".join(kept(part) for part in PARTS) + " FROM page" + JOIN
)

# SQLite: the kept summaries of a page (a JSON array of ids), and what builds a run's
# from the tables: params and tags as JSON objects made by the database (a row per key
# cost more in Python than the whole query), latest metrics as rows (see the module's
# docstring), and a row for each run that exists, so that one with none of the three
# still gets its summary. No ORDER BY: sorting would cost more than the rest.
_SQLITE_PAGE_SQL = (  # CROSS JOIN: the page first, whatever ANALYZE has said of the table
    "SELECT s.run_id, s.params, s.tags, s.metrics FROM json_each(?) page "
    "CROSS JOIN run_summaries s ON s.run_id = page.value"
)
_SQLITE_TABLES_SQL = (
    "WITH page(id) AS (SELECT value FROM json_each(?)) "
    "SELECT 0, run_id, json_group_object(key, value), NULL FROM params "
    "WHERE run_id IN (SELECT id FROM page) GROUP BY run_id "
    "UNION ALL "
    "SELECT 1, run_id, json_group_object(key, value), NULL FROM run_tags "
    "WHERE run_id IN (SELECT id FROM page) GROUP BY run_id "
    "UNION ALL "
    "SELECT 2, run_id, key, value FROM latest_metrics WHERE run_id IN (SELECT id FROM page) "
    "UNION ALL "
    "SELECT 3, id, NULL, NULL FROM runs WHERE id IN (SELECT id FROM page)"
)
_SQLITE_SAVE_SQL = (
    "INSERT INTO run_summaries (run_id, params, tags, metrics) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    "params = excluded.params, tags = excluded.tags, metrics = excluded.metrics"
)

Summary = tuple[str, str | None, str | None, str | None]
"""A run's id and the text of its params, tags and latest metrics as JSON objects
(None where it has none of that part)."""


def of_page(session: Session, run_ids: Sequence[str]) -> list[Summary]:
    """The summaries of the runs ``run_ids`` (those that exist), in no particular order:
    as kept, or built from the tables for a run with none, or one this write session
    changed and has yet to rebuild."""
    if not run_ids:
        return []
    cursor, dialect = driver_cursor(session)
    try:
        if dialect == "postgresql":
            execute_page(session, cursor, _PG_PAGE_SQL, run_ids)
            return cursor.fetchall()
        cursor.execute(_SQLITE_PAGE_SQL, (orjson.dumps(list(run_ids)).decode(),))
        found = cursor.fetchall()
        behind = set(pending(session))
        if behind:
            found = [row for row in found if row[0] not in behind]
        if len(found) < len(run_ids):
            have = {row[0] for row in found}
            found += _built_on_sqlite(cursor, [i for i in run_ids if i not in have])
        return found
    finally:
        cursor.close()


def _built_on_sqlite(cursor: Any, run_ids: Sequence[str]) -> list[Summary]:
    """The summaries of the runs ``run_ids`` that exist, built from the tables (SQLite)."""
    built: dict[str, list[Any]] = {}
    cursor.execute(_SQLITE_TABLES_SQL, (orjson.dumps(list(run_ids)).decode(),))
    for kind, run_id, key_or_object, value in cursor.fetchall():
        parts = built.get(run_id)
        if parts is None:
            parts = built[run_id] = [None, None, {}]
        if kind == 2:
            parts[2][key_or_object] = value
        elif kind < 2:
            parts[kind] = key_or_object
    return [
        (run_id, params, tags, orjson.dumps(metrics).decode() if metrics else None)
        for run_id, (params, tags, metrics) in built.items()
    ]


def execute_page(session: Session, cursor: Any, sql: str, run_ids: Sequence[str]) -> None:
    """Run ``sql``, a query over ``page(id)`` from the one comma-separated parameter
    ``run_ids`` that ends with :data:`JOIN`. In a write session that changed some of
    those runs, not their summaries: behind its own writes until it commits."""
    behind = pending(session)
    if behind:  # a write session's: rare, left to psycopg's own count
        cursor.execute(sql + _NOT_PENDING, (",".join(run_ids), behind))
    else:
        execute_hot(cursor, "postgresql", sql, (",".join(run_ids),))


def changed(session: Session, run_ids: Iterable[str]) -> None:
    """Note that this write session changes the params, tags or latest metrics of
    ``run_ids``: their summaries are rebuilt when it commits."""
    stale = session.info.get(_STALE)
    if stale is None:
        stale = session.info[_STALE] = set()
    stale.update(run_ids)


def rebuild_all(
    db: Database, batch: int = 1000, advance: Callable[[int], None] | None = None
) -> int:
    """Rebuild every run's summary from the tables, ``batch`` runs per transaction (in
    run id order, as writers lock them); how many. For a database that servers of an
    older version wrote to after migration 0009 (PostgreSQL) or 0012 (SQLite): their
    writes left summaries behind."""
    done, last = 0, ""
    while True:
        with db.read() as session:
            ids = list(
                session.scalars(
                    select(RunRow.id).where(RunRow.id > last).order_by(RunRow.id).limit(batch)
                )
            )
        if not ids:
            return done
        with db.write() as session:
            changed(session, ids)  # rebuilt as this transaction commits
        done, last = done + len(ids), ids[-1]
        if advance is not None:
            advance(len(ids))


def pending(session: Session) -> list[str]:
    """The runs whose summaries this session will rebuild when it commits: until then a
    read in the same session builds theirs from the tables."""
    return sorted(session.info.get(_STALE, ()))


@event.listens_for(Session, "before_commit")
def _rebuild_stale(session: Session) -> None:
    # Every commit of every session passes here: the common case returns first. Not
    # when a savepoint (begin_nested) ends: last, when the transaction commits.
    if not session.info.get(_STALE) or session.in_nested_transaction():
        return
    session.flush()  # rows added through the ORM are in the tables first
    ids: list[Any] = sorted(session.info.pop(_STALE))
    if session.get_bind().dialect.name != "postgresql":
        cursor, _ = driver_cursor(session)
        try:
            cursor.executemany(_SQLITE_SAVE_SQL, _built_on_sqlite(cursor, ids))
        finally:
            cursor.close()
        return
    # Both statements in one round trip (psycopg's pipeline): the server still runs
    # the second after the first, with a snapshot taken then.
    connection = session.connection().connection.driver_connection
    with connection.pipeline(), connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, (ids,))
        cursor.execute(_REBUILD_SQL, (ids,))
