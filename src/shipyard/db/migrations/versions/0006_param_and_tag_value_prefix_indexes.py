"""PostgreSQL indexes params and run tags on (key, left(value, 100))

A search's equality on a param or a tag (``params.optimizer = 'adam'``) read every
row of the table on PostgreSQL: neither table had an index that starts with the key,
and a whole value (a param's up to 6,000 characters, a tag's unbounded) can be too
long for a b-tree entry there. The search now tests the value's first 100
characters as well, which these indexes answer; the scan it replaces grows with every
run of every experiment. Statistics on how key, value and the prefix depend on each
other keep the planner from multiplying the prefix's selectivity and the whole
value's, as if they were unrelated (401 rows estimated for 2,000 found, which made it
probe the metric index once per matching run instead of hash-joining its range). At
10,000 runs (50,000 params) the tracking benchmark's filtered page query took ~25 ms
before, 14.0 ms after (16.8 ms with the index dropped and the statistics kept; medians
of 200, interleaved). SQLite gets none of this: its search probes each run's
(run_id, key) key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As tracking.tables.VALUE_PREFIX; a migration keeps its own copy of what it built.
_INDEXES = {
    "ix_params_key_value_prefix": "params",
    "ix_run_tags_key_value_prefix": "run_tags",
}


def _statistics(index: str) -> str:
    return index.replace("ix_", "st_", 1)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, table in _INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (key, left(value, 100))")
        op.execute(
            f"CREATE STATISTICS IF NOT EXISTS {_statistics(name)} (dependencies) "
            f"ON key, value, (left(value, 100)) FROM {table}"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.execute(f"DROP STATISTICS IF EXISTS {_statistics(name)}")
        op.execute(f"DROP INDEX IF EXISTS {name}")
