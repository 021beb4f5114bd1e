"""Dataset versions: made from a manifest of stored files, read back by number or tag,
tagged, and linked to their parents and to the runs that read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blake3 import blake3
from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.blobs.store import check_hash
from shipyard.clock import now_ms
from shipyard.datasets.schema import schema_conflict
from shipyard.datasets.service import dataset_row, new_dataset_row, touch
from shipyard.datasets.tables import (
    DatasetBlobRow,
    DatasetFileRow,
    DatasetParentRow,
    DatasetRow,
    DatasetTagRow,
    DatasetVersionRow,
)
from shipyard.datasets.types import (
    LATEST,
    ColumnSchema,
    DataFile,
    DatasetCreate,
    DatasetVersion,
    DatasetVersionDetail,
    Lineage,
    Profile,
    ReaderPage,
    RunRef,
    ValidationReport,
    VersionCreate,
    VersionPage,
    VersionRef,
    check_dataset_name,
    check_tag,
    is_latest,
    own_version_not_found,
)
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.paging import next_token, page_offset
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow
from shipyard.tracking.paths import normalize_artifact_path
from shipyard.tracking.tables import RunInputRow, RunRow

MAX_FILES = 100_000
MAX_RESULTS = 1000


def manifest_digest(files: Sequence[DataFile]) -> str:
    """BLAKE3 over the sorted ``path, hash`` pairs: equal digests mean equal data."""
    hasher = blake3()
    for f in sorted(files, key=lambda f: f.path):
        hasher.update(f"{f.path}\0{f.hash}\n".encode())
    return hasher.hexdigest()


def parse_selector(selector: str | int) -> int | str:
    """A version number, or a tag name (``latest`` included)."""
    text = str(selector).strip()
    if text.isdigit():
        if len(text) > 9:  # beyond any version number a dataset can reach (and int32)
            raise NotFound(f"no version {text[:40]}")
        return int(text)
    if is_latest(text):
        return LATEST
    return check_tag(text)


def version_row(session: Session, dataset: DatasetRow, selector: str | int) -> DatasetVersionRow:
    """The version a selector names; NotFound otherwise."""
    wanted = parse_selector(selector)
    stmt: Select[tuple[DatasetVersionRow]] = select(DatasetVersionRow).where(
        DatasetVersionRow.dataset_id == dataset.id
    )
    if isinstance(wanted, int):
        stmt = stmt.where(DatasetVersionRow.version == wanted)
    elif wanted == LATEST:
        stmt = (
            stmt.where(DatasetVersionRow.kind == "data")
            .order_by(DatasetVersionRow.version.desc())
            .limit(1)
        )
    else:
        stmt = stmt.join(DatasetTagRow, DatasetTagRow.version_id == DatasetVersionRow.id).where(
            DatasetTagRow.tag == wanted
        )
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(
            f"dataset {dataset.name!r} has no version {selector!s:.100}",
            {"dataset": dataset.name, "version": str(selector)[:100]},
        )
    return row


def _tags_by_version(session: Session, version_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {v: [] for v in version_ids}
    rows = session.execute(
        select(DatasetTagRow.version_id, DatasetTagRow.tag)
        .where(DatasetTagRow.version_id.in_(version_ids))
        .order_by(DatasetTagRow.tag)
    )
    for version_id, tag in rows:
        tags[version_id].append(tag)
    return tags


def to_api(
    session: Session, dataset: DatasetRow, rows: Sequence[DatasetVersionRow], *, full: bool = True
) -> list[DatasetVersion]:
    """API shapes of version rows; ``full=False`` leaves out profiles and reports."""
    tags = _tags_by_version(session, [r.id for r in rows])
    latest = session.scalar(
        select(func.max(DatasetVersionRow.version)).where(
            DatasetVersionRow.dataset_id == dataset.id, DatasetVersionRow.kind == "data"
        )
    )
    return [
        _version_to_api(
            dataset,
            r,
            ([LATEST] if r.version == latest and r.kind == "data" else []) + tags[r.id],
            full=full,
        )
        for r in rows
    ]


def _version_to_api(
    dataset: DatasetRow, r: DatasetVersionRow, tags: list[str], *, full: bool
) -> DatasetVersion:
    return DatasetVersion(
        id=r.id,
        dataset=dataset.name,
        version=r.version,
        kind=r.kind,  # type: ignore[arg-type]
        digest=r.digest,
        message=r.message,
        source=r.source,
        created_by=r.created_by,
        created_at=r.created_at,
        rows=r.rows,
        bytes=r.bytes,
        file_count=r.file_count,
        columns=[ColumnSchema(**c) for c in r.columns],
        arrow_schema=r.arrow_schema if full else "",
        tags=tags,
        profile=Profile.model_validate(r.profile) if full and r.profile else None,
        profile_state=r.profile_state,
        validation=(
            ValidationReport.model_validate(r.validation) if full and r.validation else None
        ),
    )


def files_of(session: Session, version_id: int) -> list[DataFile]:
    """A version's files in the order its manifest listed them (an append's after its
    parent's): the order its rows are read in."""
    rows = session.scalars(
        select(DatasetFileRow)
        .where(DatasetFileRow.version_id == version_id)
        .order_by(DatasetFileRow.position)
    )
    return [DataFile(path=f.path, hash=f.blob_hash, size=f.size, rows=f.rows) for f in rows]


