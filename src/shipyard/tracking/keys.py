"""What an experiment's runs hold, in summary: the param, metric and tag keys logged in
it (what a runs table can show as columns) and how many runs each experiment has.

Both read the run tables through their indexes only: the runs of one experiment
come from ``ix_runs_experiment_lifecycle_start``, their keys from the
``(run_id, key)`` primary keys of the child tables, so neither touches a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shipyard.platform import Platform
from shipyard.tracking.tables import LatestMetricRow, ParamRow, RunRow, RunTagRow
from shipyard.tracking.types import ACTIVE

__all__ = ["MAX_KEYS", "ExperimentKeys", "RunCount", "experiment_keys", "run_counts"]

# A sweep can log thousands of distinct keys; a column chooser cannot show them all.
MAX_KEYS = 1000


@dataclass(frozen=True)
class ExperimentKeys:
    """The distinct keys of an experiment's runs, each list sorted.

    ``truncated`` is True when a kind had more than the limit asked for (the
    lists then hold the first keys in sort order).
    """

    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class RunCount:
    """How many runs an experiment has, and when the newest of them started (epoch ms)."""

    runs: int
    last_start: int | None


def _runs_of(experiment_id: int, include_deleted: bool) -> Select[tuple[str]]:
    runs = select(RunRow.id).where(RunRow.experiment_id == experiment_id)
    if not include_deleted:
        runs = runs.where(RunRow.lifecycle == ACTIVE)
    return runs


def _distinct_keys(
    session: Session,
    table: type[ParamRow] | type[LatestMetricRow] | type[RunTagRow],
    runs: Select[tuple[str]],
    limit: int,
) -> list[str]:
    stmt = (
        select(table.key)
        .where(table.run_id.in_(runs))
        .distinct()
        .order_by(table.key)
        .limit(limit + 1)  # one more tells whether there were more
    )
    return list(session.scalars(stmt))


def experiment_keys(
    platform: Platform,
    experiment_id: int,
    *,
    include_deleted: bool = False,
    limit: int = MAX_KEYS,
) -> ExperimentKeys:
    """The param, metric and tag keys logged by the runs of one experiment.

    Deleted runs count only with ``include_deleted``. An experiment with no
    runs (or no such experiment) has no keys; callers check the experiment
    itself. At most ``limit`` keys of each kind come back.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    runs = _runs_of(experiment_id, include_deleted)
    with platform.db.read() as session:
        found = [
            _distinct_keys(session, table, runs, limit)
            for table in (ParamRow, LatestMetricRow, RunTagRow)
        ]
    truncated = any(len(keys) > limit for keys in found)
    params, metrics, tags = (keys[:limit] for keys in found)
    return ExperimentKeys(params=params, metrics=metrics, tags=tags, truncated=truncated)


def run_counts(
    platform: Platform, experiment_ids: Sequence[int], *, include_deleted: bool = False
) -> dict[int, RunCount]:
    """The run count and newest start time of each experiment in ``experiment_ids``.

    One grouped query over the runs index. Experiments without runs are
    missing from the answer (their count is 0).
    """
    if not experiment_ids:
        return {}
    stmt = select(RunRow.experiment_id, func.count(), func.max(RunRow.start_time)).where(
        RunRow.experiment_id.in_(list(experiment_ids))
    )
    if not include_deleted:
        stmt = stmt.where(RunRow.lifecycle == ACTIVE)
    stmt = stmt.group_by(RunRow.experiment_id)
    with platform.db.read() as session:
        return {
            experiment_id: RunCount(runs=count, last_start=last)
            for experiment_id, count, last in session.execute(stmt)
        }
