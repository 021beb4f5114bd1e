"""Find the project of a run or an experiment, for the authorization check.

Answers are cached per platform by :class:`~shipyard.auth.resolvers.CachedResolver`
(a run or experiment never changes project and is never removed).
"""

from __future__ import annotations

from sqlalchemy import select

from shipyard.auth.resolvers import CachedResolver
from shipyard.errors import NotFound
from shipyard.int64 import numeric_id
from shipyard.platform import Platform
from shipyard.tracking.tables import ExperimentRow, RunRow


def _lookup_run(platform: Platform, run_id: str) -> int:
    with platform.db.read() as session:
        project_id = session.scalar(
            select(ExperimentRow.project_id)
            .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
            .where(RunRow.id == run_id)
        )
    if project_id is None:
        raise NotFound(f"run {run_id!r} not found")
    return project_id


def _lookup_experiment(platform: Platform, raw: str) -> int:
    experiment_id = numeric_id(raw, "experiment id")
    if experiment_id is None:
        raise NotFound(f"experiment {raw[:100]!r} not found")
    with platform.db.read() as session:
        project_id = session.scalar(
            select(ExperimentRow.project_id).where(ExperimentRow.id == experiment_id)
        )
    if project_id is None:
        raise NotFound(f"experiment {raw} not found")
    return project_id


run_project = CachedResolver("run", "run_id", _lookup_run)
"""The project of the ``{run_id}`` path parameter."""

experiment_project = CachedResolver("experiment", "experiment_id", _lookup_experiment)
"""The project of the ``{experiment_id}`` path parameter."""


def project_of_run(platform: Platform, run_id: str) -> int:
    """The project a run belongs to; NotFound when there is no such run."""
    return run_project.resolve(platform, run_id)


def project_of_experiment(platform: Platform, experiment_id: int) -> int:
    """The project an experiment belongs to; NotFound when there is no such experiment."""
    return experiment_project.resolve(platform, str(experiment_id))
