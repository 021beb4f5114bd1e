"""Artifact files for ``shipyard import mlflow``: a run's files, or a version's, copied
from an MLflow artifact repository into a Shipyard run, one file at a time on disk,
leaving out those the run already holds at the same path and size."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from shipyard.errors import NotFound
from shipyard.mlflow_compat.import_context import ImportContext
from shipyard.mlflow_compat.import_marks import ARTIFACTS_COPIED
from shipyard.mlflow_compat.import_summary import SAME_FILE
from shipyard.mlflow_compat.mlflow_source import ArtifactsUnreachable


class ArtifactCopier:
    """Copies files from MLflow's artifact repositories into Shipyard runs."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.summary = ctx.summary

    def copy_run_artifacts(
        self, artifact_uri: str, run_id: str, *, fresh: bool
    ) -> tuple[str, list[tuple[str, int | None]] | None]:
        """Copy a run's artifacts the copy lacks; its artifacts tag ('copied' or why
        not) and MLflow's files (None when unreachable)."""
        try:
            repo = self.ctx.source.repository(artifact_uri)
        except ArtifactsUnreachable as exc:
            self.summary.skipped("artifact files", f"runs whose artifacts are {exc.reason}")
            return f"not copied: {exc.reason}", None
        files = self.ctx.source.files(repo)
        self.copy_files(repo, files, run_id, None, fresh=fresh)
        return ARTIFACTS_COPIED, files

    def copy_files(
        self,
        repo: Any,
        files: list[tuple[str, int | None]],
        run_id: str,
        prefix: str | None,
        *,
        fresh: bool = False,
    ) -> None:
        """Copy the files of ``repo`` under ``prefix`` of the run, but those the run holds
        at the same path and size; one file at a time on disk."""
        held = {} if fresh else self._held_files(run_id, prefix)
        wanted = [
            (path, size)
            for path, size in files
            if size is None or held.get(f"{prefix}/{path}" if prefix else path) != size
        ]
        self.summary.skipped("artifact files", SAME_FILE, len(files) - len(wanted))
        with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-import-") as tmp:
            for number, (path, _) in enumerate(wanted):
                folder = Path(tmp, str(number))
                folder.mkdir()
                local = Path(repo.download_artifacts(path, dst_path=str(folder)))
                target = path if not prefix else f"{prefix}/{path}"
                parent = target.rsplit("/", 1)[0] if "/" in target else None
                self.client.artifacts.upload_file(run_id, local, parent)
                shutil.rmtree(folder)
                self.summary.copied("artifact files")

    def _held_files(self, run_id: str, prefix: str | None) -> dict[str, int | None]:
        """Size of each file of the run below ``prefix``."""
        try:
            found = self.client.artifacts.list(run_id, prefix or "", recursive=True)
        except NotFound:
            return {}
        return {f.path: f.size for f in found if not f.is_dir}
