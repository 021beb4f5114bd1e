"""Alembic environment: runs on the connection Shipyard hands it."""

from __future__ import annotations

import time
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationInfo

from shipyard.db.base import all_tables
from shipyard.db.migrate import step_title

target_metadata = all_tables()
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through shipyard.db.upgrade(), not the alembic CLI")
report = context.config.attributes.get("on_step")
_since = [time.monotonic()]


def _applied(*, step: MigrationInfo, **_: Any) -> None:
    """Tell ``report`` of the step just applied, with its title and how long it took."""
    now = time.monotonic()
    if report is not None:
        revision = step.up_revision
        report(revision.revision, step_title(revision.doc), now - _since[0])
    _since[0] = now


context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    on_version_apply=_applied,
)
with context.begin_transaction():
    context.run_migrations()