def version_file(
    platform: Platform, project_id: int, name: str, selector: str | int, path: str
) -> DataFile:
    """One file of a version by its path (without reading the rest of the version)."""
    with platform.db.read() as session:
        row = version_row(session, dataset_row(session, project_id, name), selector)
        found = session.scalar(
            select(DatasetFileRow).where(
                DatasetFileRow.version_id == row.id, DatasetFileRow.path == path
            )
        )
        if found is None:
            raise NotFound(f"version {row.version} of {name!r} has no file {path[:200]!r}")
        return DataFile(path=found.path, hash=found.blob_hash, size=found.size, rows=found.rows)


def _check_files(session: Session, project_id: int, files: Sequence[DataFile]) -> None:
    if not files:
        raise InvalidInput("a version needs at least one file")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a version holds at most {MAX_FILES} files, got {len(files)}")
    seen: set[str] = set()
    for f in files:
        normalize_artifact_path(f.path)
        check_hash(f.hash)
        if f.path in seen:
            raise InvalidInput(f"file {f.path!r} is listed twice")
        seen.add(f.path)
    wanted = {f.hash: f.size for f in files}
    stored: dict[str, int] = {}
    hashes = list(wanted)
    for start in range(0, len(hashes), 1000):
        stored.update(
            (h, size)
            for h, size in session.execute(
                select(DatasetBlobRow.blob_hash, DatasetBlobRow.size).where(
                    DatasetBlobRow.project_id == project_id,
                    DatasetBlobRow.blob_hash.in_(hashes[start : start + 1000]),
                )
            )
        )
    missing = [h for h in wanted if h not in stored]
    if missing:
        raise InvalidInput(
            f"{len(missing)} file(s) are not stored for this project's datasets: upload them "
            f"first (e.g. {missing[0]})",
            {"missing": missing[:20]},
        )
    for f in files:
        if stored[f.hash] != f.size:
            raise InvalidInput(
                f"file {f.path!r}: size {f.size} differs from the stored blob's {stored[f.hash]}"
            )


def _dataset_of_version(
    session: Session, ctx: RequestContext, name: str, *, create: bool
) -> DatasetRow:
    """The dataset a new version goes to, locked; with ``create``, made (in the version's
    transaction) when it does not exist."""
    assert ctx.project_id is not None
    try:
        return dataset_row(session, ctx.project_id, name, lock=True)
    except NotFound:
        if not create:
            raise
    check_dataset_name(name)
    try:
        with session.begin_nested():  # PostgreSQL: a taken name must not end the transaction
            return new_dataset_row(session, ctx, DatasetCreate(name=name))
    except DBIntegrityError:  # made meanwhile by another ingest: its (empty) suite stands
        return dataset_row(session, ctx.project_id, name, lock=True)


