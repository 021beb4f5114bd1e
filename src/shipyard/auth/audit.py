"""The audit log: one event for every change, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from shipyard.auth.tables import AuditEventRow
from shipyard.clock import now_ms


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
    session.execute(
        insert(AuditEventRow),
        {
            "at": now_ms(),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "project_id": project_id,
            "source": source,
            "details": details or {},
        },
    )
