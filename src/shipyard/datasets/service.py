"""Datasets: create, get, list, describe, set expectations, delete; and the blobs a
project stores for them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.blobs import BlobRef
from shipyard.blobs.store import check_hash
from shipyard.clock import now_ms
from shipyard.datasets.tables import (
    DatasetBlobRow,
    DatasetRow,
    DatasetTagRow,
    DatasetVersionRow,
)
from shipyard.datasets.types import (
    LATEST,
    Dataset,
    DatasetCreate,
    DatasetPage,
    ExpectationSuite,
    check_dataset_name,
)
from shipyard.db.patterns import contains_text
from shipyard.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from shipyard.paging import next_token, page_offset
from shipyard.platform import Platform
from shipyard.tracking.tables import RunInputRow
from shipyard.tracking.upserts import dialect_insert

MAX_RESULTS = 1000
MAX_HASHES = 10_000
"""Hashes per missing/register request: a folder of 10,000 files in one round trip."""


def dataset_row(session: Session, project_id: int, name: str, *, lock: bool = False) -> DatasetRow:
    """The dataset named ``name`` in the project; NotFound otherwise. ``lock`` serializes
    changes to one dataset's versions and tags (a row lock on PostgreSQL)."""
    stmt = select(DatasetRow).where(DatasetRow.project_id == project_id, DatasetRow.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"dataset {name!r} not found", {"dataset": name})
    return row


def suite_of(row: DatasetRow) -> ExpectationSuite:
    """The dataset's stored expectation suite."""
    return ExpectationSuite.model_validate(row.expectations or {})


def check_suite(suite: ExpectationSuite, schema_of: str | None = None) -> ExpectationSuite:
    """Refuse a suite that could never be judged (bad regex, bad SQL, min > max, unknown
    types); with ``schema_of``, a version's stored Arrow schema, also SQL that does not
    run on its columns (an unknown function, not a boolean)."""
    from shipyard.datasets.schema import schema_from_text
    from shipyard.datasets.validation import check_suite as check

    check(suite, schema_from_text(schema_of) if schema_of else None)
    return suite


def _latest_schema(session: Session, dataset_id: int) -> str | None:
    """The stored Arrow schema of the dataset's newest data version, if any."""
    return session.scalar(
        select(DatasetVersionRow.arrow_schema)
        .where(DatasetVersionRow.dataset_id == dataset_id, DatasetVersionRow.kind == "data")
        .order_by(DatasetVersionRow.version.desc())
        .limit(1)
    )