def _resolve_parent(
    session: Session, project_id: int, dataset: DatasetRow, ref: str | int
) -> DatasetVersionRow:
    """A parent named by a version number of ``dataset`` or by ``other@selector``."""
    if isinstance(ref, int) or "@" not in str(ref):
        try:
            return version_row(session, dataset, ref)
        except NotFound as exc:
            if isinstance(ref, int):
                raise
            raise own_version_not_found(exc, ref) from None
    name, _, selector = str(ref).partition("@")
    other = dataset_row(session, project_id, check_dataset_name(name))
    return version_row(session, other, selector)


def _recorded_parents(
    session: Session, dataset: DatasetRow, parents: Sequence[tuple[DatasetVersionRow, str]]
) -> list[dict[str, Any]] | None:
    """The parents as a version keeps them named ({dataset, version, digest, relation},
    once each): lineage names them still when their dataset is deleted."""
    if not parents:
        return None
    others = {p.dataset_id for p, _ in parents} - {dataset.id}
    names = {dataset.id: dataset.name}
    if others:
        found = session.execute(
            select(DatasetRow.id, DatasetRow.name).where(DatasetRow.id.in_(others))
        )
        names.update((dataset_id, name) for dataset_id, name in found)
    recorded: dict[int, dict[str, Any]] = {}
    for parent, relation in parents:
        recorded.setdefault(parent.id, {
            "dataset": names[parent.dataset_id], "version": parent.version,
            "digest": parent.digest, "relation": relation,
        })  # fmt: skip
    return list(recorded.values())


def _check_append_base(
    session: Session,
    dataset: DatasetRow,
    parents: Sequence[tuple[DatasetVersionRow, str]],
    append: bool,
) -> None:
    """Conflict when an append's parent is not the dataset's latest version, or when an
    ``append`` with no parent (the client found no version) finds one now: the new
    version would leave out what was recorded since the client looked. The dataset row
    is locked, so no version can be recorded between this check and the new one. The
    details name both versions (``parent`` None for none), for the client to rebuild
    its append on the latest one."""
    bases = [parent for parent, relation in parents if relation == "append"]
    if not bases and not append:
        return
    latest = session.scalar(
        select(func.max(DatasetVersionRow.version)).where(
            DatasetVersionRow.dataset_id == dataset.id, DatasetVersionRow.kind == "data"
        )
    )
    if not bases and latest is not None:
        raise Conflict(
            f"cannot append to {dataset.name!r} as its first version: its latest version "
            f"is {latest} now",
            {"dataset": dataset.name, "parent": None, "latest": latest},
        )
    for parent in bases:
        if parent.version != latest:
            raise Conflict(
                f"cannot append to version {parent.version} of {dataset.name!r}: its latest "
                f"version is {latest} now",
                {"dataset": dataset.name, "parent": parent.version, "latest": latest},
            )


def _check_same_schema(parent: DatasetVersionRow, columns: Sequence[ColumnSchema]) -> None:
    """Conflict when appended data's columns (names and types) differ from its parent's."""
    old = [(c["name"], c["type"]) for c in parent.columns]
    new = [(c.name, c.type) for c in columns]
    if old != new:
        raise schema_conflict(parent.version, old, new)


