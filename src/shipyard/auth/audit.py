"""The audit log: one event for every change, written in the change's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shipyard.auth.tables import AuditEventRow
from shipyard.auth.types import AuditEvent
from shipyard.clock import now_ms
from shipyard.db.driver import driver_cursor, driver_sql

# Written on the driver's cursor: every change records one, and SQLAlchemy's insert
# (its parameters, a RETURNING of the new id nothing reads) took 0.54 ms of PostgreSQL
# against 0.36 ms this way.
_INSERT = (
    "INSERT INTO audit_events "
    "(at, actor, action, object_type, object_id, project_id, source, details) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    project_id: int | None,
    source: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to ``session``; it commits or rolls back with the change."""
    # The JSON text SQLAlchemy's JSON type would write (json.dumps).
    values = (
        now_ms(), actor, action, object_type, str(object_id), project_id, source,
        json.dumps(details or {}),
    )  # fmt: skip
    cursor, dialect = driver_cursor(session)
    try:
        cursor.execute(driver_sql(_INSERT, dialect), values)
    finally:
        cursor.close()


def record_many(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    project_id: int | None,
    source: str,
    objects: list[tuple[str | int, dict[str, Any]]],
) -> None:
    """One event per ``(object_id, details)`` of a bulk change, in one statement."""
    if not objects:
        return
    at = now_ms()
    session.execute(
        insert(AuditEventRow.__table__),
        [
            {
                "at": at,
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id),
                "project_id": project_id,
                "source": source,
                "details": details,
            }
            for object_id, details in objects
        ],
    )


MAX_EVENTS = 1000


def query(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    project_id: int | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events matching every filter given, newest first; ``since``/``until`` are ms, inclusive."""
    stmt = select(AuditEventRow)
    if actor is not None:
        stmt = stmt.where(AuditEventRow.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEventRow.action == action)
    if object_type is not None:
        stmt = stmt.where(AuditEventRow.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditEventRow.object_id == object_id)
    if project_id is not None:
        stmt = stmt.where(AuditEventRow.project_id == project_id)
    if since is not None:
        stmt = stmt.where(AuditEventRow.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEventRow.at <= until)
    stmt = stmt.order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc()).limit(
        max(1, min(limit, MAX_EVENTS))
    )
    return [
        AuditEvent(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            project_id=r.project_id,
            source=r.source,
            details=r.details or {},
        )
        for r in session.scalars(stmt)
    ]
