"""PostgreSQL's planner statistics are refreshed right after a bulk write, before
its own (late) change counters show it: the next search gets a plan for the rows
that are there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from tests.conftest import build_platform, embedded_client

from shipyard.tracking import planner

RUNS = planner.MIN_CHANGES + 100


def _analyze_count(platform: object, table: str) -> int:
    with platform.db.engine.connect() as conn:  # type: ignore[attr-defined]
        # The statistics views read a snapshot per transaction: ask for a fresh one.
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            conn.execute(
                text(
                    "SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables "
                    "WHERE relname = :t AND schemaname = current_schema()"
                ),
                {"t": table},
            ).scalar_one()
        )


def test_a_bulk_write_is_analyzed_on_the_next_search(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    platform = build_platform(request, "postgres", tmp_path / "home")
    with embedded_client(platform) as client:
        exp = client.experiments.create("sweep").id
        client.runs.search([exp])  # a check now: the next is throttled for seconds
        before = {t: _analyze_count(platform, t) for t in ("runs", "params")}
        records = [
            {"name": f"r{i}", "params": {"lr": str(i)}, "metrics": [("acc", i / RUNS, 0, 1)]}
            for i in range(RUNS)
        ]
        client.runs.create_many(exp, records)
        found = client.runs.search([exp], filter="params.lr = '7'")
        assert [r.name for r in found.runs] == ["r7"]
        after = {t: _analyze_count(platform, t) for t in ("runs", "params")}
    assert after["runs"] > before["runs"] and after["params"] > before["params"]


def test_small_writes_wait_for_the_throttle(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    platform = build_platform(request, "postgres", tmp_path / "home")
    with embedded_client(platform) as client:
        exp = client.experiments.create("sweep").id
        client.runs.search([exp])
        before = _analyze_count(platform, "runs")
        client.runs.create_many(exp, [{"name": f"r{i}"} for i in range(10)])
        client.runs.search([exp])
        assert _analyze_count(platform, "runs") == before
        # What was noted is kept for a later check, not dropped.
        key = planner._key(platform.db)
        assert planner._noted[key]["runs"] == 10


def test_sqlite_notes_nothing(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    platform = build_platform(request, "sqlite", tmp_path / "home")
    planner.note_writes(platform.db, {"runs": 10_000})
    assert planner._key(platform.db) not in planner._noted
