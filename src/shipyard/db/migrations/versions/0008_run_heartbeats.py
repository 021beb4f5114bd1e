"""Runs record their last heartbeat

A process logging into a run through the SDK now sends a heartbeat every so often
(``runs.heartbeat_at``), so that a run whose process died without ending it (SIGKILL,
the out-of-memory killer, a machine that went down) can be told from one still
working: once its heartbeat is older than the server's timeout it is marked failed.
The check for lost runs reads running runs by heartbeat through the new index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("heartbeat_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_heartbeat", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
