"""Which runs ``shipyard import mlflow`` copies, refreshes or deletes.

Each run of an imported experiment is compared with its copy by what one search
of MLflow shows (its status, params, tags set or deleted, each metric's latest
value): that costs nothing beyond the search, on every import. A finished run
can also change where a search does not look: a point logged late at an earlier
step, a file logged afterwards. The copy keeps a fingerprint of those
(``shipyard.import.mlflow_content``); a thorough import reads them back from
MLflow for every finished run that the search found unchanged (one request per
metric and per artifact folder, concurrently) and refreshes the runs that differ.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shipyard.client import Client
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_marks import (
    ARTIFACTS_COPIED,
    MLFLOW_PARENT,
    TAG_ARTIFACTS,
    TAG_CONTENT,
    TAG_DELETED,
    TAG_RUN,
    TAG_STATUS,
    TERMINAL,
    fingerprint,
    stale_tags,
    storable,
)
from shipyard.mlflow_compat.import_summary import ALREADY
from shipyard.mlflow_compat.mlflow_source import ArtifactsUnreachable
from shipyard.tracking.types import MAX_SEARCH_RESULTS, Run

# Concurrent reads of MLflow when comparing finished runs in depth (network-bound).
SOURCE_READERS = 8
QUICK_CHECKS = "status, params, tags and latest metric values"
DEEP_CHECKS = "metric histories and artifact files"


def imported_runs(client: Client) -> dict[str, Run]:
    """Runs of the project that an earlier import made, by source run id."""
    found: dict[str, Run] = {}
    token: str | None = None
    while True:
        page = client.runs.search(
            filter=f"tags.{TAG_RUN} IS NOT NULL",
            max_results=MAX_SEARCH_RESULTS,
            page_token=token,
            include_deleted=True,
        )
        for run in page.runs:
            found[run.tags[TAG_RUN]] = run
        token = page.next_page_token
        if token is None:
            return found


def changed_since_copied(src: Any, copy: Run) -> bool:
    """Whether an MLflow run differs from its finished copy in what a search shows: its
    status, a param or tag added, changed or deleted, or a metric's latest value (MLflow
    takes all of these on a finished run: an evaluation logged later, a tag set by
    review). A copy made before fingerprints were kept counts as changed (once)."""
    if copy.tags.get(TAG_STATUS) != src.info.status or TAG_CONTENT not in copy.tags:
        return True
    data = src.data
    if any(copy.params.get(k) != v for k, v in data.params.items()):
        return True
    if any(copy.tags.get(k) != v for k, v in data.tags.items() if k != MLFLOW_PARENT):
        return True
    if stale_tags(copy.tags, data.tags):
        return True
    return any(
        key not in copy.metrics or copy.metrics[key] != storable(value)
        for key, value in data.metrics.items()
    )


@dataclass
class RunPlan:
    """What one import does to runs."""

    # (source run, Shipyard experiment id) to copy or refresh, parents before children
    runs: list[tuple[Any, int]] = field(default_factory=list)
    # copies whose run was deleted in MLflow since they were made
    gone: list[Run] = field(default_factory=list)


class RunPlanner:
    """Compares the source's runs with their copies (``thorough``: in depth too)."""

    def __init__(self, ctx: ImportContext, *, thorough: bool = False) -> None:
        self.ctx = ctx
        self.summary = ctx.summary
        self.thorough = thorough

    def plan(self, experiments: list[tuple[Any, int]]) -> RunPlan:
        """The runs of ``experiments`` to copy, refresh or delete."""
        ctx = self.ctx
        for run_id, copy in ctx.imported.items():
            ctx.run_ids[run_id] = copy.id
        plan = RunPlan()
        finished: list[tuple[Any, int, Run]] = []  # copies unchanged to a search
        for src_experiment, experiment_id in experiments:
            for src in ctx.source_runs_of(src_experiment.experiment_id):
                run_id = src.info.run_id
                ctx.source_runs[run_id] = src
                copy = ctx.imported.get(run_id)
                if src.info.lifecycle_stage != "active":
                    self._plan_deleted(run_id, copy, plan)
                elif (
                    copy is not None and copy.lifecycle != "active" and TAG_DELETED not in copy.tags
                ):
                    why = "imported before, deleted in Shipyard since"
                    self.summary.skipped("runs", why)
                    ctx.run_ids.pop(run_id, None)
                    ctx.missing_runs[run_id] = why
                elif copy is None or copy.lifecycle != "active" or self._needs_refresh(copy):
                    plan.runs.append((src, experiment_id))
                else:
                    finished.append((src, experiment_id, copy))
        if self.thorough:
            plan.runs += self._changed_content(finished)
        else:
            self.summary.skipped("runs", ALREADY, len(finished))
            if finished:
                self.summary.notes.append(
                    f"{len(finished)} imported run(s) were compared with MLflow by {QUICK_CHECKS} "
                    f"only; --thorough also compares their {DEEP_CHECKS} (a point logged late "
                    "at an earlier step, a file added since)"
                )
        plan.runs.sort(key=self._parents_first())
        return plan

    def _plan_deleted(self, run_id: str, copy: Run | None, plan: RunPlan) -> None:
        """A run deleted in MLflow: its active copy is deleted too."""
        self.ctx.missing_runs[run_id] = "deleted in MLflow"
        self.ctx.run_ids.pop(run_id, None)
        if copy is not None and copy.lifecycle == "active":
            plan.gone.append(copy)
        else:
            self.summary.skipped("runs", "deleted in MLflow")

    def _needs_refresh(self, copy: Run) -> bool:
        status = copy.tags.get(TAG_STATUS)
        if status is None or status not in TERMINAL:
            return True  # interrupted, or still running in MLflow when it was copied
        src = self.ctx.source_runs.get(copy.tags[TAG_RUN])
        if src is not None and changed_since_copied(src, copy):
            return True
        artifacts = copy.tags.get(TAG_ARTIFACTS, ARTIFACTS_COPIED)
        if artifacts == ARTIFACTS_COPIED:
            return False
        if src is None:
            return False
        try:
            self.ctx.source.repository(src.info.artifact_uri)
        except ArtifactsUnreachable:
            return False
        except Exception:  # the refresh will report it
            return True
        return True

    def _changed_content(self, finished: list[tuple[Any, int, Run]]) -> list[tuple[Any, int]]:
        """The finished runs whose metric point counts or artifact files differ from
        what was copied (read from MLflow concurrently: one request per metric and
        per artifact folder of each run)."""
        with ThreadPoolExecutor(SOURCE_READERS) as pool:
            prints = list(
                pool.map(lambda item: self._source_fingerprint(item[0], item[2]), finished)
            )
        changed = []
        for (src, experiment_id, copy), found in zip(finished, prints, strict=True):
            if found is None or found != copy.tags.get(TAG_CONTENT):
                changed.append((src, experiment_id))
            else:
                self.summary.skipped("runs", ALREADY)
        if finished:
            self.summary.notes.append(
                f"{len(finished)} imported run(s) unchanged by {QUICK_CHECKS} were compared "
                f"by {DEEP_CHECKS} too (--thorough): {len(changed)} differed"
            )
        return changed

    def _source_fingerprint(self, src: Any, copy: Run) -> str | None:
        """The fingerprint of a run as MLflow holds it now; None when it cannot be read
        (the refresh then reports why). The metric histories of a run that differs from
        its copy are kept for the refresh, which would otherwise read them again."""
        source = self.ctx.source
        held = None
        try:
            counts, held = source.metric_counts(src.info.run_id, src.data.metrics)
            try:
                repo = source.repository(src.info.artifact_uri)
            except ArtifactsUnreachable:
                found = fingerprint(counts, None)
            else:
                found = fingerprint(counts, source.files(repo))
        except Exception:  # the refresh reads the same things and reports the failure
            if held is not None:
                source.release(held)
            return None
        if held is not None:
            if found != copy.tags.get(TAG_CONTENT):
                source.keep_histories(src.info.run_id, held)
            else:
                source.release(held)
        return found

    def _parents_first(self) -> Callable[[tuple[Any, int]], tuple[int, int]]:
        """A sort key putting parent runs before their children, then by start time."""
        source_runs = self.ctx.source_runs
        depth: dict[str, int] = {}

        def depth_of(run_id: str, seen: frozenset[str] = frozenset()) -> int:
            if run_id not in depth:
                src = source_runs.get(run_id)
                parent = src.data.tags.get(MLFLOW_PARENT) if src is not None else None
                if parent is None or parent in seen or parent not in source_runs:
                    depth[run_id] = 0
                else:
                    depth[run_id] = 1 + depth_of(parent, seen | {run_id})
            return depth[run_id]

        return lambda c: (depth_of(c[0].info.run_id), c[0].info.start_time or 0)