def create_version(ctx: RequestContext, name: str, spec: VersionCreate) -> DatasetVersion:
    """Record a new version of ``name`` from files the project has stored; its number is
    the next one. The files (in the order given), schema, profile and report are kept as
    given; the file hashes and sizes are checked against the project's stored blobs. An
    append (``parents``) must name the dataset's latest version: Conflict otherwise."""
    assert ctx.project_id is not None
    if not spec.columns:
        raise InvalidInput("a version needs at least one column")
    names = [c.name for c in spec.columns]
    if len(set(names)) != len(names):
        raise InvalidInput("column names must be unique")
    for tag in spec.tags:
        check_tag(tag)
    if spec.profile_state is not None:
        check_hash(spec.profile_state)
    with ctx.platform.db.write() as session:
        dataset = _dataset_of_version(session, ctx, name, create=spec.create_dataset)
        _check_files(session, ctx.project_id, spec.files)
        parents: list[tuple[str | int, str]] = [(v, "append") for v in spec.parents]
        parents += [(r, "derived") for r in spec.parent_refs]
        if spec.quarantine_of is not None:
            if spec.kind != "quarantine":
                raise InvalidInput("quarantine_of is only for versions of kind 'quarantine'")
            parents.append((spec.quarantine_of, "quarantine"))
        parent_rows = [
            (_resolve_parent(session, ctx.project_id, dataset, ref), relation)
            for ref, relation in parents
        ]
        _check_append_base(session, dataset, parent_rows, spec.append)
        for parent, relation in parent_rows:
            if relation == "append":
                _check_same_schema(parent, spec.columns)
        recorded = _recorded_parents(session, dataset, parent_rows)
        number = (
            session.scalar(
                select(func.max(DatasetVersionRow.version)).where(
                    DatasetVersionRow.dataset_id == dataset.id
                )
            )
            or 0
        ) + 1
        now = now_ms()
        row = DatasetVersionRow(
            dataset_id=dataset.id,
            version=number,
            kind=spec.kind,
            digest=manifest_digest(spec.files),
            message=spec.message,
            source=spec.source[:4000],
            created_by=ctx.principal.username,
            created_at=now,
            rows=sum(f.rows for f in spec.files),
            bytes=sum(f.size for f in spec.files),
            file_count=len(spec.files),
            columns=[c.model_dump() for c in spec.columns],
            arrow_schema=spec.arrow_schema,
            profile=spec.profile.model_dump(mode="json") if spec.profile else None,
            profile_state=spec.profile_state,
            validation=spec.validation.model_dump(mode="json") if spec.validation else None,
            recorded_parents=recorded,
        )
        session.add(row)
        session.flush()
        # One Core executemany: ORM objects for a 1,000-file manifest cost more than the
        # rest of the version (re-versioning a folder writes every file's row again).
        session.execute(
            insert(DatasetFileRow.__table__),
            [
                {
                    "version_id": row.id,
                    "path": f.path,
                    "position": position,
                    "blob_hash": f.hash,
                    "size": f.size,
                    "rows": f.rows,
                }
                for position, f in enumerate(spec.files)
            ],
        )
        seen: set[int] = set()
        for parent, relation in parent_rows:
            if parent.id not in seen:
                seen.add(parent.id)
                session.add(
                    DatasetParentRow(child_id=row.id, parent_id=parent.id, relation=relation)
                )
        for tag in dict.fromkeys(spec.tags):
            _move_tag(session, dataset, tag, row.id)
        touch(session, dataset.id, now)
        ctx.audit(
            session,
            "datasets.create_version",
            "dataset_version",
            row.id,
            {
                "dataset": name,
                "version": number,
                "kind": spec.kind,
                "rows": row.rows,
                "files": row.file_count,
                "digest": row.digest,
                "parents": [p.id for p, _ in parent_rows],
            },
        )
        session.flush()
        return to_api(session, dataset, [row])[0]


def list_versions(
    platform: Platform,
    project_id: int,
    name: str,
    *,
    max_results: int = 100,
    page_token: str | None = None,
) -> VersionPage:
    """The dataset's versions, newest first, without profiles and reports."""
    offset = page_offset(max_results, page_token, MAX_RESULTS)
    with platform.db.read() as session:
        dataset = dataset_row(session, project_id, name)
        rows = list(
            session.scalars(
                select(DatasetVersionRow)
                .where(DatasetVersionRow.dataset_id == dataset.id)
                .order_by(DatasetVersionRow.version.desc())
                .offset(offset)
                .limit(max_results + 1)
            )
        )
        versions = to_api(session, dataset, rows[:max_results], full=False)
    return VersionPage(
        versions=versions, next_page_token=next_token(len(rows), offset, max_results)
    )


