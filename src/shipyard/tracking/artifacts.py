"""Run artifacts: a run's files, each a path under the run pointing at a blob.

The metadata store maps (run, path) to a blob hash; the bytes live in the blob
store under that hash, so identical files are stored once and a user's path
never becomes a storage path. A path is either a file or a folder (the folders
are implied by the files' paths), never both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.blobs import BlobRef
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound
from shipyard.platform import Platform
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.paths import normalize_artifact_path, normalize_artifact_prefix
from shipyard.tracking.tables import ArtifactRow, RunRow
from shipyard.tracking.upserts import dialect_insert


def _run(session: Session, run_id: str) -> RunRow:
    run = session.get(RunRow, run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} not found")
    return run


def path_clash(
    session: Session, path_column: Any, owner: ColumnElement[bool], path: str
) -> tuple[str | None, bool]:
    """Whether a new file at ``path`` clashes with the owner's stored files: the stored
    file that is a folder of ``path`` (or None), and whether ``path`` is a folder."""
    segments = path.split("/")
    ancestors = ["/".join(segments[:i]) for i in range(1, len(segments))]
    file_above = None
    if ancestors:
        file_above = session.scalar(
            select(path_column).where(owner, path_column.in_(ancestors)).limit(1)
        )
    is_folder = session.scalar(
        select(exists().where(owner, path_column.startswith(f"{path}/", autoescape=True)))
    )
    return file_above, bool(is_folder)


def _check_writable(session: Session, run_id: str, path: str) -> None:
    run = _run(session, run_id)
    if run.lifecycle == "deleted":
        raise Conflict(f"run {run_id} is deleted: restore it before adding artifacts")
    file_above, is_folder = path_clash(
        session, ArtifactRow.path, ArtifactRow.run_id == run_id, path
    )
    if file_above is not None:
        raise Conflict(f"artifact {file_above!r} is a file, so {path!r} cannot be under it")
    if is_folder:
        raise Conflict(f"artifact {path!r} is a folder; it cannot be replaced by a file")


def check_upload(platform: Platform, run_id: str, path: str) -> str:
    """Refuse an upload before any byte is read: bad path, unknown or deleted run, or a
    path that clashes with a file or folder. Returns the checked path."""
    path = normalize_artifact_path(path)
    with platform.db.read() as session:
        _check_writable(session, run_id, path)
    return path


def record_upload(ctx: RequestContext, run_id: str, path: str, blob: BlobRef) -> ArtifactInfo:
    """Point ``path`` of the run at a stored blob, replacing any earlier file there."""
    path = normalize_artifact_path(path)
    values = {
        "run_id": run_id,
        "path": path,
        "blob_hash": blob.hash,
        "size": blob.size,
        "created_at": now_ms(),
    }
    with ctx.platform.db.write() as session:
        _check_writable(session, run_id, path)
        stmt = dialect_insert(session, ArtifactRow.__table__).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={k: stmt.excluded[k] for k in ("blob_hash", "size", "created_at")},
        )
        session.execute(stmt)
        ctx.audit(
            session,
            "artifacts.upload",
            "run",
            run_id,
            {"path": path, "hash": blob.hash, "size": blob.size},
        )
    return ArtifactInfo(path=path, is_dir=False, size=blob.size, hash=blob.hash)


def _rows_under(session: Session, run_id: str, prefix: str) -> list[tuple[str, str, int]]:
    stmt = select(ArtifactRow.path, ArtifactRow.blob_hash, ArtifactRow.size).where(
        ArtifactRow.run_id == run_id
    )
    if prefix:
        stmt = stmt.where(ArtifactRow.path.startswith(f"{prefix}/", autoescape=True))
    # Sorted here, not in SQL: PostgreSQL collations order "/" differently from SQLite.
    return sorted((p, h, s) for p, h, s in session.execute(stmt))


def _file(session: Session, run_id: str, path: str) -> ArtifactRow | None:
    return session.get(ArtifactRow, (run_id, path))


def files_under(session: Session, run_id: str, prefix: str) -> list[tuple[str, str, int]]:
    """Every file under the folder ``prefix`` ('' = the whole run), recursively, as
    (path relative to ``prefix``, blob hash, size), sorted by path. When ``prefix``
    is a file, that one file relative to its folder. Empty when nothing is there."""
    prefix = normalize_artifact_prefix(prefix)
    if prefix:
        row = _file(session, run_id, prefix)
        if row is not None:
            return [(prefix.rsplit("/", 1)[-1], row.blob_hash, row.size)]
    cut = len(prefix) + 1 if prefix else 0
    return [(p[cut:], h, s) for p, h, s in _rows_under(session, run_id, prefix)]


def list_artifacts(
    platform: Platform, run_id: str, prefix: str | None = "", *, recursive: bool = False
) -> list[ArtifactInfo]:
    """The direct children of folder ``prefix`` like ``ls`` (every file below it when
    ``recursive``); a file path lists that file. NotFound for a path that is neither."""
    prefix = normalize_artifact_prefix(prefix)
    with platform.db.read() as session:
        _run(session, run_id)
        if prefix:
            row = _file(session, run_id, prefix)
            if row is not None:
                return [ArtifactInfo(path=prefix, size=row.size, hash=row.blob_hash)]
        rows = _rows_under(session, run_id, prefix)
    if prefix and not rows:
        raise NotFound(f"run {run_id} has no artifact {prefix!r}")
    if recursive:
        return [ArtifactInfo(path=p, size=s, hash=h) for p, h, s in rows]
    base = f"{prefix}/" if prefix else ""
    out: list[ArtifactInfo] = []
    seen_dirs: set[str] = set()
    for path, digest, size in rows:
        child, sep, _ = path[len(base) :].partition("/")
        if not sep:
            out.append(ArtifactInfo(path=path, size=size, hash=digest))
        elif child not in seen_dirs:
            seen_dirs.add(child)
            out.append(ArtifactInfo(path=base + child, is_dir=True))
    return sorted(out, key=lambda a: a.path)


def get_file(platform: Platform, run_id: str, path: str) -> ArtifactInfo:
    """One file of the run (NotFound for an unknown run, a folder or a missing path)."""
    path = normalize_artifact_path(path)
    with platform.db.read() as session:
        _run(session, run_id)
        row = _file(session, run_id, path)
    if row is None:
        raise NotFound(f"run {run_id} has no artifact file {path!r}")
    return ArtifactInfo(path=path, size=row.size, hash=row.blob_hash)
