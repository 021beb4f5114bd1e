"""Runs for ``shipyard import mlflow``: a planned run copied, or its copy refreshed
(params, tags set and deleted, the metric points it lacks, new or changed files,
then its status), and the copies of runs deleted in MLflow deleted."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from shipyard.errors import NotFound, ShipyardError
from shipyard.mlflow_compat.import_artifacts import ArtifactCopier
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_marks import (
    MLFLOW_NOTE,
    MLFLOW_PARENT,
    TAG_ARTIFACTS,
    TAG_CONTENT,
    TAG_DELETED,
    TAG_EXPERIMENT,
    TAG_PARENT,
    TAG_RUN,
    TAG_SOURCE,
    TAG_STATUS,
    TAG_USER,
    TERMINAL,
    fingerprint,
    stale_tags,
    storable,
    tag_keys,
)
from shipyard.mlflow_compat.import_summary import reason
from shipyard.tracking.types import Run

# Tags Shipyard keeps for every run (MLflow's delete-tag refuses them).
KEPT_RUN_TAGS = frozenset({"mlflow.runName", MLFLOW_PARENT, MLFLOW_NOTE})

Point = tuple[int, int, float | None]  # step, timestamp, value


class RunCopier:
    """Writes planned runs into the project: new copies, refreshes and deletions."""

    def __init__(self, ctx: ImportContext, artifacts: ArtifactCopier) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.summary = ctx.summary
        self.artifacts = artifacts
        self.batch_size = max(1, ctx.client.settings.metric_batch_size)

    def delete_gone(self, gone: list[Run]) -> None:
        """Delete the copies of runs deleted in MLflow."""
        for copy in gone:
            try:
                # Marked first: a restore in MLflow then restores the copy.
                self.client.runs.set_tag(copy.id, TAG_DELETED, "true")
                self.client.runs.delete(copy.id)
            except ShipyardError as exc:
                self.summary.failed("runs", f"{copy.tags[TAG_RUN]}: {reason(exc)}")
            else:
                self.summary.deleted("runs")

    def import_run(self, src: Any, experiment_id: int, copy: Run | None) -> None:
        """Copy one run, or refresh its copy; a failure is counted, not raised."""
        run_id = src.info.run_id
        try:
            target = self._copy_run(src, experiment_id, copy)
        except Exception as exc:  # one bad run must not stop the import
            self.ctx.source.discard_kept(run_id)
            if run_id not in self.ctx.run_ids:
                self.ctx.missing_runs[run_id] = f"its copy failed: {reason(exc)}"
            self.summary.failed("runs", f"{run_id}: {reason(exc)}")
            return
        if copy is None:
            self.summary.copied("runs")
        else:
            self.summary.updated("runs")
        self.ctx.run_ids[run_id] = target

    def _copy_run(self, src: Any, experiment_id: int, copy: Run | None) -> str:
        info, data = src.info, src.data
        tags = dict(data.tags)
        parent = tags.pop(MLFLOW_PARENT, None)
        new_parent = self.ctx.run_ids.get(parent) if parent else None
        if new_parent:
            tags[MLFLOW_PARENT] = new_parent
        if parent:
            tags[TAG_PARENT] = parent
        tags.update(
            {
                TAG_RUN: info.run_id,
                TAG_EXPERIMENT: str(info.experiment_id),
                TAG_USER: info.user_id or "",
                TAG_SOURCE: self.ctx.source.shown,
            }
        )
        if copy is not None and TAG_DELETED in copy.tags:
            self._restore(copy)
        if copy is None:
            run_id = self.client.runs.create(
                experiment_id,
                name=info.run_name or None,
                parent_run_id=new_parent,
                tags=tags,
                params=data.params,
                start_time=info.start_time,
            ).id
            # Known at once: a failure below leaves an unfinished copy that the next
            # import refreshes, never a second copy.
            self.ctx.run_ids[info.run_id] = run_id
        else:
            run_id = copy.id
            self.client.runs.log_batch(run_id, params=data.params, tags=tags)
            self._delete_tags(run_id, stale_tags(copy.tags, data.tags))
        counts = self._copy_metrics(src, run_id, refresh=copy is not None)
        artifacts, files = self.artifacts.copy_run_artifacts(
            info.artifact_uri, run_id, fresh=copy is None
        )
        if data.tags.get(MLFLOW_NOTE):
            self.client.runs.update(run_id, description=data.tags[MLFLOW_NOTE])
        final = {
            TAG_STATUS: info.status,
            TAG_ARTIFACTS: artifacts,
            TAG_CONTENT: fingerprint(counts, files),
            **tag_keys(k for k in data.tags if k != MLFLOW_PARENT),
        }
        status = TERMINAL.get(info.status)
        if status is None:
            self.client.runs.log_batch(run_id, tags=final)
        else:
            end = info.end_time
            if end is not None and info.start_time is not None:
                end = max(end, info.start_time)
            self.client.runs.log_batch(run_id, tags=final, end_status=status, end_time=end)
        return run_id

    def _restore(self, copy: Run) -> None:
        """Bring back a copy this import deleted when its run was deleted in MLflow."""
        if copy.lifecycle != "active":
            self.client.runs.restore(copy.id)
        self._delete_tags(copy.id, [TAG_DELETED])

    def _delete_tags(self, run_id: str, keys: Iterable[str]) -> None:
        for key in keys:
            if key in KEPT_RUN_TAGS:
                continue
            with contextlib.suppress(NotFound):  # deleted in Shipyard already
                self.client.runs.delete_tag(run_id, key)

    def _copy_metrics(self, src: Any, run_id: str, *, refresh: bool) -> dict[str, int]:
        """Copy the points the copy lacks; how many points each metric has in MLflow."""
        batch: list[tuple[str, float | None, int, int]] = []
        counts: dict[str, int] = {}
        for key in sorted(src.data.metrics):
            points = [
                (int(m.step), int(m.timestamp), storable(m.value))
                for m in self.ctx.source.metric_history(src.info.run_id, key)
            ]
            counts[key] = len(points)
            if refresh:
                points = self._new_points(run_id, key, points)
            for step, timestamp, value in points:
                batch.append((key, value, step, timestamp))
                if len(batch) >= self.batch_size:
                    self._send_metrics(run_id, batch)
        if batch:
            self._send_metrics(run_id, batch)
        return counts

    def _new_points(self, run_id: str, key: str, points: list[Point]) -> list[Point]:
        """The source points the copy does not hold yet (a refreshed run keeps its old ones)."""
        have = self.client.runs.metric_history(run_id, key)
        held = Counter(zip(have.steps, have.timestamps, have.values, strict=True))
        new = []
        for point in points:
            if held[point] > 0:
                held[point] -= 1
            else:
                new.append(point)
        return new

    def _send_metrics(self, run_id: str, batch: list[tuple[str, float | None, int, int]]) -> None:
        self.client.runs.log_batch(run_id, metrics=batch)  # type: ignore[arg-type]
        self.summary.copied("metric points", len(batch))
        batch.clear()
