"""Bulk writes shared by the tracking services: one statement per kind of row.

``INSERT ... ON CONFLICT`` exists with the same meaning on SQLite and
PostgreSQL; SQLAlchemy spells it per dialect, so the dialect is picked here.
Rows are written in key order so that concurrent writers on PostgreSQL take
row locks in the same order and cannot deadlock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shipyard.errors import Conflict
from shipyard.tracking.tables import LatestMetricRow, MetricRow, ParamRow


def dialect_insert(session: Session, table: Table) -> Any:
    """An ``INSERT`` that knows ``on_conflict_do_*`` for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
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


# PostgreSQL takes the columns as four arrays in one statement: about twice as fast as
# an executemany of the rows (one planned INSERT instead of one per row).
_PG_INSERT_POINTS = text(
    "INSERT INTO metrics (run_id, key, step, timestamp, value) "
    "SELECT :run_id, k, s, t, v FROM unnest("
    "CAST(:keys AS text[]), CAST(:steps AS bigint[]), "
    "CAST(:timestamps AS bigint[]), CAST(:values AS float8[])) AS points(k, s, t, v)"
)


def insert_metric_points(
    session: Session,
    run_id: str,
    keys: list[str],
    values: list[float | None],
    steps: list[int],
    timestamps: list[int],
) -> None:
    """Append metric points to a run's history in one statement."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_INSERT_POINTS,
            {
                "run_id": run_id,
                "keys": keys,
                "steps": steps,
                "timestamps": timestamps,
                "values": values,
            },
        )
        return
    session.execute(
        insert(MetricRow.__table__),
        [
            {"run_id": run_id, "key": k, "step": s, "timestamp": t, "value": v}
            for k, v, s, t in zip(keys, values, steps, timestamps, strict=True)
        ],
    )


def upsert_latest_metrics(session: Session, run_id: str, latest: dict[str, tuple]) -> None:
    """Keep ``latest_metrics`` at each key's highest (step, timestamp) point.

    ``latest`` maps a key to this batch's best ``(step, timestamp, value)``; the
    WHERE of the upsert keeps a stored point that is newer than the batch's.
    """
    if not latest:
        return
    table: Table = LatestMetricRow.__table__  # type: ignore[assignment]
    stmt = dialect_insert(session, table)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.run_id, table.c.key],
        set_={"step": new.step, "timestamp": new.timestamp, "value": new.value},
        where=or_(
            new.step > table.c.step,
            and_(new.step == table.c.step, new.timestamp >= table.c.timestamp),
        ),
    )
    session.execute(
        stmt,
        [
            {"run_id": run_id, "key": k, "step": p[0], "timestamp": p[1], "value": p[2]}
            for k, p in sorted(latest.items())
        ],
    )
