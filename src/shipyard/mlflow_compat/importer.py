"""``shipyard import mlflow``: copy an MLflow server's history into a Shipyard project.

The source is read with MLflow's own client (a running server, or its database
URI); everything is written through the Shipyard SDK, so the import goes
through the same routes, checks and audit as any other client, embedded or
against a server.

What was imported is marked with ``shipyard.import.*`` tags on the copies (the
source run id, experiment id, model name and version number), so a second
import copies only what is new. A run is marked finished-importing last
(``shipyard.import.mlflow_status``): a copy without that tag was interrupted,
and one whose source was still RUNNING (or SCHEDULED) is refreshed by the next
import (new params, tags, metric points and artifacts, then its final status)
rather than copied again.

A finished run changes in MLflow too (a late evaluation, a review tag, a file
logged afterwards, a tag deleted, the run deleted). Every import compares what
a search of MLflow's runs shows (status, params, tags, latest metric values)
and follows deleted runs, renamed experiments and the registry; what a search
does not show (how many points each metric has, the artifact files and their
sizes) is kept on the copy as a fingerprint (``shipyard.import.mlflow_content``)
and compared only by a thorough import (``thorough=True``, ``--thorough``),
which reads it back from MLflow for each finished run.

The work is split by kind: :mod:`.import_experiments`, :mod:`.import_plan`
(which runs to copy, refresh or delete), :mod:`.import_runs`,
:mod:`.import_artifacts`, :mod:`.import_registry`; :mod:`.import_marks` holds
the tags, :mod:`.import_summary` the result.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from shipyard.client import Client
from shipyard.errors import Unavailable
from shipyard.mlflow_compat.import_artifacts import ArtifactCopier
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_experiments import ExperimentImport
from shipyard.mlflow_compat.import_marks import (
    TAG_ARTIFACTS,
    TAG_CONTENT,
    TAG_DELETED,
    TAG_EXPERIMENT,
    TAG_MODEL,
    TAG_PARENT,
    TAG_RUN,
    TAG_SOURCE,
    TAG_STAGE,
    TAG_STATUS,
    TAG_TAG_KEYS,
    TAG_USER,
    TAG_VERSION,
)
from shipyard.mlflow_compat.import_plan import RunPlanner, imported_runs
from shipyard.mlflow_compat.import_registry import VERSION_FILES_PREFIX, RegistryImport
from shipyard.mlflow_compat.import_runs import RunCopier
from shipyard.mlflow_compat.import_summary import ALREADY, SAME_FILE, ImportSummary, Tally
from shipyard.mlflow_compat.mlflow_source import MlflowSource

__all__ = [
    "ALREADY",
    "SAME_FILE",
    "TAG_ARTIFACTS",
    "TAG_CONTENT",
    "TAG_DELETED",
    "TAG_EXPERIMENT",
    "TAG_MODEL",
    "TAG_PARENT",
    "TAG_RUN",
    "TAG_SOURCE",
    "TAG_STAGE",
    "TAG_STATUS",
    "TAG_TAG_KEYS",
    "TAG_USER",
    "TAG_VERSION",
    "VERSION_FILES_PREFIX",
    "ImportSummary",
    "MlflowImport",
    "Tally",
    "import_mlflow",
]


class MlflowImport:
    """One import: reads the source, compares with what the project holds, copies the rest."""

    def __init__(
        self,
        source: MlflowSource,
        client: Client,
        console: Console | None = None,
        show_progress: bool = True,
        *,
        thorough: bool = False,
    ) -> None:
        self.ctx = ImportContext(source, client, ImportSummary(source.shown, client.project))
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.experiments = ExperimentImport(self.ctx)
        self.planner = RunPlanner(self.ctx, thorough=thorough)
        artifacts = ArtifactCopier(self.ctx)
        self.runs = RunCopier(self.ctx, artifacts)
        self.registry = RegistryImport(self.ctx, artifacts)

    def run(self) -> ImportSummary:
        """Copy everything new; return what happened."""
        ctx = self.ctx
        experiments = ctx.client.experiments.list(include_deleted=True)  # target reachable?
        ctx.imported = imported_runs(ctx.client)
        plan = self.experiments.plan(experiments)
        runs = self.planner.plan(plan)
        self.experiments.count_logged_models(plan)
        models = ctx.source.models()
        versions = {m.name: ctx.source.versions(m.name) for m in models}
        total = len(runs.runs) + sum(len(v) for v in versions.values())
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.show_progress,
        )
        with progress:
            task = progress.add_task("runs", total=total)
            self.runs.delete_gone(runs.gone)
            for src, experiment_id in runs.runs:
                name = src.info.run_name or src.info.run_id
                progress.update(task, description=f"run {name[:40]}")
                self.runs.import_run(src, experiment_id, ctx.imported.get(src.info.run_id))
                progress.advance(task)
            for model in models:
                progress.update(task, description=f"model {model.name[:40]}")
                self.registry.import_model(
                    model, versions[model.name], lambda: progress.advance(task)
                )
        return ctx.summary


def import_mlflow(
    source_uri: str,
    client: Client,
    *,
    artifacts_destination: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    thorough: bool = False,
) -> ImportSummary:
    """Copy what is new in the MLflow at ``source_uri`` into ``client``'s project.

    Finished runs imported before are compared by status, params, tags and latest
    metric values; ``thorough`` also compares their metric histories and artifact
    files (one MLflow request per metric and per artifact folder of each run), to
    find a point logged late at an earlier step or a file added since.

    Raises Unavailable (or NotFound/InvalidInput for a bad URI) before anything
    is written when the source cannot be read.
    """
    source = MlflowSource(source_uri.strip(), artifacts_destination)
    from mlflow.exceptions import MlflowException

    try:
        return MlflowImport(source, client, console, show_progress, thorough=thorough).run()
    except MlflowException as exc:
        # Listing the source failed midway (one run or version failing is only counted).
        raise Unavailable(f"reading MLflow at {source.shown} failed: {exc.message}") from None
