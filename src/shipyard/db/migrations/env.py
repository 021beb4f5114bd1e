"""Alembic environment: runs on the connection Shipyard hands it."""

from __future__ import annotations

from alembic import context

from shipyard.db.base import all_tables

target_metadata = all_tables()
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through shipyard.db.upgrade(), not the alembic CLI")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
