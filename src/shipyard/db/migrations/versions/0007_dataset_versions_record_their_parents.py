"""Dataset versions record their parents by name

A version made from others (an append, a derived dataset, a quarantine) was linked to
them only by rows of dataset_parents, which go with a deleted parent: deleting a
dataset erased where the versions made from it came from. A version now also keeps
its parents as they were named when it was made ({dataset, version, digest,
relation}), and lineage names a parent that is gone as deleted. Existing edges are
recorded here, so that versions made before this revision keep theirs too.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dataset_versions", sa.Column("recorded_parents", sa.JSON(), nullable=True))
    edges = op.get_bind().execute(
        sa.text(
            "SELECT e.child_id, d.name, v.version, v.digest, e.relation "
            "FROM dataset_parents e "
            "JOIN dataset_versions v ON v.id = e.parent_id "
            "JOIN datasets d ON d.id = v.dataset_id "
            "ORDER BY e.child_id, d.name, v.version"
        )
    )
    recorded: dict[int, list[dict[str, Any]]] = {}
    for child, dataset, version, digest, relation in edges:
        recorded.setdefault(child, []).append(
            {"dataset": dataset, "version": version, "digest": digest, "relation": relation}
        )
    if recorded:
        op.get_bind().execute(
            sa.text("UPDATE dataset_versions SET recorded_parents = :parents WHERE id = :id"),
            [{"parents": json.dumps(p), "id": child} for child, p in recorded.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch_op:
        batch_op.drop_column("recorded_parents")
