"""Experiments for ``shipyard import mlflow``: which Shipyard experiment each MLflow
experiment's runs go into, created, renamed or given new tags as MLflow has them."""

from __future__ import annotations

import re
from typing import Any

from shipyard.errors import Conflict, ShipyardError
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_marks import MLFLOW_NOTE, TAG_EXPERIMENT, TAG_RUN, TAG_SOURCE
from shipyard.mlflow_compat.import_summary import ALREADY, reason
from shipyard.tracking.types import Experiment

# Shipyard's rule for experiment names (tracking.types.ExperimentName).
EXPERIMENT_NAME = re.compile(r"\S(.*\S)?")
MAX_EXPERIMENT_NAME = 500


class ExperimentImport:
    """Matches MLflow's experiments with the project's, creating and updating copies."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.summary = ctx.summary

    def plan(self, existing: list[Experiment]) -> list[tuple[Any, int]]:
        """(source experiment, Shipyard experiment id) of each experiment to import runs into."""
        by_name = {e.name: e for e in existing}
        by_source_id: dict[str, list[Experiment]] = {}
        for e in existing:
            if TAG_EXPERIMENT in e.tags:
                by_source_id.setdefault(e.tags[TAG_EXPERIMENT], []).append(e)
        plan = []
        for src in self.ctx.source.experiments():
            if src.lifecycle_stage != "active":
                self.summary.skipped("experiments", "deleted in MLflow")
                continue
            if len(src.name) > MAX_EXPERIMENT_NAME or not EXPERIMENT_NAME.fullmatch(src.name):
                self.summary.skipped("experiments", "name not allowed in Shipyard")
                continue
            target = self._renamed_copy(src, by_source_id) or by_name.get(src.name)
            try:
                if target is None:
                    target = self._create(src)
                    self.summary.copied("experiments")
                elif target.lifecycle != "active":
                    self.summary.skipped(
                        "experiments", "deleted in Shipyard (restore it to import into it)"
                    )
                    continue
                else:
                    self._refresh(src, target)
            except ShipyardError as exc:
                self.summary.failed("experiments", f"{src.name!r}: {reason(exc)}")
                continue
            plan.append((src, target.id))
        return plan

    def count_logged_models(self, plan: list[tuple[Any, int]]) -> None:
        """Count the MLflow 3 logged models of the planned experiments as skipped.

        Not imported yet (a registered one's files come with its version): counted,
        so that nothing is left out without a word.
        """
        found = self.ctx.source.logged_models([src.experiment_id for src, _ in plan])
        self.summary.skipped(
            "logged models",
            "not imported yet (a registered one's files are copied with its version)",
            found or 0,
        )

    def _refresh(self, src: Any, target: Experiment) -> None:
        renamed = target.name != src.name and self._rename(src, target)
        if self._sync_tags(src, target) or renamed:
            self.summary.updated("experiments")
        elif target.tags.get(TAG_EXPERIMENT) is not None:
            self.summary.skipped("experiments", ALREADY)
        else:
            self.summary.skipped("experiments", "exists in Shipyard: runs are imported into it")

    def _renamed_copy(
        self, src: Any, by_source_id: dict[str, list[Experiment]]
    ) -> Experiment | None:
        """The copy of ``src`` made under the name it had before a rename in MLflow.

        MLflow's experiment ids repeat across servers ("0" everywhere), so the id
        alone is not enough: the copy must come from the same source URI, or hold
        a copy of one of the experiment's runs.
        """
        for copy in by_source_id.get(src.experiment_id, []):
            if copy.name == src.name:
                return None  # not renamed: the name finds it
            if copy.tags.get(TAG_SOURCE) == self.ctx.source.shown:
                return copy
            if self._holds_runs_of(copy, src):
                return copy
        return None

    def _holds_runs_of(self, copy: Experiment, src: Any) -> bool:
        imported = self.ctx.imported.values()
        copied = {r.tags[TAG_RUN] for r in imported if r.experiment_id == copy.id}
        return any(r.info.run_id in copied for r in self.ctx.source_runs_of(src.experiment_id))

    def _rename(self, src: Any, target: Experiment) -> bool:
        """Give the copy MLflow's new name; when Shipyard has another experiment of that
        name, keep importing into the copy and say so. True when renamed."""
        try:
            self.client.experiments.update(target.id, name=src.name)
        except Conflict:
            self.summary.notes.append(
                f"MLflow experiment {src.experiment_id} was renamed {target.name!r} -> "
                f"{src.name!r}, a name another Shipyard experiment has: its runs still go "
                f"into {target.name!r}"
            )
            return False
        self.summary.notes.append(f"experiment {target.name!r} renamed {src.name!r}, as in MLflow")
        return True

    def _create(self, src: Any) -> Experiment:
        tags = {**src.tags, TAG_EXPERIMENT: src.experiment_id, TAG_SOURCE: self.ctx.source.shown}
        return self.client.experiments.create(
            src.name, description=src.tags.get(MLFLOW_NOTE, ""), tags=tags
        )

    def _sync_tags(self, src: Any, target: Experiment) -> bool:
        """Bring tags set in MLflow since the last import; True when any changed."""
        if target.tags.get(TAG_EXPERIMENT) != src.experiment_id:
            return False  # not ours: only runs go into it
        changed = {k: v for k, v in src.tags.items() if target.tags.get(k) != v}
        for key, value in changed.items():
            self.client.experiments.set_tag(target.id, key, value)
        if MLFLOW_NOTE in changed:
            self.client.experiments.update(target.id, description=changed[MLFLOW_NOTE])
        return bool(changed)
