"""Find the project of a run or an experiment, for the authorization check.

Resolvers run on every request, so the answers are cached in a bounded
in-process map per platform: a run or experiment never moves to another
project, and neither is ever removed from the database (deletion is a
lifecycle flag), so a cached answer cannot go stale.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable

from fastapi import Request
from sqlalchemy import select

from shipyard.errors import NotFound
from shipyard.platform import Platform
from shipyard.tracking.tables import ExperimentRow, RunRow

CACHE_SIZE = 100_000


class _BoundedCache:
    """A dict that forgets its oldest entries past ``size`` (FIFO is enough here)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> int | None:
        return self._data.get(key)

    def put(self, key: Hashable, value: int) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                del self._data[next(iter(self._data))]


# Keyed by id(platform): one cache per platform (tests build many over one database),
# dropped when the platform is garbage collected.
_CACHES: dict[int, _BoundedCache] = {}
_CACHES_LOCK = threading.Lock()


def _cache(platform: Platform) -> _BoundedCache:
    cache = _CACHES.get(id(platform))
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.get(id(platform))
            if cache is None:
                cache = _CACHES[id(platform)] = _BoundedCache(CACHE_SIZE)
                weakref.finalize(platform, _CACHES.pop, id(platform), None)
    return cache


def project_of_run(platform: Platform, run_id: str) -> int:
    """The project a run belongs to; NotFound when there is no such run."""
    cache = _cache(platform)
    key = ("run", run_id)
    project_id = cache.get(key)
    if project_id is None:
        with platform.db.read() as session:
            project_id = session.scalar(
                select(ExperimentRow.project_id)
                .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
                .where(RunRow.id == run_id)
            )
        if project_id is None:
            raise NotFound(f"run {run_id!r} not found")
        cache.put(key, project_id)
    return project_id


def project_of_experiment(platform: Platform, experiment_id: int) -> int:
    """The project an experiment belongs to; NotFound when there is no such experiment."""
    cache = _cache(platform)
    key = ("experiment", experiment_id)
    project_id = cache.get(key)
    if project_id is None:
        with platform.db.read() as session:
            project_id = session.scalar(
                select(ExperimentRow.project_id).where(ExperimentRow.id == experiment_id)
            )
        if project_id is None:
            raise NotFound(f"experiment {experiment_id} not found")
        cache.put(key, project_id)
    return project_id


def run_project(request: Request, platform: Platform) -> int:
    """The project of the ``{run_id}`` path parameter."""
    return project_of_run(platform, request.path_params["run_id"])


def experiment_project(request: Request, platform: Platform) -> int:
    """The project of the ``{experiment_id}`` path parameter."""
    raw = request.path_params["experiment_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"experiment {raw!r} not found")
    return project_of_experiment(platform, int(raw))
