"""Metric-only batches on PostgreSQL commit without waiting for the WAL flush,
unless SHIPYARD_DURABLE_METRICS asks for durable commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from tests.conftest import build_platform

from shipyard.tracking.metrics import relaxed_commit
from shipyard.tracking.runs import writable_run
from shipyard.tracking.tables import ExperimentRow, RunRow


@pytest.mark.parametrize(("durable", "expected"), [(False, "off"), (True, "on")])
def test_metric_batches_commit_mode(
    request: pytest.FixtureRequest, tmp_path: Path, durable: bool, expected: str
) -> None:
    platform = build_platform(request, "postgres", tmp_path / "home")
    platform.settings.durable_metrics = durable
    with platform.db.write() as session:
        experiment = ExperimentRow(project_id=1, name="e", created_at=0, updated_at=0)
        session.add(experiment)
        session.flush()
        session.add(
            RunRow(
                id="r1",
                experiment_id=experiment.id,
                name="r",
                status="running",
                user="u",
                start_time=5,
            )  # fmt: skip
        )
    assert relaxed_commit(platform) is not durable
    with platform.db.write() as session:
        # The run check of a metric batch sets the mode in the same statement.
        assert writable_run(session, "r1", relaxed_commit=relaxed_commit(platform)) == (5, None)
        assert session.scalar(text("SHOW synchronous_commit")) == expected
    # Local to the transaction: the next one on the pooled connection is durable again.
    with platform.db.write() as session:
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
        assert writable_run(session, "r1") == (5, None)
        assert session.scalar(text("SHOW synchronous_commit")) == "on"


def test_sqlite_commits_as_configured(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    platform = build_platform(request, "sqlite", tmp_path / "home")
    assert relaxed_commit(platform) is False
