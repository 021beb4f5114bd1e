"""Metric points lose their surrogate id

A point was keyed by a BIGSERIAL id that nothing looks points up by: history is
read through the (run_id, key, step) index and ordered by step, time and value.
On PostgreSQL the id cost every point a sequence value and an entry in a unique
index (a batch of 1,000 points: 7.2 ms with it, 6.3 ms without); on SQLite it was
the rowid, which the table keeps.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL drops the column in place (its primary key and sequence go with it);
    # SQLite copies the table without it.
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_column("id")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        # A rowid alias cannot be added in place: copy the points into the old shape.
        op.create_table(
            "metrics_with_id",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("run_id", sa.String(length=32), nullable=False),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("step", sa.BigInteger(), nullable=False),
            sa.Column("timestamp", sa.BigInteger(), nullable=False),
            sa.Column("value", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        )
        op.execute(
            "INSERT INTO metrics_with_id (run_id, key, step, timestamp, value) "
            "SELECT run_id, key, step, timestamp, value FROM metrics ORDER BY rowid"
        )
        op.drop_index("ix_metrics_run_key_step", table_name="metrics")
        op.drop_table("metrics")
        op.rename_table("metrics_with_id", "metrics")
        op.create_index("ix_metrics_run_key_step", "metrics", ["run_id", "key", "step"])
        return
    # As 0001 made it: a BIGSERIAL (the points are numbered in no particular order).
    op.execute("ALTER TABLE metrics ADD COLUMN id BIGSERIAL NOT NULL")
    op.create_primary_key("pk_metrics", "metrics", ["id"])
