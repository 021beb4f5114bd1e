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
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from shipyard.errors import InvalidInput, NotFound, ShipyardError, Unavailable
from shipyard.mlflow_compat.mlflow_source import (
    ArtifactsUnreachable,
    MlflowSource,
)
from shipyard.registry.types import ModelVersion, RegisteredModel, check_alias, check_model_name
from shipyard.tracking.types import MAX_SEARCH_RESULTS, Experiment, Run, storable_metric

# Marks on the imported copies (what makes a re-import incremental).
TAG_SOURCE = "shipyard.import.source"
TAG_EXPERIMENT = "shipyard.import.mlflow_experiment_id"
TAG_RUN = "shipyard.import.mlflow_run_id"
TAG_PARENT = "shipyard.import.mlflow_parent_run_id"
TAG_USER = "shipyard.import.mlflow_user"
TAG_STATUS = "shipyard.import.mlflow_status"
TAG_ARTIFACTS = "shipyard.import.artifacts"
TAG_MODEL = "shipyard.import.mlflow_model"
TAG_VERSION = "shipyard.import.mlflow_version"
TAG_STAGE = "shipyard.import.mlflow_stage"

MLFLOW_PARENT = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"
ARTIFACTS_COPIED = "copied"
# Where a version's files go in its run's artifacts when they are not already there
# (MLflow 3 keeps a logged model's files outside the run's artifacts).
VERSION_FILES_PREFIX = "mlflow-registry"
TERMINAL = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
# Most deleted versions created to keep a version number equal to MLflow's.
MAX_NUMBER_FILL = 100
# Shipyard's rule for experiment names (tracking.types.ExperimentName).
EXPERIMENT_NAME = re.compile(r"\S(.*\S)?")
MAX_EXPERIMENT_NAME = 500

KINDS = (
    "experiments",
    "runs",
    "metric points",
    "artifact files",
    "models",
    "versions",
    "aliases",
)
ALREADY = "already imported"


# --- the summary --------------------------------------------------------------------