def tags_of(session: Session, dataset_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each dataset's tags as ``tag -> version number``, ``latest`` included."""
    tags: dict[int, dict[str, int]] = {i: {} for i in dataset_ids}
    if not dataset_ids:
        return tags
    latest = session.execute(
        select(DatasetVersionRow.dataset_id, func.max(DatasetVersionRow.version))
        .where(DatasetVersionRow.dataset_id.in_(dataset_ids), DatasetVersionRow.kind == "data")
        .group_by(DatasetVersionRow.dataset_id)
    )
    for dataset_id, version in latest:
        tags[dataset_id][LATEST] = version
    named = session.execute(
        select(DatasetTagRow.dataset_id, DatasetTagRow.tag, DatasetVersionRow.version)
        .join(DatasetVersionRow, DatasetVersionRow.id == DatasetTagRow.version_id)
        .where(DatasetTagRow.dataset_id.in_(dataset_ids))
        .order_by(DatasetTagRow.tag)
    )
    for dataset_id, tag, version in named:
        tags[dataset_id][tag] = version
    return tags


def to_api(session: Session, rows: Sequence[DatasetRow]) -> list[Dataset]:
    """API shapes of dataset rows (two queries in all, whatever their number)."""
    tags = tags_of(session, [r.id for r in rows])
    return [
        Dataset(
            id=r.id,
            name=r.name,
            description=r.description,
            expectations=suite_of(r),
            tags=tags[r.id],
            latest_version=tags[r.id].get(LATEST),
            created_at=r.created_at,
            created_by=r.created_by,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def touch(session: Session, dataset_id: int, at: int) -> None:
    """Mark a dataset as changed now (listings order by it)."""
    session.execute(update(DatasetRow).where(DatasetRow.id == dataset_id).values(updated_at=at))


def create_dataset(ctx: RequestContext, spec: DatasetCreate) -> Dataset:
    """A new, empty dataset; Conflict when the name is taken in the project."""
    assert ctx.project_id is not None
    check_dataset_name(spec.name)
    check_suite(spec.expectations)
    taken = Conflict(f"dataset {spec.name!r} already exists", {"dataset": spec.name})
    with ctx.platform.db.write() as session:
        exists = session.scalar(
            select(DatasetRow.id).where(
                DatasetRow.project_id == ctx.project_id, DatasetRow.name == spec.name
            )
        )
        if exists:
            raise taken
        try:
            row = new_dataset_row(session, ctx, spec)
        except DBIntegrityError:
            raise taken from None
        return to_api(session, [row])[0]


def new_dataset_row(session: Session, ctx: RequestContext, spec: DatasetCreate) -> DatasetRow:
    """Add the dataset ``spec`` describes to ``session`` (flushed: IntegrityError when
    the name is taken meanwhile) and audit it. Callers check the name and suite."""
    assert ctx.project_id is not None
    now = now_ms()
    row = DatasetRow(
        project_id=ctx.project_id,
        name=spec.name,
        description=spec.description,
        expectations=spec.expectations.model_dump(mode="json"),
        created_by=ctx.principal.username,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    ctx.audit(session, "datasets.create", "dataset", row.id, {"name": spec.name})
    return row


def get_dataset(platform: Platform, project_id: int, name: str) -> Dataset:
    """One dataset by name, with its tags and expectations."""
    with platform.db.read() as session:
        return to_api(session, [dataset_row(session, project_id, name)])[0]


def list_datasets(
    platform: Platform,
    project_id: int,
    *,
    query: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> DatasetPage:
    """The project's datasets, most recently changed first; ``query`` is a substring of
    the name (any case)."""
    offset = page_offset(max_results, page_token, MAX_RESULTS)
    stmt = select(DatasetRow).where(DatasetRow.project_id == project_id)
    if query:
        stmt = stmt.where(contains_text(DatasetRow.name, query))
    stmt = stmt.order_by(DatasetRow.updated_at.desc(), DatasetRow.id.desc())
    with platform.db.read() as session:
        rows = list(session.scalars(stmt.offset(offset).limit(max_results + 1)))
        datasets = to_api(session, rows[:max_results])
    return DatasetPage(
        datasets=datasets, next_page_token=next_token(len(rows), offset, max_results)
    )


def update_dataset(
    ctx: RequestContext,
    name: str,
    *,
    description: str | None = None,
    expectations: ExpectationSuite | None = None,
) -> Dataset:
    """Change the description and/or the expectation suite (checked before it is kept)."""
    assert ctx.project_id is not None
    if expectations is not None:
        with ctx.platform.db.read() as session:  # judged on the data it will meet next
            found = dataset_row(session, ctx.project_id, name)
            check_suite(expectations, _latest_schema(session, found.id))
    with ctx.platform.db.write() as session:
        row = dataset_row(session, ctx.project_id, name, lock=True)
        details: dict[str, Any] = {"name": name}
        if description is not None:
            row.description = description
            details["description"] = description[:200]
        if expectations is not None:
            row.expectations = expectations.model_dump(mode="json")
            details["expectations"] = len(expectations.expectations)
            details["policy"] = expectations.policy
        row.updated_at = now_ms()
        ctx.audit(session, "datasets.update", "dataset", row.id, details)
        session.flush()
        return to_api(session, [row])[0]


def delete_dataset(ctx: RequestContext, name: str) -> None:
    """Delete a dataset with its versions and tags. Runs that read its versions keep
    their input rows (name, version and digest, shown as deleted) but lose the link."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        row = dataset_row(session, ctx.project_id, name, lock=True)
        version_ids = select(DatasetVersionRow.id).where(DatasetVersionRow.dataset_id == row.id)
        session.execute(
            update(RunInputRow)
            .where(RunInputRow.dataset_version_id.in_(version_ids))
            .values(dataset_version_id=None)
        )
        versions = session.scalar(
            select(func.count())
            .select_from(DatasetVersionRow)
            .where(DatasetVersionRow.dataset_id == row.id)
        )
        # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on.
        from shipyard.datasets.versions import delete_version_rows

        delete_version_rows(session, version_ids)
        session.execute(delete(DatasetTagRow).where(DatasetTagRow.dataset_id == row.id))
        session.delete(row)
        ctx.audit(
            session, "datasets.delete", "dataset", row.id, {"name": name, "versions": versions}
        )


# --- the project's dataset blobs -------------------------------------------------------


def _check_hashes(hashes: Sequence[str]) -> list[str]:
    if len(hashes) > MAX_HASHES:
        raise InvalidInput(f"at most {MAX_HASHES} hashes per request, got {len(hashes)}")
    return [check_hash(h) for h in hashes]


def missing_blobs(platform: Platform, project_id: int, hashes: Sequence[str]) -> list[str]:
    """Which of ``hashes`` (one request's: at most :data:`MAX_HASHES`) the project has
    not stored for its datasets (to upload)."""
    return _not_held(platform, project_id, _check_hashes(hashes))


def _not_held(platform: Platform, project_id: int, wanted: Sequence[str]) -> list[str]:
    """Which of the checked hashes ``wanted`` the project has not stored, in order."""
    known: set[str] = set()
    with platform.db.read() as session:
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            known.update(
                session.scalars(
                    select(DatasetBlobRow.blob_hash).where(
                        DatasetBlobRow.project_id == project_id,
                        DatasetBlobRow.blob_hash.in_(chunk),
                    )
                )
            )
    return [h for h in dict.fromkeys(wanted) if h not in known]


def register_blobs(session: Session, project_id: int, blobs: dict[str, int]) -> None:
    """Record ``hash -> size`` as stored by the project (idempotent)."""
    if not blobs:
        return
    now = now_ms()
    stmt = dialect_insert(session, DatasetBlobRow.__table__).on_conflict_do_nothing(
        index_elements=["project_id", "blob_hash"]
    )
    session.execute(
        stmt,
        [
            {"project_id": project_id, "blob_hash": h, "size": size, "created_at": now}
            for h, size in blobs.items()
        ],
    )


def claim_stored_blobs(ctx: RequestContext, hashes: Sequence[str]) -> list[str]:
    """Record blobs that are already in the blob store as the project's own.

    Only for in-process (embedded) callers, which write the shared blob store directly:
    they hold the store anyway. Over the network a client must upload the bytes, so a
    hash learnt elsewhere never opens another project's data. Returns the hashes that
    are not in the store (nothing is recorded for those).
    """
    assert ctx.project_id is not None
    # Blobs the project holds already need nothing (re-versioning a folder of 1,000
    # files with 10 changed claims 1,000, of which 990 are its own).
    wanted = missing_blobs(ctx.platform, ctx.project_id, hashes)
    sizes: dict[str, int] = {}
    absent: list[str] = []
    for digest in wanted:
        try:
            sizes[digest] = ctx.platform.blobs.size(digest)
        except NotFound:
            absent.append(digest)
    if not sizes:
        return absent
    with ctx.platform.db.write() as session:
        register_blobs(session, ctx.project_id, sizes)
        ctx.audit(session, "datasets.claim_blobs", "project", ctx.project_id, {"blobs": len(sizes)})
    return absent


def record_upload(ctx: RequestContext, digest: str, blob: BlobRef) -> None:
    """Keep an uploaded blob as the project's, after checking it is the announced one.

    A body whose hash differs is refused; its blob stays unreferenced (content-addressed
    storage never lets it stand in for the announced hash)."""
    assert ctx.project_id is not None
    if blob.hash != digest:
        raise InvalidInput(
            f"uploaded content has BLAKE3 {blob.hash}, not the announced {digest}",
            {"expected": digest, "actual": blob.hash},
        )
    _keep_blob(ctx, "datasets.upload_blob", blob)


def join_blob(ctx: RequestContext, digest: str, pieces: Sequence[tuple[str, int]]) -> BlobRef:
    """Keep blob ``digest`` as the project's, stored as the join of ``pieces``
    (``(hash, size)`` each) that the project holds already: a remote client sends a
    large file's new pieces only, then this. The store reads the joined bytes and
    checks them against ``digest`` (:meth:`BlobStore.join_pieces`), so a list of the
    project's own pieces never opens a blob it does not hold."""
    assert ctx.project_id is not None
    check_hash(digest)
    limit = ctx.platform.settings.max_artifact_bytes
    if sum(n for _, n in pieces) > limit:
        raise PayloadTooLarge(f"blob {digest} would be larger than the limit of {limit} bytes")
    hashes = [check_hash(h) for h in dict.fromkeys(h for h, _ in pieces)]
    not_held = _not_held(ctx.platform, ctx.project_id, hashes)
    if not_held:
        raise InvalidInput(
            f"blob {digest} cannot be joined: upload its pieces first "
            f"({len(not_held)} of {len(hashes)} are not the project's)",
            {"missing": not_held},
        )
    blob = ctx.platform.blobs.join_pieces(digest, pieces)
    _keep_blob(ctx, "datasets.join_blob", blob, pieces=len(pieces))
    return blob


def _keep_blob(ctx: RequestContext, action: str, blob: BlobRef, **details: object) -> None:
    """Record a stored blob as the project's, audited as ``action``."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        register_blobs(session, ctx.project_id, {blob.hash: blob.size})
        details = {"hash": blob.hash, "size": blob.size, **details}
        ctx.audit(session, action, "project", ctx.project_id, details)


def project_blob_size(platform: Platform, project_id: int, digest: str) -> int:
    """Size of a blob the project stored for its datasets; NotFound for any other hash."""
    check_hash(digest)
    with platform.db.read() as session:
        size = session.scalar(
            select(DatasetBlobRow.size).where(
                DatasetBlobRow.project_id == project_id, DatasetBlobRow.blob_hash == digest
            )
        )
    if size is None:
        raise NotFound(f"no dataset file {digest} in this project")
    return size