def latest_versions(
    platform: Platform, project_id: int, names: Sequence[str]
) -> dict[str, DatasetVersion]:
    """Each named dataset's latest data version (without profiles), in two queries
    whatever the number of datasets: for listings that show rows and sizes."""
    if not names:
        return {}
    newest = (
        select(DatasetVersionRow.dataset_id, func.max(DatasetVersionRow.version).label("v"))
        .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
        .where(
            DatasetRow.project_id == project_id,
            DatasetRow.name.in_(list(names)),
            DatasetVersionRow.kind == "data",
        )
        .group_by(DatasetVersionRow.dataset_id)
        .subquery()
    )
    with platform.db.read() as session:
        found = session.execute(
            select(DatasetVersionRow, DatasetRow)
            .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
            .join(
                newest,
                (newest.c.dataset_id == DatasetVersionRow.dataset_id)
                & (newest.c.v == DatasetVersionRow.version),
            )
        ).all()
        tags = _tags_by_version(session, [row.id for row, _ in found])
        return {
            dataset.name: _version_to_api(dataset, row, [LATEST, *tags[row.id]], full=False)
            for row, dataset in found
        }


def get_version(
    platform: Platform, project_id: int, name: str, selector: str | int
) -> DatasetVersionDetail:
    """One version with its files, profile and validation report."""
    with platform.db.read() as session:
        dataset = dataset_row(session, project_id, name)
        row = version_row(session, dataset, selector)
        version = to_api(session, dataset, [row])[0]
        return DatasetVersionDetail(**version.model_dump(), files=files_of(session, row.id))


def _move_tag(session: Session, dataset: DatasetRow, tag: str, version_id: int) -> int | None:
    previous = session.scalar(
        select(DatasetVersionRow.version)
        .join(DatasetTagRow, DatasetTagRow.version_id == DatasetVersionRow.id)
        .where(DatasetTagRow.dataset_id == dataset.id, DatasetTagRow.tag == tag)
    )
    session.execute(
        delete(DatasetTagRow).where(
            DatasetTagRow.dataset_id == dataset.id, DatasetTagRow.tag == tag
        )
    )
    session.add(DatasetTagRow(dataset_id=dataset.id, tag=tag, version_id=version_id))
    return previous


def set_tag(ctx: RequestContext, name: str, tag: str, selector: str | int) -> DatasetVersion:
    """Point ``tag`` at a version, moving it if it pointed elsewhere."""
    assert ctx.project_id is not None
    check_tag(tag)
    with ctx.platform.db.write() as session:
        dataset = dataset_row(session, ctx.project_id, name, lock=True)
        row = version_row(session, dataset, selector)
        previous = _move_tag(session, dataset, tag, row.id)
        touch(session, dataset.id, now_ms())
        ctx.audit(
            session,
            "datasets.set_tag",
            "dataset",
            dataset.id,
            {"dataset": name, "tag": tag, "version": row.version, "previous": previous},
        )
        session.flush()
        return to_api(session, dataset, [row], full=False)[0]


def delete_tag(ctx: RequestContext, name: str, tag: str) -> None:
    """Remove a tag; NotFound when the dataset has no such tag."""
    assert ctx.project_id is not None
    if tag == LATEST or not is_latest(tag):
        # A tag 'LATEST' (any case but 'latest') could be set before that was refused:
        # it can still be removed.
        check_tag(tag)
    with ctx.platform.db.write() as session:
        dataset = dataset_row(session, ctx.project_id, name, lock=True)
        gone = session.execute(
            delete(DatasetTagRow).where(
                DatasetTagRow.dataset_id == dataset.id, DatasetTagRow.tag == tag
            )
        ).rowcount
        if not gone:
            raise NotFound(f"dataset {name!r} has no tag {tag!r}")
        touch(session, dataset.id, now_ms())
        ctx.audit(
            session, "datasets.delete_tag", "dataset", dataset.id, {"dataset": name, "tag": tag}
        )


def delete_version_rows(session: Session, version_ids: Any) -> None:
    """Delete versions with their files, tags and lineage edges (``version_ids``: a list
    or a select of ids)."""
    session.execute(delete(DatasetFileRow).where(DatasetFileRow.version_id.in_(version_ids)))
    session.execute(delete(DatasetTagRow).where(DatasetTagRow.version_id.in_(version_ids)))
    session.execute(
        delete(DatasetParentRow).where(
            DatasetParentRow.child_id.in_(version_ids) | DatasetParentRow.parent_id.in_(version_ids)
        )
    )
    session.execute(delete(DatasetVersionRow).where(DatasetVersionRow.id.in_(version_ids)))


