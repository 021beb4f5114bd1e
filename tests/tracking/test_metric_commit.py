"""Metric-only batches on PostgreSQL commit without waiting for the WAL flush,
unless SHIPYARD_DURABLE_METRICS asks for durable commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from tests.conftest import build_platform

from shipyard.tracking.metrics import relax_commit


@pytest.mark.parametrize(("durable", "expected"), [(False, "off"), (True, "on")])
def test_metric_batches_commit_mode(
    request: pytest.FixtureRequest, tmp_path: Path, durable: bool, expected: str
) -> None:
    platform = build_platform(request, "postgres", tmp_path / "home")
    platform.settings.durable_metrics = durable
    with platform.db.write() as session:
        relax_commit(session, platform)
        assert session.scalar(text("SHOW synchronous_commit")) == expected
    # SET LOCAL: the next transaction on the pooled connection is durable again.
    with platform.db.write() as session:
        assert session.scalar(text("SHOW synchronous_commit")) == "on"
