"""SDK clients of experiments and runs (``client.experiments``, ``client.runs``)."""

from __future__ import annotations

import builtins
import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.cache import DataDict, holds_data
from shipyard.client.api import Api, segment
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.tracking.types import (
    MAX_RUNS_PER_REQUEST,
    Experiment,
    MetricHistory,
    Run,
    RunPage,
    storable_metric,
)

if TYPE_CHECKING:
    from shipyard.client.client import Client

DEFAULT_EXPERIMENT = "default"
END_STATUSES = frozenset({"finished", "failed", "killed"})


def _strs(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (values or {}).items()}


_RUN_FIELDS = frozenset(
    {"name", "params", "tags", "metrics", "status", "start_time", "end_time", "parent_run_id"}
)


def _run_record(run: Mapping[str, Any]) -> dict[str, Any]:
    """The wire shape of one run for bulk creation."""
    unknown = set(run) - _RUN_FIELDS
    if unknown:
        raise InvalidInput(f"unknown run fields {sorted(unknown)}; known: {sorted(_RUN_FIELDS)}")
    record = {k: v for k, v in run.items() if v is not None}
    for field in ("params", "tags"):
        if field in record:
            record[field] = _strs(record[field])
    if record.get("metrics"):
        record["metrics"] = _columns(record["metrics"])
    else:
        record.pop("metrics", None)  # none logged: nothing to send
    return record


