"""The model registry for ``shipyard import mlflow``: registered models, their versions
(numbered as in MLflow, their files in the copy of their run) and aliases, brought up
to date on a re-import (descriptions, tags, stages; versions and aliases deleted in
MLflow deleted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.mlflow_compat.import_artifacts import ArtifactCopier
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_marks import (
    TAG_MODEL,
    TAG_SOURCE,
    TAG_STAGE,
    TAG_VERSION,
    stale_tags,
    tag_keys,
)
from shipyard.mlflow_compat.import_summary import ALREADY, reason
from shipyard.mlflow_compat.mlflow_source import ArtifactsUnreachable
from shipyard.registry.types import ModelVersion, RegisteredModel, check_alias, check_model_name

# Where a version's files go in its run's artifacts when they are not already there
# (MLflow 3 keeps a logged model's files outside the run's artifacts).
VERSION_FILES_PREFIX = "mlflow-registry"
# Most deleted versions created to keep a version number equal to MLflow's.
MAX_NUMBER_FILL = 100


class RegistryImport:
    """Copies registered models, versions and aliases (after the runs they come from)."""

    def __init__(self, ctx: ImportContext, artifacts: ArtifactCopier) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.summary = ctx.summary
        self.artifacts = artifacts

    def import_model(self, src: Any, versions: Sequence[Any], advance: Callable[[], None]) -> None:
        """Copy or refresh one model with its versions and aliases; ``advance`` per version."""
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
                self.summary.failed("versions", f"{src.name}/{version.version}: {reason(exc)}")
                number = None
            if number is not None:
                numbers[str(version.version)] = number
            advance()
        present = {str(v.version) for v in versions}
        for key in sorted(set(by_source) - present):
            self._delete_version(src.name, by_source[key])
            numbers.pop(key, None)
        self._import_aliases(src, numbers)

    # --- models -----------------------------------------------------------------------

    def _model_target(self, src: Any) -> RegisteredModel | None:
        """The Shipyard model versions of ``src`` go into, created when missing."""
        try:
            check_model_name(src.name)
        except InvalidInput:
            self.summary.skipped(
                "models", "name not allowed in Shipyard (letters, digits, spaces, '.', '_', '-')"
            )
            return None
        tags = {
            **src.tags,
            TAG_MODEL: src.name,
            TAG_SOURCE: self.ctx.source.shown,
            **tag_keys(src.tags),
        }
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
            stale = stale_tags(model.tags, src.tags)  # before the key list is replaced
            if changed:
                model = self.client.models.set_tags(src.name, changed)
            for key in stale:
                self.client.models.delete_tag(src.name, key)
            described = (src.description or "") != model.description
            if described:
                model = self.client.models.update(src.name, src.description or "")
            if changed or stale or described:
                self.summary.updated("models")
            else:
                self.summary.skipped("models", ALREADY)
            return model
        except ShipyardError as exc:
            self.summary.failed("models", f"{src.name}: {reason(exc)}")
            return None

    # --- versions ---------------------------------------------------------------------

    def _import_version(self, name: str, src: Any, copy: ModelVersion | None) -> int | None:
        """Copy one version; its Shipyard number, or None when it is skipped."""
        if copy is not None:
            if self._refresh_version(name, src, copy):
                self.summary.updated("versions")
            else:
                self.summary.skipped("versions", ALREADY)
            return copy.version
        if src.status != "READY":
            self.summary.skipped("versions", f"not ready in MLflow ({src.status})")
            return None
        if not src.run_id:
            self.summary.skipped("versions", "made from no run")
            return None
        run_id = self.ctx.run_ids.get(src.run_id)
        if run_id is None:
            why = self.ctx.missing_runs.get(src.run_id, "not found in an imported experiment")
            self.summary.skipped("versions", f"their run was not imported ({why})")
            return None
        source_path = self._version_files(name, src, run_id)
        if source_path is None:
            return None
        version = self._create_version(
            name,
            run_id,
            source_path,
            src.description or "",
            self._version_tags(src),
            int(src.version),
        )
        self.summary.copied("versions")
        return version.version

    def _version_tags(self, src: Any) -> dict[str, str]:
        tags = {
            **src.tags,
            TAG_VERSION: str(src.version),
            TAG_SOURCE: self.ctx.source.shown,
            **tag_keys(src.tags),
        }
        if src.current_stage and src.current_stage != "None":
            tags[TAG_STAGE] = src.current_stage
        return tags

    def _refresh_version(self, name: str, src: Any, copy: ModelVersion) -> bool:
        """Bring a copied version's description, tags and stage up to date with MLflow;
        True when anything changed."""
        models = self.client.models
        wanted = self._version_tags(src)
        # The source tag keeps the URI of the first import, as for models.
        changed = {k: v for k, v in wanted.items() if k != TAG_SOURCE and copy.tags.get(k) != v}
        for key, value in changed.items():
            models.set_version_tag(name, copy.version, key, value)
        stale = stale_tags(copy.tags, src.tags)
        if TAG_STAGE in copy.tags and TAG_STAGE not in wanted:
            stale.append(TAG_STAGE)
        for key in stale:
            models.delete_version_tag(name, copy.version, key)
        described = (src.description or "") != copy.description
        if described:
            models.update_version(name, copy.version, src.description or "")
        return bool(changed or stale or described)

    def _delete_version(self, name: str, copy: ModelVersion) -> None:
        """Delete the copy of a version deleted in MLflow (and its aliases with it):
        ``models:/name/N`` must not keep serving a model MLflow no longer has."""
        try:
            self.client.models.delete_version(name, copy.version)
        except ShipyardError as exc:
            self.summary.failed("versions", f"{name}/{copy.tags[TAG_VERSION]}: {reason(exc)}")
        else:
            self.summary.deleted("versions")

    def _version_files(self, name: str, src: Any, run_id: str) -> str | None:
        """The folder of the Shipyard run holding the version's files (copied there
        when they are not part of the run's imported artifacts)."""
        source = self.ctx.source
        uri = source.version_files_uri(name, str(src.version))
        run = self.ctx.source_runs.get(src.run_id)
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
            repo = source.repository(uri)
        except ArtifactsUnreachable as exc:
            self.summary.skipped("versions", f"their files are {exc.reason}")
            return None
        files = source.files(repo)
        if not files:
            self.summary.skipped("versions", "no files in MLflow")
            return None
        self.artifacts.copy_files(repo, files, run_id, path)
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

    # --- aliases ----------------------------------------------------------------------

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
                self.summary.failed("aliases", f"{src.name}@{alias}: {reason(exc)}")
                continue
            if alias in current:
                self.summary.updated("aliases")
            else:
                self.summary.copied("aliases")
        self._delete_stale_aliases(src, current, set(numbers.values()))

    def _delete_stale_aliases(self, src: Any, current: dict[str, int], imported: set[int]) -> None:
        """Remove aliases MLflow no longer has that point at an imported version (an
        alias set in Shipyard on a version made there is left alone)."""
        for alias, number in sorted(current.items()):
            if alias in src.aliases or number not in imported:
                continue
            try:
                self.client.models.delete_alias(src.name, alias)
            except ShipyardError as exc:
                self.summary.failed("aliases", f"{src.name}@{alias}: {reason(exc)}")
            else:
                self.summary.deleted("aliases")
