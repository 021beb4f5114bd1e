"""PostgreSQL keeps each run's params, tags and latest metrics as one summary row

A search returns each run of its page with its params, tags and latest metrics. Built
at search time on PostgreSQL, that took an index lookup into each of the three tables
per run: 1.7 ms for a page of 199 runs, more than finding the page (1.4 ms). The new
``run_summaries`` table holds them as the text of three JSON objects per run, rebuilt
whenever a write changes them (``tracking/summaries.py``); a page reads one row per
run (0.4 ms). Existing runs get theirs here; stop servers of older versions first,
since their writes would leave summaries behind (``shipyard db rebuild-summaries``
repairs that). SQLite builds them at search time, as before, and gets no table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("metrics", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_summaries_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_summaries"),
    )
    # As tracking/summaries.py builds them (a migration keeps its own copy).
    op.execute(
        "INSERT INTO run_summaries (run_id, params, tags, metrics) SELECT id, "
        "(SELECT json_object_agg(key, value) FROM params WHERE run_id = runs.id)::text, "
        "(SELECT json_object_agg(key, value) FROM run_tags WHERE run_id = runs.id)::text, "
        "(SELECT json_object_agg(key, value) FROM latest_metrics WHERE run_id = runs.id)::text "
        "FROM runs"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_table("run_summaries")
