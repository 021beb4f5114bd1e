"""SQLite: a write by any process drops the run's summary; summaries get a rowid table

Two fixes to 0012, both found by a review:

- An embedded home is migrated by whichever new-version process opens it first, while a
  notebook or training script that imported an older Shipyard may go on writing to it.
  That process knows nothing of summaries, so searches kept showing what the run held
  before, silently. Triggers on params, run_tags and latest_metrics now delete the
  run's summary whenever a row changes; a search builds a run with no summary from the
  tables, and the next write by a current process (or ``shipyard db rebuild-summaries``)
  makes it again. Current processes rebuild the summary at the end of the same
  transaction, so for them the trigger changes nothing but a lookup per row written.
- 0012 made ``run_summaries`` WITHOUT ROWID, which SQLite advises against for rows
  above ~200 bytes: a run with a few dozen params and tags has a summary of ~2 KB, and a
  page of 1,000 such rows took 15.2 ms to read against 3.0 ms from a rowid table. The
  table is rebuilt as an ordinary one (rows copied).

PostgreSQL, whose servers are upgraded together (the README says so, and ``shipyard db
rebuild-summaries`` repairs what an old one wrote), is unchanged.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TABLES = ("params", "run_tags", "latest_metrics")
_EVENTS = {"INSERT": "NEW", "UPDATE": "NEW", "DELETE": "OLD"}


def _trigger(table: str, event: str) -> str:
    return f"tr_{table}_{event.lower()}_drops_summary"


def _rebuild_summaries(*, with_rowid: bool) -> None:
    """Copy run_summaries into a table of the wanted layout and put it in its place."""
    op.create_table(
        "run_summaries_rebuilt",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_summaries_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_summaries"),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO run_summaries_rebuilt (run_id, params, tags, metrics) "
        "SELECT run_id, params, tags, metrics FROM run_summaries"
    )
    op.drop_table("run_summaries")
    op.rename_table("run_summaries_rebuilt", "run_summaries")


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    _rebuild_summaries(with_rowid=True)
    for table in _TABLES:
        for event, row in _EVENTS.items():
            # Names are this migration's constants.
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} "  # noqa: S608
                f"BEGIN DELETE FROM run_summaries WHERE run_id = {row}.run_id; END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER {_trigger(table, event)}")
    _rebuild_summaries(with_rowid=False)
