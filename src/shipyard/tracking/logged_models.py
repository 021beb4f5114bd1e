"""Logged models (MLflow 3's LoggedModel): named sets of files, usually from a run.

The files are blobs recorded in ``logged_model_files``; a registered model version
made from a logged model copies those rows (no blob is copied).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.errors import NotFound
from shipyard.tracking.tables import LoggedModelFileRow, LoggedModelRow

LOGGED_MODEL_PREFIX = "m-"


def logged_model_row(session: Session, model_id: str) -> LoggedModelRow:
    """The logged model ``model_id``; NotFound when there is none."""
    row = session.get(LoggedModelRow, model_id)
    if row is None:
        raise NotFound(f"logged model {model_id!r} not found")
    return row


def logged_model_files(session: Session, model_id: str) -> list[tuple[str, str, int]]:
    """``(path, blob_hash, size)`` of every file of a logged model, by path."""
    rows = session.execute(
        select(LoggedModelFileRow.path, LoggedModelFileRow.blob_hash, LoggedModelFileRow.size)
        .where(LoggedModelFileRow.model_id == model_id)
        .order_by(LoggedModelFileRow.path)
    ).all()
    return [(path, digest, size) for path, digest, size in rows]
