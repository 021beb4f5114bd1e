"""Ingest: a source in, a validated, profiled version out. Runs in the client.

Two paths. Local Parquet files (when no expectation has to look at single rows) are
stored byte for byte: each is copied into the store and hashed once, profiled from its
footer and a bounded sample, and remembered in the stat cache so an unchanged file is
not read again next time. Everything else streams as Arrow batches: row-level
expectations split each batch into kept and quarantined rows, kept rows are profiled
and written to staged Parquet parts, and the parts are stored once the whole-version
expectations have passed. Under the reject policy a failing source leaves nothing
behind: no version, no blob. An append is recorded on the dataset's latest version:
when another version was recorded since its parent was read (or since the dataset
was found with none), the server refuses it and it is built again on that one
(:data:`APPEND_ATTEMPTS`).
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.blobs import StagedBlob
from shipyard.clock import now_ms
from shipyard.datasets.profile_groups import merge_files
from shipyard.datasets.profiles import (
    PARQUET_SAMPLE_ROWS,
    PartialProfile,
    ProfileBuilder,
    profile_parquet,
)
from shipyard.datasets.schema import (
    column_changes,
    columns_of,
    schema_conflict,
    schema_from_text,
    schema_text,
)
from shipyard.datasets.sources import BatchInput, ParquetInput, Source
from shipyard.datasets.staging import PartWriter, empty_part, read_ahead
from shipyard.datasets.statcache import CachedFile, FileStat, StatCache
from shipyard.datasets.transfer import Transfer
from shipyard.datasets.types import (
    ColumnSchema,
    DataFile,
    DatasetVersion,
    DatasetVersionDetail,
    ExpectationSuite,
    ValidationReport,
    VersionCreate,
)
from shipyard.errors import Conflict, InvalidInput, Unavailable, ValidationFailed
from shipyard.hashing import hash_file

if TYPE_CHECKING:
    from shipyard.datasets.client import DatasetsClient
    from shipyard.datasets.validation import Validator

WORKERS = 4
"""Threads taking whole files (footer and sample read, kernel copy into the store, hash
of the mapped copy): most of that releases the GIL, so more threads than cores keep
the disk and both cores busy. A first version of 1,000 files of ~1 MiB, in process,
four interleaved pairs: 1.54-2.07 s with 2, 1.39-1.67 s with 4 (medians 1.70 / 1.48)."""
STREAM_PROFILE_THREADS = max(1, (os.cpu_count() or 1) - 2)
"""Threads profiling a streamed source: the reading and the writing thread hold two
cores already, and on a machine with no more, a pool per batch only adds work
(profiling 2M rows took 0.96 s on two threads against 0.73 s on one, here)."""
APPEND_ATTEMPTS = 5
"""Times an append is offered to the server, each built on the latest version, before
its Conflict reaches the user: every refusal means another version was recorded
meanwhile, so only a dataset appended to without pause runs out of them."""


@dataclass
class _Stored:
    """A Parquet file ready to be listed in a version."""

    name: str
    path: Path
    hash: str
    size: int
    rows: int
    cached: bool = False
    """Its hash came from the stat cache: the project most likely holds the blob already."""


@dataclass
class _Outcome:
    """What converting and checking a source produced."""

    kept: list[_Stored] = field(default_factory=list)
    quarantined: list[_Stored] = field(default_factory=list)
    profile: list[PartialProfile] = field(default_factory=list)
    file_profiles: list[tuple[str, bytes]] = field(default_factory=list)
    """Parquet files stored as they are: name and profile state bytes, merged by groups."""
    quarantine_profile: list[PartialProfile] = field(default_factory=list)


@contextmanager
def _progress(
    enabled: bool | None, total: int | None, what: str
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over bytes (shown on a terminal, or when asked)."""
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar: Progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