class ExperimentsClient:
    """``client.experiments``: create, find, list, rename, tag, delete and restore."""

    def __init__(self, api: Api, client: Client) -> None:
        self._api = api
        self._client = client
        # (project, name) -> id: runs created by experiment name cost one request, not two.
        # Stored data: the command daemon empties it before each command (shipyard.cache).
        self._ids: dict[tuple[str, str], int] = holds_data(DataDict())
        self._lock = threading.Lock()

    def _project(self, project: str | None) -> str:
        return project or self._client.project

    def create(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Experiment:
        """Create an experiment; Conflict when the project already has one of that name."""
        body = {"name": name, "description": description, "tags": _strs(tags)}
        project = self._project(project)
        exp = Experiment(**self._api.post(f"/projects/{segment(project)}/experiments", body))
        self._remember(project, exp)
        return exp

    def get(self, experiment_id: int) -> Experiment:
        """One experiment by id."""
        return Experiment(**self._api.get(f"/experiments/{int(experiment_id)}"))

    def get_by_name(self, name: str, project: str | None = None) -> Experiment:
        """One experiment of the project by name; NotFound when there is none."""
        project = self._project(project)
        exp = Experiment(
            **self._api.get(f"/projects/{segment(project)}/experiments/by-name/{segment(name)}")
        )
        self._remember(project, exp)
        return exp

    def get_or_create(self, name: str, project: str | None = None) -> Experiment:
        """The experiment called ``name``, created when missing."""
        try:
            return self.get_by_name(name, project)
        except NotFound:
            try:
                return self.create(name, project=project)
            except Conflict:  # created by someone else in between
                return self.get_by_name(name, project)

    def list(self, project: str | None = None, include_deleted: bool = False) -> list[Experiment]:
        """The project's experiments by name (deleted ones only when asked)."""
        path = f"/projects/{segment(self._project(project))}/experiments"
        return [Experiment(**e) for e in self._api.get(path, include_deleted=include_deleted)]

    def update(
        self, experiment_id: int, name: str | None = None, description: str | None = None
    ) -> Experiment:
        """Rename an experiment or change its description."""
        body = {
            k: v for k, v in {"name": name, "description": description}.items() if v is not None
        }
        exp = Experiment(**self._api.patch(f"/experiments/{int(experiment_id)}", body))
        with self._lock:
            self._ids = {k: v for k, v in self._ids.items() if v != exp.id}
        return exp

    def delete(self, experiment_id: int) -> None:
        """Mark an experiment deleted: hidden from lists, its runs from search."""
        self._api.delete(f"/experiments/{int(experiment_id)}")

    def restore(self, experiment_id: int) -> None:
        """Bring a deleted experiment back."""
        self._api.post(f"/experiments/{int(experiment_id)}/restore")

    def set_tag(self, experiment_id: int, key: str, value: Any) -> None:
        """Set one tag of an experiment."""
        self._api.put(f"/experiments/{int(experiment_id)}/tags", {key: str(value)})

    def resolve_id(
        self, experiment: str | int | None, project: str | None = None, *, create: bool = False
    ) -> int:
        """The id of an experiment given by id or name (None: the "default" experiment).

        With ``create`` a missing experiment is created. Names are remembered,
        so repeated calls cost no request.
        """
        if isinstance(experiment, int) and not isinstance(experiment, bool):
            return experiment
        name = DEFAULT_EXPERIMENT if experiment is None else str(experiment)
        project = self._project(project)
        cached = self._ids.get((project, name))
        if cached is not None:
            return cached
        exp = self.get_or_create(name, project) if create else self.get_by_name(name, project)
        return exp.id

    def _remember(self, project: str, exp: Experiment) -> None:
        with self._lock:
            self._ids[(project, exp.name)] = exp.id


class RunsClient:
    """``client.runs``: start, log to, end, read, delete and search runs."""

    def __init__(self, api: Api, client: Client) -> None:
        self._api = api
        self._client = client

    def create(
        self,
        experiment: str | int | None = None,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        code_version: dict[str, Any] | None = None,
        environment: dict[str, Any] | None = None,
        start_time: int | None = None,
        project: str | None = None,
    ) -> Run:
        """Start a run, with its first params and tags, in one request.

        ``experiment`` is an id or a name (created when missing); None means the
        project's "default" experiment.
        """
        experiment_id = self._client.experiments.resolve_id(experiment, project, create=True)
        body: dict[str, Any] = {"tags": _strs(tags), "params": _strs(params)}
        for field, value in (
            ("name", name),
            ("parent_run_id", parent_run_id),
            ("start_time", start_time),
            ("code_version", code_version),
            ("environment", environment),
        ):
            if value is not None:
                body[field] = value
        return Run(**self._api.post(f"/experiments/{experiment_id}/runs", body))

    def create_many(
        self,
        experiment: str | int | None,
        runs: Sequence[Mapping[str, Any]],
        project: str | None = None,
    ) -> builtins.list[str]:
        """Create whole runs in one request per 1,000; their ids, in order.

        Each run is a mapping with any of: ``name``, ``params``, ``tags``,
        ``metrics`` (``(key, value, step, timestamp_ms)`` points), ``status``
        (default running), ``start_time``, ``end_time``, ``parent_run_id``. All
        runs of one request are stored or none is. For sweeps, backfills and
        imports: far fewer round trips than a create and a batch per run.
        """
        experiment_id = self._client.experiments.resolve_id(experiment, project, create=True)
        records = [_run_record(run) for run in runs]
        ids: builtins.list[str] = []
        for first in range(0, len(records), MAX_RUNS_PER_REQUEST):
            chunk = records[first : first + MAX_RUNS_PER_REQUEST]
            reply = self._api.post(f"/experiments/{experiment_id}/runs/bulk", {"runs": chunk})
            ids += reply["run_ids"]
        return ids

    def get(self, run_id: str) -> Run:
        """One run with its params, tags and the latest value of each metric."""
        return Run(**self._api.get(f"/runs/{segment(run_id)}"))

    def update(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Run:
        """Change a run's status, end time, name or description."""
        fields = {"status": status, "end_time": end_time, "name": name, "description": description}
        body = {k: v for k, v in fields.items() if v is not None}
        return Run(**self._api.patch(f"/runs/{segment(run_id)}", body))

    def end(self, run_id: str, status: str = "finished") -> Run:
        """End a run now with ``status`` (finished, failed or killed)."""
        return self.update(run_id, status=status, end_time=now_ms())

    def delete(self, run_id: str) -> None:
        """Mark a run deleted (hidden from search unless asked)."""
        self._api.delete(f"/runs/{segment(run_id)}")

    def restore(self, run_id: str) -> None:
        """Bring a deleted run back."""
        self._api.post(f"/runs/{segment(run_id)}/restore")

    def heartbeat(self, run_id: str) -> None:
        """Say that the process logging into the run is alive. ``ActiveRun`` sends one
        every ``run_heartbeat_interval`` seconds; a running run whose heartbeats stop
        for the server's ``run_heartbeat_timeout`` is marked failed."""
        self._api.post(f"/runs/{segment(run_id)}/heartbeat")

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run (NotFound when it has none such)."""
        self._api.delete(f"/runs/{segment(run_id)}/tags/{segment(key)}")

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[tuple[str, float, int, int]] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        end_status: str | None = None,
        end_time: int | None = None,
    ) -> None:
        """Log metric points ``(key, value, step, timestamp_ms)``, params and tags at once.

        All or nothing: a param already logged with another value raises
        Conflict and nothing of the batch is stored.

        With ``end_status`` (finished, failed or killed) the same request then
        ends the run, at ``end_time`` (epoch ms, default: the server's now): logging a run's
        last metrics and ending it costs one request instead of two.
        """
        body: dict[str, Any] = {}
        if params:
            body["params"] = _strs(params)
        if tags:
            body["tags"] = _strs(tags)
        if metrics:
            body["metrics"] = _columns(metrics)
        if end_status is not None:
            if end_status not in END_STATUSES:
                raise InvalidInput(
                    f"end_status must be one of {sorted(END_STATUSES)}, got {end_status!r}"
                )
            body["status"] = end_status
            if end_time is not None:
                body["end_time"] = end_time
        elif end_time is not None:
            raise InvalidInput("end_time needs an end_status")
        if body:
            self._api.post(f"/runs/{segment(run_id)}/batch", body)

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Log one metric point (prefer log_batch, or the fluent API, in loops)."""
        ts = now_ms() if timestamp is None else timestamp
        self.log_batch(run_id, metrics=[(key, value, step, ts)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log one param; Conflict if it is already logged with another value."""
        self.log_batch(run_id, params={key: value})

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set one tag of a run."""
        self.log_batch(run_id, tags={key: value})

    def metric_history(self, run_id: str, key: str) -> MetricHistory:
        """Every point of a metric, ordered by step then time; NaN comes back as None."""
        data = self._api.get(f"/runs/{segment(run_id)}/metrics/{segment(key)}/history")
        # The server built these columns itself; validating 100k numbers again is waste.
        return MetricHistory.model_construct(**data)

    def search(
        self,
        experiments: builtins.list[str | int] | None = None,
        filter: str | None = None,
        order_by: builtins.list[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
        project: str | None = None,
    ) -> RunPage:
        """A page of the project's runs matching ``filter``, ordered by ``order_by``.

        ``experiments`` are ids or names (default: every experiment of the
        project). Pass the page's ``next_page_token`` back for the next page.
        """
        project = project or self._client.project
        body: dict[str, Any] = {"max_results": max_results, "include_deleted": include_deleted}
        if experiments is not None:
            resolve = self._client.experiments.resolve_id
            body["experiment_ids"] = [resolve(e, project) for e in experiments]
        if filter:
            body["filter"] = filter
        if order_by:
            body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
        if page_token:
            body["page_token"] = page_token
        return self._api.request_as(
            RunPage, "POST", f"/projects/{segment(project)}/runs/search", json=body
        )


def _columns(metrics: Sequence[tuple[str, float, int, int]]) -> dict[str, list[Any]]:
    try:
        keys, values, steps, timestamps = zip(*metrics, strict=True)
        floats = [None if v is None else float(v) for v in values]
        if math.inf in floats or -math.inf in floats:  # JSON would send them as null
            floats = [storable_metric(v) for v in floats]
        return {
            "keys": [str(k) for k in keys],
            "values": floats,
            "steps": [int(s) for s in steps],
            "timestamps": [int(t) for t in timestamps],
        }
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"metrics must be (key, number, step, timestamp_ms) tuples: {exc}"
        ) from None
