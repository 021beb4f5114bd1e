"""SDK client of datasets (``client.datasets``): ingest, versions, tags, reading back,
diffs, validation and lineage.

A version is named by number, by tag (``prod``) or ``latest``. Every method takes
``project`` (default: the client's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.client.api import Api, segment
from shipyard.datasets.types import (
    Dataset,
    DatasetInput,
    DatasetPage,
    DatasetVersion,
    DatasetVersionDetail,
    ExpectationSuite,
    Lineage,
    ReaderPage,
    ValidationReport,
    VersionCreate,
    VersionDiff,
    VersionPage,
    check_dataset_name,
    check_tag,
    own_version_not_found,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.heap import older_objects_frozen
from shipyard.registry.integrity import safe_target

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from shipyard.client.client import Client


class VersionData:
    """A version's data on this machine: verified local Parquet files, read as Arrow,
    pandas or DuckDB."""

    def __init__(self, version: DatasetVersionDetail, paths: list[Path]) -> None:
        self.version = version
        self.paths = paths

    def to_arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole version as one Arrow table (in memory)."""
        import pyarrow.dataset as ds

        dataset = ds.dataset([str(p) for p in self.paths], format="parquet")
        return dataset.to_table(columns=list(columns) if columns else None)

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole version as a pandas DataFrame (in memory)."""
        return self.to_arrow(columns).to_pandas()

    def to_duckdb(self, conn: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over the files: filter and aggregate without loading."""
        import duckdb

        connection = conn or duckdb.connect()
        return connection.read_parquet([str(p) for p in self.paths])