# --- lineage -------------------------------------------------------------------------------


def _refs(rows: Any) -> list[VersionRef]:
    return [
        VersionRef(project=project, dataset=dataset, version=version, relation=relation)
        for project, dataset, version, relation in rows
    ]


LINEAGE_RUNS = 100
"""Most runs a lineage lists (the newest): a popular version may be read by thousands."""
MAX_READERS_PAGE = 1000


def _reader_rows(session: Session, version_id: int, offset: int, limit: int) -> list[RunRef]:
    """Runs that read a version, newest first, ``limit`` of them from ``offset``."""
    rows = session.execute(
        select(RunRow.id, RunRow.experiment_id, RunRow.name, RunInputRow.context, RunRow.lifecycle)
        .join(RunInputRow, RunInputRow.run_id == RunRow.id)
        .where(RunInputRow.dataset_version_id == version_id)
        .order_by(RunRow.start_time.desc(), RunRow.id)
        .offset(offset)
        .limit(limit)
    )
    return [
        RunRef(run_id=r, experiment_id=e, name=n or "", context=c or "", lifecycle=lc)
        for r, e, n, c, lc in rows
    ]


def lineage(platform: Platform, project_id: int, name: str, selector: str | int) -> Lineage:
    """The version's parents and children, and the newest :data:`LINEAGE_RUNS` runs
    that read it, with their total count."""
    with platform.db.read() as session:
        dataset = dataset_row(session, project_id, name)
        row = version_row(session, dataset, selector)
        project = session.scalar(select(ProjectRow.name).where(ProjectRow.id == project_id))
        assert project is not None

        def edges(mine: Any, other: Any) -> list[VersionRef]:
            stmt = (
                select(
                    ProjectRow.name,
                    DatasetRow.name,
                    DatasetVersionRow.version,
                    DatasetParentRow.relation,
                )
                .join(DatasetVersionRow, DatasetVersionRow.id == other)
                .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
                .join(ProjectRow, ProjectRow.id == DatasetRow.project_id)
                .where(mine == row.id)
                .order_by(DatasetRow.name, DatasetVersionRow.version)
            )
            return _refs(session.execute(stmt))

        total = session.scalar(
            select(func.count())
            .select_from(RunInputRow)
            .where(RunInputRow.dataset_version_id == row.id)
        )
        parents = edges(DatasetParentRow.child_id, DatasetParentRow.parent_id)
        return Lineage(
            version=VersionRef(project=project, dataset=name, version=row.version),
            parents=parents + _deleted_parents(project, row, parents),
            children=edges(DatasetParentRow.parent_id, DatasetParentRow.child_id),
            runs=_reader_rows(session, row.id, 0, LINEAGE_RUNS),
            runs_total=total or 0,
        )


def _deleted_parents(
    project: str, row: DatasetVersionRow, live: Sequence[VersionRef]
) -> list[VersionRef]:
    """The parents ``row`` recorded when it was made that are gone (their dataset or
    version deleted since), named as they were, with their digest."""
    present = {(ref.dataset, ref.version) for ref in live}
    return [
        VersionRef(
            project=project,
            dataset=p["dataset"],
            version=p["version"],
            relation=p["relation"],
            digest=p["digest"],
            deleted=True,
        )
        for p in row.recorded_parents or ()
        if (p["dataset"], p["version"]) not in present
    ]


def readers(
    platform: Platform,
    project_id: int,
    name: str,
    selector: str | int,
    *,
    max_results: int = 100,
    page_token: str | None = None,
) -> ReaderPage:
    """Every run that read the version, newest first, one page at a time."""
    offset = page_offset(max_results, page_token, MAX_READERS_PAGE)
    with platform.db.read() as session:
        row = version_row(session, dataset_row(session, project_id, name), selector)
        found = _reader_rows(session, row.id, offset, max_results + 1)
    return ReaderPage(
        runs=found[:max_results], next_page_token=next_token(len(found), offset, max_results)
    )
