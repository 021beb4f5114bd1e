"""Deleting a metric series deletes its points

Points carry their series' id with no foreign key (checking one per point would cost
the hot path), so a ``latest_metrics`` row deleted by a hard delete of its run (the
``ON DELETE CASCADE`` from ``runs``) left its points behind. On SQLite that was worse
than leaked space: writers number new series from the highest id, so the next series
could take the deleted one's id and show its points as its own. A trigger now deletes
a series' points with it, on both databases. Nothing on the hot path fires it: the
batch's upsert updates rows, it never deletes them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TRIGGER = "tr_latest_metrics_delete_points"
_FUNCTION = "delete_series_points"


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(
            f"CREATE TRIGGER {_TRIGGER} AFTER DELETE ON latest_metrics "  # noqa: S608 (constants)
            "BEGIN DELETE FROM metrics WHERE series_id = OLD.id; END"
        )
        return
    op.execute(
        f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "  # noqa: S608
        "$$ BEGIN DELETE FROM metrics WHERE series_id = OLD.id; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {_TRIGGER} AFTER DELETE ON latest_metrics "
        f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()"
    )
    # The points were copied into a new table by 0010: give the planner its statistics
    # now rather than at autovacuum's next visit.
    op.execute("ANALYZE metrics")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER}")
        return
    op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER} ON latest_metrics")
    op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
