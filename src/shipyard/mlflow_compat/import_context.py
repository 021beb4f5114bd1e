"""What the parts of one ``shipyard import mlflow`` share: both ends, the summary, and
what is known so far about the source's runs and their copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.client import Client
from shipyard.mlflow_compat.import_summary import ImportSummary
from shipyard.mlflow_compat.mlflow_source import MlflowSource
from shipyard.tracking.types import Run


@dataclass
class ImportContext:
    """The state of one import, read and filled by its planners and copiers."""

    source: MlflowSource
    client: Client
    summary: ImportSummary
    # source run id -> Shipyard run id (imported now or by an earlier import)
    run_ids: dict[str, str] = field(default_factory=dict)
    # source run id -> why it is not in Shipyard (for the versions made from it)
    missing_runs: dict[str, str] = field(default_factory=dict)
    # source run id -> its copy, made by an earlier import
    imported: dict[str, Run] = field(default_factory=dict)
    # source run id -> the MLflow run, for the runs of the imported experiments
    source_runs: dict[str, Any] = field(default_factory=dict)
    # source experiment id -> its runs (listed once, when first needed)
    runs_of: dict[str, list[Any]] = field(default_factory=dict)

    def source_runs_of(self, experiment_id: str) -> list[Any]:
        """Every run of an MLflow experiment, deleted ones included (listed once)."""
        if experiment_id not in self.runs_of:
            self.runs_of[experiment_id] = self.source.runs(experiment_id)
        return self.runs_of[experiment_id]
