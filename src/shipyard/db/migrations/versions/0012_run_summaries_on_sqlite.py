"""SQLite keeps run summaries too

A search returns each run of its page with its params, tags and latest metrics. SQLite
built them at search time: one query over the three tables and a Python dict per row,
1.5 ms for a page of 199 runs here, about a tenth of a search over HTTP; reading them
from ``run_summaries`` (what PostgreSQL has done since 0009) takes 0.8 ms. The table is
made here, WITHOUT ROWID as SQLite's other tables keyed by run are (0004), and every
existing run gets its summary, 1,000 runs per statement; stop servers of older versions
first, since their writes would leave summaries behind (``shipyard db
rebuild-summaries`` repairs that). Metrics are written into JSON by Python, exactly:
SQLite's JSON keeps 15 significant digits of a REAL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BATCH = 1000
# As tracking/summaries.py builds them (a migration keeps its own copy).
_TABLES_SQL = (
    "WITH page(id) AS (SELECT value FROM json_each(?)) "
    "SELECT 0, run_id, json_group_object(key, value), NULL FROM params "
    "WHERE run_id IN (SELECT id FROM page) GROUP BY run_id "
    "UNION ALL "
    "SELECT 1, run_id, json_group_object(key, value), NULL FROM run_tags "
    "WHERE run_id IN (SELECT id FROM page) GROUP BY run_id "
    "UNION ALL "
    "SELECT 2, run_id, key, value FROM latest_metrics WHERE run_id IN (SELECT id FROM page)"
)


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
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
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    last = ""
    while True:
        ids = [
            row[0]
            for row in bind.exec_driver_sql(
                "SELECT id FROM runs WHERE id > ? ORDER BY id LIMIT ?", (last, _BATCH)
            )
        ]
        if not ids:
            return
        parts: dict[str, list] = {run_id: [None, None, {}] for run_id in ids}
        for kind, run_id, key_or_object, value in bind.exec_driver_sql(
            _TABLES_SQL, (orjson.dumps(ids).decode(),)
        ):
            if kind == 2:
                parts[run_id][2][key_or_object] = value
            else:
                parts[run_id][kind] = key_or_object
        bind.exec_driver_sql(
            "INSERT INTO run_summaries (run_id, params, tags, metrics) VALUES (?, ?, ?, ?)",
            [
                (run_id, params, tags, orjson.dumps(metrics).decode() if metrics else None)
                for run_id, (params, tags, metrics) in parts.items()
            ],
        )
        last = ids[-1]


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.drop_table("run_summaries")