class DatasetsClient:
    """``client.datasets``."""

    def __init__(self, api: Api, client: Client) -> None:
        self._api = api
        self.client = client

    # --- paths ---------------------------------------------------------------------------

    def _project(self, project: str | None) -> str:
        return project or self.client.project

    def _datasets(self, project: str | None) -> str:
        return f"/projects/{segment(self._project(project))}/datasets"

    def _dataset(self, name: str, project: str | None) -> str:
        return f"{self._datasets(project)}/{segment(name)}"

    def _version(self, name: str, version: int | str, project: str | None) -> str:
        return f"{self._dataset(name, project)}/versions/{segment(str(version))}"

    # --- datasets ------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        description: str = "",
        expectations: ExpectationSuite | dict[str, Any] | Sequence[Any] | None = None,
        policy: str | None = None,
        project: str | None = None,
    ) -> Dataset:
        """A new dataset, with the expectations its versions must meet (Conflict if taken).

        ``expectations``: a suite, or a list of expectations (dicts or models) with
        ``policy`` (reject, warn, quarantine; default reject)."""
        suite = _suite(expectations, policy)
        body = {"name": name, "description": description, "expectations": suite.model_dump()}
        return Dataset(**self._api.post(self._datasets(project), body))

    def get(self, name: str, project: str | None = None) -> Dataset:
        """One dataset with its tags and expectations."""
        return Dataset(**self._api.get(self._dataset(name, project)))

    def list(
        self,
        query: str | None = None,
        *,
        max_results: int = 100,
        page_token: str | None = None,
        project: str | None = None,
    ) -> DatasetPage:
        """One page of the project's datasets, most recently changed first."""
        return DatasetPage(
            **self._api.get(
                self._datasets(project),
                query=query,
                max_results=max_results,
                page_token=page_token,
            )
        )

    def update(
        self,
        name: str,
        *,
        description: str | None = None,
        expectations: ExpectationSuite | dict[str, Any] | Sequence[Any] | None = None,
        policy: str | None = None,
        project: str | None = None,
    ) -> Dataset:
        """Change the description and/or the expectations (checked before they are kept)."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if expectations is not None or policy is not None:
            current = self.get(name, project).expectations
            if expectations is None:
                suite = current.model_copy(update={"policy": policy})
            elif isinstance(expectations, ExpectationSuite | dict):
                suite = _suite(expectations, policy)  # its own policy unless one is given
            else:
                suite = _suite(expectations, policy or current.policy)
            body["expectations"] = suite.model_dump()
        return Dataset(**self._api.patch(self._dataset(name, project), body))

    def delete(self, name: str, project: str | None = None) -> None:
        """Delete a dataset and its versions (project admins only)."""
        self._api.delete(self._dataset(name, project))

    # --- ingest --------------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        source: Any,
        *,
        message: str = "",
        format: str | None = None,
        query: str | None = None,
        append: bool = False,
        parents: Sequence[str] = (),
        tags: Sequence[str] = (),
        progress: bool | None = None,
        project: str | None = None,
    ) -> DatasetVersion:
        """Make the next version of ``name`` (created if missing) from ``source``.

        ``source``: a local file or folder (CSV, Parquet, JSON lines), an ``s3://`` or
        ``file://`` URL, a SQLAlchemy URL with ``query``, a pandas DataFrame or an Arrow
        table. The data is checked against the dataset's expectations under its policy
        (ValidationFailed and no version under ``reject``), profiled and stored once by
        content. ``append`` makes a version holding the latest version's files plus the
        new ones (same schema, else Conflict). ``parents``: other versions it was made
        from, as ``"dataset@version"``.
        """
        from shipyard.datasets.ingest import Ingest
        from shipyard.datasets.sources import open_source
        from shipyard.datasets.statcache import StatCache
        from shipyard.datasets.types import ROW_LEVEL_KINDS

        check_dataset_name(name)
        project = self._project(project)
        # What the server would refuse when the version is recorded is asked first: a
        # bad tag or parent found there cost the whole conversion, and left its blobs.
        for tag in tags:
            check_tag(tag)
        try:
            dataset: Dataset | None = self.get(name, project)
        except NotFound:
            dataset = None  # made with the version, so a failed ingest leaves nothing
        for ref in parents:
            other, at, selector = str(ref).partition("@")
            if at:
                self.get_version(other, selector, project=project)
                continue
            try:  # a version of this dataset
                if dataset is None:
                    raise NotFound(f"dataset {name!r} has no version {str(ref)[:40]}")
                self.get_version(name, ref, project=project)
            except NotFound as exc:
                raise own_version_not_found(exc, ref) from None
        suite = dataset.expectations if dataset else ExpectationSuite()
        row_checks = any(e.kind in ROW_LEVEL_KINDS for e in suite.expectations)
        parent = None
        if append and dataset is not None and dataset.latest_version is not None:
            parent = self.get_version(name, dataset.latest_version, project=project)
        cache = StatCache(self.client.settings.home / "cache")
        # Thousands of short-lived objects per folder of files: see shipyard.heap.
        with older_objects_frozen(), contextlib.closing(cache):
            opened = open_source(
                source,
                format=format,  # type: ignore[arg-type]
                query=query,
                settings=self.client.settings,
                as_is=not row_checks,
                known_schemas=cache.schemas_for,
            )
            ingest = Ingest(
                self, project, name, suite, cache=cache, progress=progress, create=dataset is None
            )
            return ingest.run(
                opened,
                message=message,
                parent=parent,
                parent_refs=parents,
                tags=tags,
                append=append,
            )

    def append(self, name: str, source: Any, **kwargs: Any) -> DatasetVersion:
        """``ingest(..., append=True)``: the latest version's files plus ``source``'s."""
        return self.ingest(name, source, append=True, **kwargs)

    def create_version(
        self, name: str, spec: VersionCreate, *, project: str | None = None
    ) -> DatasetVersion:
        """Record a version from files already published to the project (low level)."""
        body = spec.model_dump(mode="json")
        return DatasetVersion(**self._api.post(f"{self._dataset(name, project)}/versions", body))

    # --- versions ------------------------------------------------------------------------

    def versions(
        self,
        name: str,
        *,
        max_results: int = 100,
        page_token: str | None = None,
        project: str | None = None,
    ) -> VersionPage:
        """One page of the dataset's versions, newest first (without profiles)."""
        return VersionPage(
            **self._api.get(
                f"{self._dataset(name, project)}/versions",
                max_results=max_results,
                page_token=page_token,
            )
        )

    def get_version(
        self, name: str, version: int | str = "latest", *, project: str | None = None
    ) -> DatasetVersionDetail:
        """A version with its files, schema, profile and validation report."""
        return DatasetVersionDetail(**self._api.get(self._version(name, version, project)))

    def set_tag(
        self, name: str, tag: str, version: int | str, *, project: str | None = None
    ) -> DatasetVersion:
        """Point ``tag`` (e.g. ``prod``) at a version, moving it if needed."""
        path = f"{self._dataset(name, project)}/tags/{segment(tag)}"
        return DatasetVersion(**self._api.put(path, {"version": version}))

    def delete_tag(self, name: str, tag: str, *, project: str | None = None) -> None:
        """Remove a tag."""
        self._api.delete(f"{self._dataset(name, project)}/tags/{segment(tag)}")

    def lineage(
        self, name: str, version: int | str = "latest", *, project: str | None = None
    ) -> Lineage:
        """Parents, children and the newest runs that read the version (``runs_total``
        counts them all; :meth:`readers` pages through them)."""
        return Lineage(**self._api.get(f"{self._version(name, version, project)}/lineage"))

    def readers(
        self,
        name: str,
        version: int | str = "latest",
        *,
        max_results: int = 100,
        page_token: str | None = None,
        project: str | None = None,
    ) -> ReaderPage:
        """One page of the runs that read the version, newest first."""
        return ReaderPage(
            **self._api.get(
                f"{self._version(name, version, project)}/readers",
                max_results=max_results,
                page_token=page_token,
            )
        )

    def diff(
        self,
        name: str,
        old: int | str,
        new: int | str = "latest",
        *,
        keys: Sequence[str] = (),
        samples: int = 5,
        project: str | None = None,
    ) -> VersionDiff:
        """Schema, row-count and profile changes; with ``keys``, rows added, removed and
        changed (computed by the server)."""
        return VersionDiff(
            **self._api.get(
                f"{self._dataset(name, project)}/diff",
                old=str(old),
                new=str(new),
                key=list(keys) or None,
                samples=samples,
            )
        )

    def validate(
        self, name: str, version: int | str = "latest", *, project: str | None = None
    ) -> ValidationReport:
        """Judge a stored version against the dataset's current expectations."""
        return ValidationReport(
            **self._api.post(f"{self._version(name, version, project)}/validate")
        )

    # --- runs that read versions ----------------------------------------------------------

    def log_input(
        self,
        run_id: str,
        name: str,
        version: int | str = "latest",
        *,
        context: str = "",
        project: str | None = None,
    ) -> DatasetInput:
        """Record that run ``run_id`` read a version of ``name`` (``context``: "training",
        "eval", ...). The dataset must be in the run's project. Logging it again changes
        nothing."""
        body = {
            "project": self._project(project),
            "dataset": name,
            "version": str(version),
            "context": context,
        }
        return DatasetInput(**self._api.post(f"/runs/{segment(run_id)}/dataset-inputs", body))

    def inputs_of(self, run_id: str) -> list[DatasetInput]:
        """The dataset versions run ``run_id`` read."""
        return [DatasetInput(**i) for i in self._api.get(f"/runs/{segment(run_id)}/dataset-inputs")]

    # --- reading back --------------------------------------------------------------------

    def open(
        self, name: str, version: int | str = "latest", *, project: str | None = None
    ) -> VersionData:
        """The version's files on this machine (downloaded once, verified by hash)."""
        from shipyard.datasets.transfer import Transfer

        detail = self.get_version(name, version, project=project)
        local = Transfer(self.client, self._project(project)).fetch([f.hash for f in detail.files])
        return VersionData(detail, [local[f.hash] for f in detail.files])

    def to_arrow(self, name: str, version: int | str = "latest", **kwargs: Any) -> pa.Table:
        """The version as an Arrow table."""
        return self.open(name, version, **kwargs).to_arrow()

    def to_pandas(self, name: str, version: int | str = "latest", **kwargs: Any) -> pd.DataFrame:
        """The version as a pandas DataFrame."""
        return self.open(name, version, **kwargs).to_pandas()

    def download(
        self,
        name: str,
        dest: str | os.PathLike[str],
        version: int | str = "latest",
        *,
        project: str | None = None,
    ) -> list[Path]:
        """Write the version's Parquet files under ``dest`` (by their names in the
        version), all or none: they are copied into a folder of their own inside ``dest``
        first and moved into place once every one is there, so a download that fails
        (a full disk, Ctrl-C) leaves ``dest`` as it was, not half a version."""
        root = Path(dest)
        if root.exists() and not root.is_dir():
            raise InvalidInput(f"{root} is a file; name a folder to download into")
        data = self.open(name, version, project=project)
        made_root = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".shipyard-download-{uuid.uuid4().hex}"
        try:
            staged = []
            for f, path in zip(data.version.files, data.paths, strict=True):
                target, final = safe_target(staging, f.path), safe_target(root, f.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(path, target)  # a kernel copy of the verified cached file
                except OSError as exc:  # named after what the user asked for, not the cache
                    raise OSError(exc.errno, exc.strerror, str(final)) from None
                staged.append((target, final))
            for target, final in staged:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if made_root:
                shutil.rmtree(root, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return [final for _, final in staged]


def _suite(
    expectations: ExpectationSuite | dict[str, Any] | Sequence[Any] | None, policy: str | None
) -> ExpectationSuite:
    if isinstance(expectations, ExpectationSuite):
        suite = expectations
    elif isinstance(expectations, dict):
        suite = ExpectationSuite.model_validate(expectations)
    else:
        items = [e.model_dump() if hasattr(e, "model_dump") else e for e in expectations or []]
        suite = ExpectationSuite.model_validate({"expectations": items})
    if policy is not None:
        suite = ExpectationSuite.model_validate({**suite.model_dump(), "policy": policy})
    return suite
