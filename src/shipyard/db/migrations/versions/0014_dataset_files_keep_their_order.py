"""Dataset files keep the order their version listed them in

A version's files were read back in path order, not in the order the client sent
them. An appended file whose name was taken gets ``-<hash>`` before its extension,
and ``-`` sorts before ``.``, so appended rows were read before the parent's, and
several appends came out in hash order. Each file now has its ``position`` in the
version's manifest, and files are read in that order. Existing files are numbered
in path order, the order they were read in until now.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COLUMNS = "version_id, path, blob_hash, size, rows"
_NUMBERED = "row_number() OVER (PARTITION BY version_id ORDER BY path) - 1"


def _rebuild_sqlite(*, positioned: bool) -> None:
    """SQLite cannot make a column NOT NULL in place: copy dataset_files into its new
    shape (numbering each version's files in path order) and put it in its place."""
    rebuilt = "dataset_files_rebuilt"
    extra = [sa.Column("position", sa.Integer(), nullable=False)] if positioned else []
    op.create_table(
        rebuilt,
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        *extra,
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name="fk_dataset_files_version_id_dataset_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_dataset_files"),
    )
    names, values = _COLUMNS, _COLUMNS
    if positioned:
        names, values = f"{names}, position", f"{values}, {_NUMBERED}"
    # Names here are this migration's own constants.
    op.execute(f"INSERT INTO {rebuilt} ({names}) SELECT {values} FROM dataset_files")  # noqa: S608
    op.drop_index("ix_dataset_files_blob_hash", table_name="dataset_files")
    op.drop_table("dataset_files")
    op.rename_table(rebuilt, "dataset_files")
    op.create_index("ix_dataset_files_blob_hash", "dataset_files", ["blob_hash"])


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild_sqlite(positioned=True)
        return
    op.add_column("dataset_files", sa.Column("position", sa.Integer(), nullable=True))
    op.execute(
        f"UPDATE dataset_files SET position = numbered.position FROM "  # noqa: S608
        f"(SELECT version_id, path, {_NUMBERED} AS position FROM dataset_files) AS numbered "
        "WHERE dataset_files.version_id = numbered.version_id "
        "AND dataset_files.path = numbered.path"
    )
    op.alter_column("dataset_files", "position", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild_sqlite(positioned=False)
        return
    op.drop_column("dataset_files", "position")