class Ingest:
    """One ingest into one dataset of one project."""

    def __init__(
        self,
        datasets: DatasetsClient,
        project: str,
        name: str,
        suite: ExpectationSuite,
        *,
        cache: StatCache,
        progress: bool | None = None,
        create: bool = False,
    ) -> None:
        self._datasets = datasets
        self._client = datasets.client
        self._project = project
        self._name = name
        self._suite = suite
        self._progress = progress
        self._transfer = Transfer(self._client, project)
        self._validator: Validator | None = None
        self._cache = cache
        self._create = create  # the dataset does not exist yet: made with the version

    # --- the whole run -------------------------------------------------------------------

    def run(
        self,
        source: Source,
        *,
        message: str,
        parent: DatasetVersionDetail | None,
        parent_refs: Sequence[str],
        tags: Sequence[str],
        append: bool = False,
    ) -> DatasetVersion:
        """Check, profile, store and record ``source`` as the dataset's next version;
        with ``append``, on ``parent`` (None: the dataset had no version when read)."""
        if parent is not None:
            source = self._conform(source, parent)
        if self._suite.expectations:
            from shipyard.datasets.validation import Validator

            self._validator = Validator(self._suite, source.schema)
        home_tmp = self._client.settings.home / "tmp"
        home_tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=home_tmp) as staging:
            folder = Path(staging)
            try:
                outcome = self._convert(source, folder)
                report = self._judge(outcome, [s.path for s in outcome.kept], parent)
                return self._record(
                    source,
                    outcome,
                    report,
                    message=message,
                    parent=parent,
                    parent_refs=parent_refs,
                    tags=tags,
                    append=append,
                )
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM) and exc.filename:
                    # A source file that vanished or became unreadable while being stored.
                    raise InvalidInput(
                        f"{exc.filename}: {exc.strerror}; no version was made",
                        {"file": str(exc.filename)},
                    ) from None
                # Reading the source is guarded where it happens (InvalidInput naming the
                # file); what is left is writing: staged parts, the blob store.
                raise Unavailable(
                    f"cannot write the data of {self._name!r} ({exc.strerror or exc}): "
                    "a full disk or a file size limit? No version was made.",
                    {"errno": exc.errno},
                ) from None

    def _conform(self, source: Source, parent: DatasetVersionDetail) -> Source:
        """Appended data in the parent's schema: the same column names, each cast
        losslessly to the parent's type (an int column appended to a double one, a
        DataFrame's large strings to a CSV's strings); Conflict otherwise."""
        old = [(c.name, c.type) for c in parent.columns]
        new = [(f.name, str(f.type)) for f in source.schema]
        if old == new:
            return source
        conflict = schema_conflict(parent.version, old, new, self._name)
        if [n for n, _ in old] != [n for n, _ in new] or not parent.arrow_schema:
            raise conflict
        target = schema_from_text(parent.arrow_schema)
        for have, want in zip(source.schema, target, strict=True):
            if have.type != want.type and not pa.types.is_null(have.type):
                try:
                    pa.array([], have.type).cast(want.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise conflict from None
        return Source(
            description=source.description,
            inputs=[_cast_input(item, target, conflict) for item in source.inputs],
            schema=target,
            total_bytes=source.total_bytes,
        )

    # --- converting and profiling --------------------------------------------------------

    def _convert(self, source: Source, folder: Path) -> _Outcome:
        outcome = _Outcome()
        as_is = [i for i in source.inputs if isinstance(i, ParquetInput)]
        streamed = [i for i in source.inputs if isinstance(i, BatchInput)]
        with _progress(self._progress, source.total_bytes, f"ingest {self._name}") as advance:
            if as_is:
                self._take_parquet(as_is, outcome, advance)
            for item in streamed:
                self._take_batches(item, source.schema, folder, outcome, advance)
        return outcome

    def _take_parquet(
        self, inputs: Sequence[ParquetInput], outcome: _Outcome, advance: Callable[[int], None]
    ) -> None:
        """Parquet files stored as they are; unchanged ones come from the stat cache."""
        cache = self._cache
        stats = {
            str(i.path): FileStat(str(i.path), i.inode, i.size, i.mtime_ns, i.ctime_ns)
            for i in inputs
        }
        known = cache.lookup(list(stats.values()))
        # Store right away only when nothing can still refuse the version.
        store_now = self._validator is None
        # Reading even a small sample costs about as much as the whole small file:
        # sample ~64 files spread over the folder, and take the rest from footers
        # (exact counts, nulls, min, max); their rows are taken to look like the sample.
        stride = max(1, len(inputs) // 64)

        def profile(indexed: tuple[int, ParquetInput]) -> tuple[PartialProfile, pa.Schema]:
            index, item = indexed
            sample = PARQUET_SAMPLE_ROWS if index % stride == 0 else 0
            try:
                return profile_parquet(item.path, sample_rows=sample)
            except InvalidInput as exc:
                where = str(item.path)
                raise InvalidInput(f"{where}: {exc.message}", {"file": where}) from None

        # Copies staged in an embedded store, installed once every file is taken: a
        # failure on the way (a full disk, a file gone, Ctrl-C) drops them all.
        staged: list[StagedBlob] = []

        def take(
            job: tuple[tuple[int, ParquetInput], tuple[PartialProfile, pa.Schema]],
        ) -> tuple[ParquetInput, CachedFile]:
            (_, item), (partial, schema) = job
            blob = self._transfer.stage(item.path) if store_now else None
            if isinstance(blob, StagedBlob):
                staged.append(blob)
                blob = blob.ref
            digest = blob.hash if blob else hash_file(item.path)
            hit = CachedFile(
                stats[str(item.path)],
                digest,
                partial.rows,
                schema.serialize().to_pybytes(),
                partial.to_bytes(),
            )
            advance(item.size)
            return item, hit

        results: list[tuple[ParquetInput, CachedFile] | None] = []
        todo = []
        for index, item in enumerate(inputs):
            hit = known.get(str(item.path))
            if hit is None:
                results.append(None)
                todo.append((index, item))
            else:  # unchanged: not read again
                results.append((item, hit))
                advance(item.size)
        pool = ThreadPoolExecutor(WORKERS)
        try:
            # Every new file is read (footer, sample) before any is stored: an unreadable
            # one refuses the version with nothing left in the store.
            profiled = list(pool.map(profile, todo))
            taken_now = pool.map(take, zip(todo, profiled, strict=True))
            for (index, _), done in zip(todo, taken_now, strict=True):
                results[index] = done
            pool.shutdown()
            for blob in staged:
                self._transfer.install(blob)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # the files not begun are not copied
            for blob in staged:
                self._transfer.discard(blob)
            raise
        taken = [r for r in results if r is not None]
        cache.remember([hit for item, hit in taken if str(item.path) not in known])
        for item, hit in taken:
            cached = str(item.path) in known
            outcome.kept.append(
                _Stored(item.name, item.path, hit.hash, item.size, hit.rows, cached)
            )
            outcome.file_profiles.append((item.name, hit.profile))

    def _take_batches(
        self,
        item: BatchInput,
        schema: pa.Schema,
        folder: Path,
        outcome: _Outcome,
        advance: Callable[[int], None],
    ) -> None:
        """Stream batches through the row checks into kept and quarantined parts."""
        keep_writer = PartWriter(folder, item.name, schema)
        bad_writer = PartWriter(folder, f"{item.name}-quarantine", schema)
        profile = ProfileBuilder(schema, threads=STREAM_PROFILE_THREADS)
        bad_profile = ProfileBuilder(schema, threads=STREAM_PROFILE_THREADS)
        quarantine = self._suite.policy == "quarantine"
        seen = 0
        # Closed whatever happens: a SQL stream holds a connection (and locks) until then.
        stream = read_ahead(item.open())
        try:
            for batch in stream:
                mask = self._validator.check_batch(batch) if self._validator else None
                if mask is not None and quarantine and mask.false_count:
                    good = batch.filter(mask)
                    bad = batch.filter(pc.invert(mask))
                    bad_writer.write(bad)
                    bad_profile.add(bad)
                    batch = good
                keep_writer.write(batch)
                profile.add(batch)
                # The source's bytes are not visible through the reader; in-memory bytes
                # stand in for them (capped at the source's size).
                step = min(batch.nbytes, max(0, (item.size_hint or 0) - seen))
                seen += step
                advance(step)
        finally:
            stream.close()
            keep_writer.close()
            bad_writer.close()
        advance(max(0, (item.size_hint or 0) - seen))
        parts = keep_writer.parts or [empty_part(folder, item.name, schema)]
        outcome.kept.extend(_Stored(n, p, "", 0, rows) for n, p, rows in parts)
        outcome.profile.append(profile.partial())
        if bad_writer.parts:
            outcome.quarantined.extend(
                _Stored(n, p, "", 0, rows) for n, p, rows in bad_writer.parts
            )
            outcome.quarantine_profile.append(bad_profile.partial())

    # --- judging -------------------------------------------------------------------------

    def _judge(
        self, outcome: _Outcome, kept: Sequence[Path], parent: DatasetVersionDetail | None
    ) -> ValidationReport | None:
        """The whole-version checks over ``parent``'s files and ``kept`` (local copies of
        the kept files); raises ValidationFailed when the policy says so."""
        if self._validator is None:
            return None
        files = list(kept)
        rows = sum(s.rows for s in outcome.kept)
        if parent is not None:
            fetched = self._transfer.fetch([f.hash for f in parent.files])
            files = [fetched[f.hash] for f in parent.files] + files
            rows += parent.rows
        report = self._validator.finish(
            files,
            rows=rows,
            now_ms=now_ms(),
            policy=self._suite.policy,
            # Every row went through the validator: no parent's, none of a Parquet file
            # taken as it is.
            checked_all=parent is None and not outcome.file_profiles,
        )
        quarantined = sum(s.rows for s in outcome.quarantined)
        report = report.model_copy(update={"quarantined_rows": quarantined})
        if report.passed or self._suite.policy == "warn":
            return report
        if self._suite.policy == "quarantine":
            # The rows that broke an expectation judged row by row went to quarantine. Any
            # other failure refuses: a whole-version check, or a row-level expectation
            # that judged no row (its column is missing), so that no row is known good.
            by_row = self._validator.judged_by_row
            whole = [r for i, r in enumerate(report.results) if not r.passed and i not in by_row]
            if not whole:
                return report
        failed = [r for r in report.results if not r.passed]
        summary = "; ".join(f"{r.name}: {r.message}" for r in failed[:5])
        raise ValidationFailed(
            f"{len(failed)} expectation(s) of dataset {self._name!r} failed, no version was "
            f"made: {summary}",
            {"report": report.model_dump(mode="json")},
        )

    # --- storing and recording -----------------------------------------------------------

    def _store(self, stored: list[_Stored]) -> list[DataFile]:
        """Put the staged parts among ``stored`` into the store (hashing them); the
        files listed as they are were stored (or hashed) when they were taken."""

        def put(item: _Stored) -> None:
            blob = self._transfer.put(item.path, move=True)
            item.hash, item.size = blob.hash, blob.size

        staged = [s for s in stored if not s.hash]
        if staged:
            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(put, staged))
        return [DataFile(path=s.name, hash=s.hash, size=s.size, rows=s.rows) for s in stored]

    def _publish(
        self, stored: Sequence[_Stored], partials: Sequence[PartialProfile]
    ) -> tuple[Any, str]:
        """Merge ``partials`` into the profile of ``stored``'s rows, store its state, and
        publish the state with the files this ingest read and stored; the finished
        profile and the state's hash.

        Files whose hash came from the stat cache are not claimed again: re-versioning a
        folder of 1,000 files where 10 changed would claim 990 blobs the project holds.
        :meth:`_create_version` publishes them where the server says otherwise."""
        merged = PartialProfile.merge_all(list(partials))
        state = merged.to_bytes()
        blob = self._transfer.put_bytes(state)
        fresh: dict[str, Path | bytes] = {s.hash: s.path for s in stored if not s.cached}
        fresh[blob.hash] = state
        self._transfer.publish(fresh)
        return merged.finish(), blob.hash

    def _create_version(self, spec: VersionCreate, stored: Sequence[_Stored]) -> DatasetVersion:
        """Record the version. Where a file taken from the stat cache is not the
        project's after all (the cache is shared by every project of the home, and a
        refused version leaves its files remembered but not stored), the server names
        the missing blobs: the cached files are published and the version asked again."""
        cached: dict[str, Path | bytes] = {s.hash: s.path for s in stored if s.cached}
        try:
            return self._datasets.create_version(self._name, spec, project=self._project)
        except InvalidInput as exc:
            if "missing" not in exc.details or not cached:
                raise
        self._transfer.publish(cached)
        return self._datasets.create_version(self._name, spec, project=self._project)

    def _rebase(
        self,
        conflict: Conflict,
        parent: DatasetVersionDetail | None,
        columns: Sequence[ColumnSchema],
        outcome: _Outcome,
    ) -> tuple[DatasetVersionDetail, ValidationReport | None]:
        """The version an append the server refused (``conflict``) is built on again, and
        the report judged on it: the one the server named latest, recorded since
        ``parent`` was read (None: since the dataset was found with no version). The new
        files are stored already; the file list, the profile and the whole-version checks
        are made again over the new parent's rows (an append made meanwhile may hold keys
        this one repeats). Raises ``conflict``
        when it is about something else, or, naming what differs, when the new parent's
        columns are not ``columns``, those the data was read into."""
        latest = conflict.details.get("latest")
        was = None if parent is None else parent.version
        if latest is None or conflict.details.get("parent", -1) != was:
            raise conflict
        head = self._datasets.get_version(self._name, latest, project=self._project)
        old = [(c.name, c.type) for c in head.columns]
        new = [(c.name, c.type) for c in columns]
        if old != new:
            raise Conflict(
                f"{conflict.message}, and its columns differ from the appended data's: "
                + column_changes(old, new),
                {
                    **conflict.details,
                    "old": [f"{n}: {t}" for n, t in old],
                    "new": [f"{n}: {t}" for n, t in new],
                },
            )
        if self._validator is None:
            return head, None
        # Staged parts were moved into an embedded store: judged from verified copies.
        stored = self._transfer.fetch([s.hash for s in outcome.kept])
        return head, self._judge(outcome, [stored[s.hash] for s in outcome.kept], head)

    def _record(
        self,
        source: Source,
        outcome: _Outcome,
        report: ValidationReport | None,
        *,
        message: str,
        parent: DatasetVersionDetail | None,
        parent_refs: Sequence[str],
        tags: Sequence[str],
        append: bool,
    ) -> DatasetVersion:
        new_files = self._store(outcome.kept)
        new_partials = list(outcome.profile)
        if outcome.file_profiles:
            new_partials.append(merge_files(outcome.file_profiles, self._cache))
        # An append the server refuses because a version was recorded since its parent
        # was read is built again on that version: the new files are stored already.
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            files, partials = new_files, new_partials
            if parent is not None:
                files = parent.files + _rename_clashes(parent.files, files)
                if parent.profile_state:
                    state_bytes = self._transfer.read_bytes(parent.profile_state)
                    partials = [PartialProfile.from_bytes(state_bytes), *partials]
            profile, state = self._publish(outcome.kept, partials)
            spec = VersionCreate(
                files=files,
                columns=columns_of(source.schema),
                arrow_schema=schema_text(source.schema),
                profile=profile,
                profile_state=state,
                validation=report,
                message=message,
                parents=[parent.version] if parent is not None else [],
                append=append,
                parent_refs=list(parent_refs),
                source=source.description,
                tags=list(tags),
                create_dataset=self._create,
            )
            try:
                version = self._create_version(spec, outcome.kept)
                break
            except Conflict as exc:
                if attempt == APPEND_ATTEMPTS:
                    raise
                parent, report = self._rebase(exc, parent, spec.columns, outcome)
        if outcome.quarantined:
            bad_files = self._store(outcome.quarantined)
            bad_profile, bad_state = self._publish(outcome.quarantined, outcome.quarantine_profile)
            self._create_version(
                VersionCreate(
                    files=bad_files,
                    columns=spec.columns,
                    arrow_schema=spec.arrow_schema,
                    profile=bad_profile,
                    profile_state=bad_state,
                    validation=report,
                    message=f"rows of version {version.version} that failed its expectations",
                    kind="quarantine",
                    quarantine_of=version.version,
                    source=source.description,
                ),
                outcome.quarantined,
            )
        return version


def _cast_input(
    item: ParquetInput | BatchInput, target: pa.Schema, conflict: Conflict
) -> BatchInput:
    """An input whose batches are cast to ``target`` (a value that does not fit:
    ``conflict``)."""
    if isinstance(item, ParquetInput):
        path = item.path

        def read() -> Iterator[pa.RecordBatch]:
            yield from pq.ParquetFile(path).iter_batches()

        name, opener, size = item.name.rsplit(".", 1)[0], read, item.size
    else:
        name, opener, size = item.name, item.open, item.size_hint

    def cast() -> Iterator[pa.RecordBatch]:
        for batch in opener():
            try:
                yield batch.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise Conflict(f"{conflict.message}: {exc}", conflict.details) from None

    return BatchInput(name=name, schema=target, open=cast, size_hint=size)


def _rename_clashes(existing: Sequence[DataFile], new: list[DataFile]) -> list[DataFile]:
    """Appended files keep their names unless a name is taken; then they take the content
    hash (and a counter) as a suffix. None is dropped, not even the very same content
    again: its rows are appended, counted, profiled and validated like any others."""
    taken = {f.path for f in existing}
    out = []
    for f in new:
        if f.path in taken:
            stem, dot, ext = f.path.rpartition(".")
            base, end = (stem, f".{ext}") if dot else (f.path, "")
            name, n = f"{base}-{f.hash[:12]}{end}", 1
            while name in taken:
                n += 1
                name = f"{base}-{f.hash[:12]}-{n}{end}"
            f = f.model_copy(update={"path": name})
        taken.add(f.path)
        out.append(f)
    return out
