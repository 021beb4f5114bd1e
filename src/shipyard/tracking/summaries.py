"""Run summaries (PostgreSQL): a run's params, tags and latest metrics kept as three
JSON objects in one row of ``run_summaries``, what a search returns of each run.

Building them at search time took one index lookup into each of the three tables per
run of the page, ~1.7 ms for a page of 199 runs here: more than finding the page.
Reading the kept ones is one lookup per run (~0.4 ms). SQLite builds them at search
time as before, which is fast enough there (``runs.add_children``).

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

A run with no summary row (a summary is made on its first change; runs from before
migration 0009 got theirs there) is built at search time, as SQLite does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

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
JOIN = " LEFT JOIN run_summaries s ON s.run_id = page.id"
"""For a query over the runs ``page(id)``: their summaries, as ``s``, for :func:`kept`."""
_NOT_PENDING = " AND s.run_id <> ALL(%s)"


def kept(part: str) -> str:
    """SQL of one of :data:`PARTS` of a run of ``page`` (see :data:`JOIN`): from its
    summary, or built from the table where it has none (the text of a JSON object;
    NULL where the run has none)."""
    return f"CASE WHEN s.run_id IS NULL THEN {_BUILT[part].format(run='page.id')} ELSE s.{part} END"


def execute_page(session: Session, cursor: Any, sql: str, run_ids: Sequence[str]) -> None:
    """Run ``sql``, a query over ``page(id)`` from the one comma-separated parameter
    ``run_ids`` that ends with :data:`JOIN`. In a write session that changed some of
    those runs, not their summaries: behind its own writes until it commits."""
    behind = pending(session)
    if behind:
        cursor.execute(sql + _NOT_PENDING, (",".join(run_ids), behind))
    else:
        cursor.execute(sql, (",".join(run_ids),))


def changed(session: Session, run_ids: Iterable[str]) -> None:
    """Note that this write session changes the params, tags or latest metrics of
    ``run_ids``: their summaries are rebuilt when it commits (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    stale = session.info.get(_STALE)
    if stale is None:
        stale = session.info[_STALE] = set()
    stale.update(run_ids)


def rebuild_all(
    db: Database, batch: int = 1000, advance: Callable[[int], None] | None = None
) -> int:
    """Rebuild every run's summary from the tables, ``batch`` runs per transaction (in
    run id order, as writers lock them); how many (0 on SQLite, which keeps none). For a
    database that servers of an older version wrote to after migration 0009: their
    writes left summaries behind."""
    if db.is_sqlite:
        return 0
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
    # Both statements in one round trip (psycopg's pipeline): the server still runs
    # the second after the first, with a snapshot taken then.
    connection = session.connection().connection.driver_connection
    with connection.pipeline(), connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, (ids,))
        cursor.execute(_REBUILD_SQL, (ids,))