@dataclass
class Tally:
    """What happened to the objects of one kind."""

    copied: int = 0
    updated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportSummary:
    """Per kind: copied, updated (refreshed copies), skipped and failed, with reasons."""

    source: str
    project: str
    kinds: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    notes: list[str] = field(default_factory=list)

    def copied(self, kind: str, n: int = 1) -> None:
        """Count ``n`` objects of ``kind`` copied."""
        self.kinds[kind].copied += n

    def updated(self, kind: str) -> None:
        """Count one earlier copy brought up to date."""
        self.kinds[kind].updated += 1

    def skipped(self, kind: str, reason: str, n: int = 1) -> None:
        """Count ``n`` objects left out on purpose, with why."""
        if n:
            self.kinds[kind].skipped[reason] += n

    def failed(self, kind: str, reason: str) -> None:
        """Count one object that could not be copied (a re-import retries it)."""
        self.kinds[kind].failed[reason] += 1

    @property
    def failures(self) -> int:
        """How many objects failed, all kinds together."""
        return sum(t.failed.total() for t in self.kinds.values())

    @property
    def changes(self) -> int:
        """How many objects were copied or updated, all kinds together."""
        return sum(t.copied + t.updated for t in self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``--json``)."""
        return {
            "source": self.source,
            "project": self.project,
            "kinds": {
                kind: {
                    "copied": t.copied,
                    "updated": t.updated,
                    "skipped": dict(t.skipped),
                    "failed": dict(t.failed),
                }
                for kind, t in self.kinds.items()
            },
            "notes": list(self.notes),
        }


# --- the import ---------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    # Compared and sent as Shipyard stores them.
    return storable_metric(None if value is None else float(value))


def _changed_since_copied(src: Any, copy: Run) -> bool:
    """Whether an MLflow run differs from its finished copy in what a search shows: its
    status, a param or tag added or changed, or a metric's latest value (MLflow takes
    all of these on a finished run: an evaluation logged later, a tag set by review)."""
    if copy.tags.get(TAG_STATUS) != src.info.status:
        return True
    data = src.data
    if any(copy.params.get(k) != v for k, v in data.params.items()):
        return True
    if any(copy.tags.get(k) != v for k, v in data.tags.items() if k != MLFLOW_PARENT):
        return True
    return any(
        key not in copy.metrics or copy.metrics[key] != _number(value)
        for key, value in data.metrics.items()
    )


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, ShipyardError) else str(exc)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


class MlflowImport:
    """One import: reads the source, compares with what the project holds, copies the rest."""

    def __init__(
        self,
        source: MlflowSource,
        client: Client,
        console: Console | None = None,
        show_progress: bool = True,
    ) -> None:
        self.source = source
        self.client = client
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress
        self.summary = ImportSummary(source.shown, client.project)
        # source run id -> Shipyard run id (imported now or by an earlier import)
        self.run_ids: dict[str, str] = {}
        # source run id -> why it is not in Shipyard (for the versions made from it)
        self.missing_runs: dict[str, str] = {}
        self.source_runs: dict[str, Any] = {}
        self.batch_size = max(1, client.settings.metric_batch_size)

    # --- orchestration ----------------------------------------------------------------

    def run(self) -> ImportSummary:
        """Copy everything new; return what happened."""
        experiments = self.client.experiments.list(include_deleted=True)  # target reachable?
        imported = self._imported_runs()
        plan = self._plan_experiments(experiments)
        runs = self._plan_runs(plan, imported)
        models = self.source.models()
        versions = {m.name: self.source.versions(m.name) for m in models}
        total = len(runs) + sum(len(v) for v in versions.values())
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
            for src, experiment_id in runs:
                name = src.info.run_name or src.info.run_id
                progress.update(task, description=f"run {name[:40]}")
                self._import_run(src, experiment_id, imported.get(src.info.run_id))
                progress.advance(task)
            for model in models:
                progress.update(task, description=f"model {model.name[:40]}")
                self._import_model(model, versions[model.name], lambda: progress.advance(task))
        return self.summary

    # --- experiments ------------------------------------------------------------------

    def _plan_experiments(self, existing: list[Experiment]) -> list[tuple[Any, int]]:
        """(source experiment, Shipyard experiment id) of each experiment to import runs into."""
        by_name = {e.name: e for e in existing}
        plan = []
        for src in self.source.experiments():
            if src.lifecycle_stage != "active":
                self.summary.skipped("experiments", "deleted in MLflow")
                continue
            if len(src.name) > MAX_EXPERIMENT_NAME or not EXPERIMENT_NAME.fullmatch(src.name):
                self.summary.skipped("experiments", "name not allowed in Shipyard")
                continue
            target = by_name.get(src.name)
            try:
                if target is None:
                    target = self._create_experiment(src)
                    self.summary.copied("experiments")
                elif target.lifecycle != "active":
                    self.summary.skipped(
                        "experiments", "deleted in Shipyard (restore it to import into it)"
                    )
                    continue
                elif self._sync_experiment_tags(src, target):
                    self.summary.updated("experiments")
                elif target.tags.get(TAG_EXPERIMENT) is not None:
                    self.summary.skipped("experiments", ALREADY)
                else:
                    self.summary.skipped(
                        "experiments", "exists in Shipyard: runs are imported into it"
                    )
            except ShipyardError as exc:
                self.summary.failed("experiments", f"{src.name!r}: {_reason(exc)}")
                continue
            plan.append((src, target.id))
        return plan

    def _create_experiment(self, src: Any) -> Experiment:
        tags = {**src.tags, TAG_EXPERIMENT: src.experiment_id, TAG_SOURCE: self.source.shown}
        return self.client.experiments.create(
            src.name, description=src.tags.get(MLFLOW_NOTE, ""), tags=tags
        )

    def _sync_experiment_tags(self, src: Any, target: Experiment) -> bool:
        """Bring tags set in MLflow since the last import; True when any changed."""
        if target.tags.get(TAG_EXPERIMENT) != src.experiment_id:
            return False  # not ours: only runs go into it
        changed = {k: v for k, v in src.tags.items() if target.tags.get(k) != v}
        for key, value in changed.items():
            self.client.experiments.set_tag(target.id, key, value)
        if MLFLOW_NOTE in changed:
            self.client.experiments.update(target.id, description=changed[MLFLOW_NOTE])
        return bool(changed)

    # --- runs -------------------------------------------------------------------------

    def _imported_runs(self) -> dict[str, Run]:
        """Runs of the project that an earlier import made, by source run id."""
        found: dict[str, Run] = {}
        token: str | None = None
        while True:
            page = self.client.runs.search(
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

    def _plan_runs(
        self, experiments: list[tuple[Any, int]], imported: dict[str, Run]
    ) -> list[tuple[Any, int]]:
        """The runs to copy or refresh, parents before their children."""
        for run_id, copy in imported.items():
            self.run_ids[run_id] = copy.id
        candidates: list[tuple[Any, int]] = []
        for src_experiment, experiment_id in experiments:
            for src in self.source.runs(src_experiment.experiment_id):
                run_id = src.info.run_id
                self.source_runs[run_id] = src
                if src.info.lifecycle_stage != "active":
                    self.summary.skipped("runs", "deleted in MLflow")
                    if run_id not in imported:
                        self.missing_runs[run_id] = "deleted in MLflow"
                    continue
                copy = imported.get(run_id)
                if copy is not None and copy.lifecycle != "active":
                    why = "imported before, deleted in Shipyard since"
                    self.summary.skipped("runs", why)
                    self.run_ids.pop(run_id, None)
                    self.missing_runs[run_id] = why
                    continue
                if copy is not None and not self._needs_refresh(copy):
                    self.summary.skipped("runs", ALREADY)
                    continue
                candidates.append((src, experiment_id))
        depth: dict[str, int] = {}

        def depth_of(run_id: str, seen: frozenset[str] = frozenset()) -> int:
            if run_id not in depth:
                src = self.source_runs.get(run_id)
                parent = src.data.tags.get(MLFLOW_PARENT) if src is not None else None
                if parent is None or parent in seen or parent not in self.source_runs:
                    depth[run_id] = 0
                else:
                    depth[run_id] = 1 + depth_of(parent, seen | {run_id})
            return depth[run_id]

        return sorted(
            candidates, key=lambda c: (depth_of(c[0].info.run_id), c[0].info.start_time or 0)
        )

    def _needs_refresh(self, copy: Run) -> bool:
        status = copy.tags.get(TAG_STATUS)
        if status is None or status not in TERMINAL:
            return True  # interrupted, or still running in MLflow when it was copied
        src = self.source_runs.get(copy.tags[TAG_RUN])
        if src is not None and _changed_since_copied(src, copy):
            return True
        artifacts = copy.tags.get(TAG_ARTIFACTS, ARTIFACTS_COPIED)
        if artifacts == ARTIFACTS_COPIED:
            return False
        if src is None:
            return False
        try:
            self.source.repository(src.info.artifact_uri)
        except ArtifactsUnreachable:
            return False
        except Exception:  # the refresh will report it
            return True
        return True

    def _import_run(self, src: Any, experiment_id: int, copy: Run | None) -> None:
        run_id = src.info.run_id
        try:
            target = self._copy_run(src, experiment_id, copy)
        except Exception as exc:  # one bad run must not stop the import
            if run_id not in self.run_ids:
                self.missing_runs[run_id] = f"its copy failed: {_reason(exc)}"
            self.summary.failed("runs", f"{run_id}: {_reason(exc)}")
            return
        if copy is None:
            self.summary.copied("runs")
        else:
            self.summary.updated("runs")
        self.run_ids[run_id] = target

    def _copy_run(self, src: Any, experiment_id: int, copy: Run | None) -> str:
        info, data = src.info, src.data
        tags = dict(data.tags)
        parent = tags.pop(MLFLOW_PARENT, None)
        new_parent = self.run_ids.get(parent) if parent else None
        if new_parent:
            tags[MLFLOW_PARENT] = new_parent
        if parent:
            tags[TAG_PARENT] = parent
        tags.update(
            {
                TAG_RUN: info.run_id,
                TAG_EXPERIMENT: str(info.experiment_id),
                TAG_USER: info.user_id or "",
                TAG_SOURCE: self.source.shown,
            }
        )
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
            self.run_ids[info.run_id] = run_id
        else:
            run_id = copy.id
            self.client.runs.log_batch(run_id, params=data.params, tags=tags)
        self._copy_metrics(src, run_id, refresh=copy is not None)
        artifacts = self._copy_artifacts(info.artifact_uri, run_id)
        if data.tags.get(MLFLOW_NOTE):
            self.client.runs.update(run_id, description=data.tags[MLFLOW_NOTE])
        final = {TAG_STATUS: info.status, TAG_ARTIFACTS: artifacts}
        status = TERMINAL.get(info.status)
        if status is None:
            self.client.runs.log_batch(run_id, tags=final)
        else:
            end = info.end_time
            if end is not None and info.start_time is not None:
                end = max(end, info.start_time)
            self.client.runs.log_batch(run_id, tags=final, end_status=status, end_time=end)
        return run_id

    def _copy_metrics(self, src: Any, run_id: str, *, refresh: bool) -> None:
        batch: list[tuple[str, float | None, int, int]] = []
        for key in sorted(src.data.metrics):
            points = [
                (int(m.step), int(m.timestamp), _number(m.value))
                for m in self.source.metric_history(src.info.run_id, key)
            ]
            if refresh:
                points = self._new_points(run_id, key, points)
            for step, timestamp, value in points:
                batch.append((key, value, step, timestamp))
                if len(batch) >= self.batch_size:
                    self._send_metrics(run_id, batch)
        if batch:
            self._send_metrics(run_id, batch)

    def _new_points(
        self, run_id: str, key: str, points: list[tuple[int, int, float | None]]
    ) -> list[tuple[int, int, float | None]]:
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

    # --- artifacts --------------------------------------------------------------------

    def _copy_artifacts(self, artifact_uri: str, run_id: str) -> str:
        """Copy a run's artifacts; return its artifacts tag: 'copied' or why not."""
        try:
            repo = self.source.repository(artifact_uri)
        except ArtifactsUnreachable as exc:
            self.summary.skipped("artifact files", f"runs whose artifacts are {exc.reason}")
            return f"not copied: {exc.reason}"
        self._copy_tree(repo, run_id, None)
        return ARTIFACTS_COPIED

    def _copy_tree(self, repo: Any, run_id: str, prefix: str | None) -> int:
        """Download each top-level entry of ``repo`` into a temporary folder, upload it
        under ``prefix`` of the run, delete it: the disk holds one entry at a time."""
        uploaded = 0
        with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-import-") as tmp:
            for number, entry in enumerate(repo.list_artifacts(None)):
                folder = Path(tmp, str(number))
                folder.mkdir()
                local = Path(repo.download_artifacts(entry.path, dst_path=str(folder)))
                target = entry.path if not prefix else f"{prefix}/{entry.path}"
                if entry.is_dir:
                    uploaded += len(self.client.artifacts.upload_dir(run_id, local, target))
                else:
                    parent = target.rsplit("/", 1)[0] if "/" in target else None
                    self.client.artifacts.upload_file(run_id, local, parent)
                    uploaded += 1
                shutil.rmtree(folder)
        self.summary.copied("artifact files", uploaded)
        return uploaded

    # --- registered models ------------------------------------------------------------

    def _import_model(self, src: Any, versions: Sequence[Any], advance: Callable[[], None]) -> None:
        model = self._model_target(src)
        if model is None:
            for _ in versions:
                advance()
            self.summary.skipped("versions", "their model was not imported", len(versions))
            self.summary.skipped("aliases", "their model was not imported", len(src.aliases))
            return
        by_source = {
            v.tags[TAG_VERSION]: v
            for v in self.client.models.list_versions(src.name)
            if TAG_VERSION in v.tags
        }
        numbers = {key: v.version for key, v in by_source.items()}
        for version in versions:
            try:
                number = self._import_version(
                    src.name, version, by_source.get(str(version.version))
                )
            except Exception as exc:  # one bad version must not stop the import
                self.summary.failed("versions", f"{src.name}/{version.version}: {_reason(exc)}")
                number = None
            if number is not None:
                numbers[str(version.version)] = number
            advance()
        self._import_aliases(src, numbers)

    def _model_target(self, src: Any) -> RegisteredModel | None:
        """The Shipyard model versions of ``src`` go into, created when missing."""
        try:
            check_model_name(src.name)
        except InvalidInput:
            self.summary.skipped(
                "models", "name not allowed in Shipyard (letters, digits, spaces, '.', '_', '-')"
            )
            return None
        tags = {**src.tags, TAG_MODEL: src.name, TAG_SOURCE: self.source.shown}
        try:
            try:
                model = self.client.models.get(src.name)
            except NotFound:
                model = self.client.models.create(src.name, src.description or "", tags)
                self.summary.copied("models")
                return model
            if model.tags.get(TAG_MODEL) != src.name:
                self.summary.skipped("models", "a Shipyard model of that name was not imported")
                return None
            # The source tag keeps the URI of the first import (the same MLflow can be
            # read through its server or its database).
            changed = {k: v for k, v in tags.items() if k != TAG_SOURCE and model.tags.get(k) != v}
            if changed:
                model = self.client.models.set_tags(src.name, changed)
            described = (src.description or "") != model.description
            if described:
                model = self.client.models.update(src.name, src.description or "")
            if changed or described:
                self.summary.updated("models")
            else:
                self.summary.skipped("models", ALREADY)
            return model
        except ShipyardError as exc:
            self.summary.failed("models", f"{src.name}: {_reason(exc)}")
            return None

    def _import_version(self, name: str, src: Any, copy: ModelVersion | None) -> int | None:
        """Copy one version; its Shipyard number, or None when it is skipped."""
        if copy is not None:
            self.summary.skipped("versions", ALREADY)
            return copy.version
        if src.status != "READY":
            self.summary.skipped("versions", f"not ready in MLflow ({src.status})")
            return None
        if not src.run_id:
            self.summary.skipped("versions", "made from no run")
            return None
        run_id = self.run_ids.get(src.run_id)
        if run_id is None:
            why = self.missing_runs.get(src.run_id, "not found in an imported experiment")
            self.summary.skipped("versions", f"their run was not imported ({why})")
            return None
        source_path = self._version_files(name, src, run_id)
        if source_path is None:
            return None
        tags = {**src.tags, TAG_VERSION: str(src.version), TAG_SOURCE: self.source.shown}
        if src.current_stage and src.current_stage != "None":
            tags[TAG_STAGE] = src.current_stage
        version = self._create_version(
            name, run_id, source_path, src.description or "", tags, int(src.version)
        )
        self.summary.copied("versions")
        return version.version

    def _version_files(self, name: str, src: Any, run_id: str) -> str | None:
        """The folder of the Shipyard run holding the version's files (copied there
        when they are not part of the run's imported artifacts)."""
        uri = self.source.version_files_uri(name, str(src.version))
        run = self.source_runs.get(src.run_id)
        run_root = run.info.artifact_uri.rstrip("/") + "/" if run is not None else None
        if run_root and uri.startswith(run_root):
            # Registered from the run's own artifacts (MLflow 2, or runs:/ a plain
            # folder): the run's copy already holds them.
            inside = uri[len(run_root) :].strip("/")
            try:
                if inside and self.client.artifacts.list(run_id, inside):
                    return inside
            except ShipyardError:
                pass  # not a folder of the copy: fetch the files below
        path = f"{VERSION_FILES_PREFIX}/{name}/{src.version}"
        try:
            repo = self.source.repository(uri)
        except ArtifactsUnreachable as exc:
            self.summary.skipped("versions", f"their files are {exc.reason}")
            return None
        if not self._copy_tree(repo, run_id, path):
            self.summary.skipped("versions", "no files in MLflow")
            return None
        return path

    def _create_version(
        self,
        name: str,
        run_id: str,
        source_path: str,
        description: str,
        tags: dict[str, str],
        wanted: int,
    ) -> ModelVersion:
        """Create the version, numbered as in MLflow where possible.

        Shipyard numbers versions itself and never reuses a deleted version's
        number; where MLflow has a gap (deleted or skipped versions), the
        version is created and deleted until its number reaches MLflow's, so
        ``models:/name/3`` means the same model on both sides.
        """
        models = self.client.models
        version = models.create_version(
            name, run_id, source_path, description=description, tags=tags
        )
        for _ in range(MAX_NUMBER_FILL):
            if version.version >= wanted:
                break
            models.delete_version(name, version.version)
            version = models.create_version(
                name, run_id, source_path, description=description, tags=tags
            )
        if version.version != wanted:
            self.summary.notes.append(
                f"{name}: MLflow version {wanted} is Shipyard version {version.version} "
                f"(tag {TAG_VERSION} keeps the MLflow number)"
            )
        return version

    def _import_aliases(self, src: Any, numbers: dict[str, int]) -> None:
        current = self.client.models.get(src.name).aliases
        for alias, source_version in sorted(src.aliases.items()):
            number = numbers.get(str(source_version))
            if number is None:
                self.summary.skipped("aliases", "their version was not imported")
                continue
            try:
                check_alias(alias)
            except InvalidInput:
                self.summary.skipped("aliases", "name not allowed in Shipyard")
                continue
            if current.get(alias) == number:
                self.summary.skipped("aliases", ALREADY)
                continue
            try:
                self.client.models.set_alias(src.name, alias, number)
            except ShipyardError as exc:
                self.summary.failed("aliases", f"{src.name}@{alias}: {_reason(exc)}")
                continue
            if alias in current:
                self.summary.updated("aliases")
            else:
                self.summary.copied("aliases")


def import_mlflow(
    source_uri: str,
    client: Client,
    *,
    artifacts_destination: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> ImportSummary:
    """Copy what is new in the MLflow at ``source_uri`` into ``client``'s project.

    Raises Unavailable (or NotFound/InvalidInput for a bad URI) before anything
    is written when the source cannot be read.
    """
    source = MlflowSource(source_uri.strip(), artifacts_destination)
    from mlflow.exceptions import MlflowException

    try:
        return MlflowImport(source, client, console, show_progress).run()
    except MlflowException as exc:
        # Listing the source failed midway (one run or version failing is only counted).
        raise Unavailable(f"reading MLflow at {source.shown} failed: {exc.message}") from None
