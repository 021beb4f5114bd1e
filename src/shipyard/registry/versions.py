"""Model versions: made from a run's artifacts, numbered per model, resolved by reference.

A version's files are rows pointing at the blobs the run's artifacts already
hold: registering copies metadata, never bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.registry.models import check_tags, model_row, touch
from shipyard.registry.tables import (
    ModelAliasRow,
    ModelVersionFileRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
)
from shipyard.registry.types import (
    DELETED_STATUS,
    DESCRIPTOR,
    ModelFile,
    ModelVersion,
    ModelVersionCreate,
    check_alias,
)
from shipyard.tracking.artifacts import files_under
from shipyard.tracking.paths import normalize_artifact_prefix
from shipyard.tracking.tables import ExperimentRow, RunRow

# Concurrent creators may pick the same next number; the unique constraint
# refuses all but one and the others try again.
_CREATE_ATTEMPTS = 8
_MAX_DESCRIPTOR_BYTES = 1024 * 1024


def version_row(session: Session, model: RegisteredModelRow, selector: str) -> ModelVersionRow:
    """The live version a selector names: a number, an alias, or ``latest``; NotFound otherwise."""
    stmt = select(ModelVersionRow).where(
        ModelVersionRow.model_id == model.id, ModelVersionRow.status != DELETED_STATUS
    )
    if selector.isdigit():
        stmt = stmt.where(ModelVersionRow.version == int(selector))
        what = f"version {int(selector)}"
    elif selector == "latest":
        stmt = stmt.order_by(ModelVersionRow.version.desc()).limit(1)
        what = "any version"
    else:
        check_alias(selector)
        stmt = stmt.join(ModelAliasRow, ModelAliasRow.version_id == ModelVersionRow.id).where(
            ModelAliasRow.alias == selector
        )
        what = f"alias {selector!r}"
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"registered model {model.name!r} has no {what}", {"model": model.name})
    return row


def _to_api(
    session: Session,
    model_name: str,
    rows: Sequence[ModelVersionRow],
    *,
    with_files: bool = False,
) -> list[ModelVersion]:
    ids = [r.id for r in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, list[str]] = {i: [] for i in ids}
    files: dict[int, list[ModelFile]] = {i: [] for i in ids}
    if ids:
        for vid, key, value in session.execute(
            select(
                ModelVersionTagRow.version_id, ModelVersionTagRow.key, ModelVersionTagRow.value
            ).where(ModelVersionTagRow.version_id.in_(ids))
        ):
            tags[vid][key] = value
        for vid, alias in session.execute(
            select(ModelAliasRow.version_id, ModelAliasRow.alias)
            .where(ModelAliasRow.version_id.in_(ids))
            .order_by(ModelAliasRow.alias)
        ):
            aliases[vid].append(alias)
        if with_files:
            for f in session.scalars(
                select(ModelVersionFileRow)
                .where(ModelVersionFileRow.version_id.in_(ids))
                .order_by(ModelVersionFileRow.path)
            ):
                files[f.version_id].append(ModelFile(path=f.path, hash=f.blob_hash, size=f.size))
    return [
        ModelVersion(
            id=r.id,
            model_name=model_name,
            version=r.version,
            run_id=r.run_id,
            source_path=r.source_path,
            flavor=r.flavor,
            description=r.description,
            status=r.status,
            created_by=r.created_by,
            created_at=r.created_at,
            updated_at=r.updated_at,
            tags=tags[r.id],
            aliases=aliases[r.id],
            files=files[r.id] if with_files else None,
        )
        for r in rows
    ]


def version_to_api(session: Session, model_name: str, row: ModelVersionRow) -> ModelVersion:
    """One version with its files."""
    return _to_api(session, model_name, [row], with_files=True)[0]


def _read_flavor(platform: Platform, files: list[tuple[str, str, int]]) -> str:
    """The flavor named by the version's descriptor; '' when it has none."""
    descriptor = next(((h, s) for p, h, s in files if p == DESCRIPTOR), None)
    if descriptor is None:
        return ""
    blob_hash, size = descriptor
    if size > _MAX_DESCRIPTOR_BYTES:
        raise InvalidInput(f"{DESCRIPTOR} is too large ({size} bytes)")
    try:
        data = orjson.loads(platform.blobs.read_bytes(blob_hash))
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{DESCRIPTOR} is not valid JSON") from None
    flavor = data.get("flavor") if isinstance(data, dict) else None
    if not isinstance(flavor, str) or not 0 < len(flavor) <= 50:
        raise InvalidInput(f"{DESCRIPTOR} has no valid 'flavor' field")
    return flavor


def _source_files(
    ctx: RequestContext, name: str, spec: ModelVersionCreate
) -> tuple[list[tuple[str, str, int]], str]:
    """Check the model and the run, and list the files the version will hold."""
    assert ctx.project_id is not None
    with ctx.platform.db.read() as session:
        model_row(session, ctx.project_id, name)
        run = session.execute(
            select(RunRow.lifecycle, ExperimentRow.project_id)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(RunRow.id == spec.run_id)
        ).first()
        # A run of another project is reported like a missing one: the caller
        # may have no right to know it exists.
        if run is None or run.project_id != ctx.project_id:
            raise NotFound(
                f"run {spec.run_id!r} not found in this project", {"run_id": spec.run_id}
            )
        if run.lifecycle != "active":
            raise InvalidInput(f"run {spec.run_id!r} is deleted", {"run_id": spec.run_id})
        files = files_under(session, spec.run_id, spec.source_path)
    if not files:
        raise InvalidInput(
            f"run {spec.run_id!r} has no artifacts under {spec.source_path or '/'!r}",
            {"run_id": spec.run_id, "source_path": spec.source_path},
        )
    return files, _read_flavor(ctx.platform, files)


def create_version(ctx: RequestContext, name: str, spec: ModelVersionCreate) -> ModelVersion:
    """Register the run's files under ``spec.source_path`` as the model's next version."""
    assert ctx.project_id is not None
    check_tags(spec.tags)
    spec = spec.model_copy(update={"source_path": normalize_artifact_prefix(spec.source_path)})
    files, flavor = _source_files(ctx, name, spec)
    for _ in range(_CREATE_ATTEMPTS):
        try:
            with ctx.platform.db.write() as session:
                model = model_row(session, ctx.project_id, name, lock=True)
                number = 1 + (
                    session.scalar(
                        select(func.max(ModelVersionRow.version)).where(
                            ModelVersionRow.model_id == model.id
                        )
                    )
                    or 0
                )
                now = now_ms()
                row = ModelVersionRow(
                    model_id=model.id,
                    version=number,
                    run_id=spec.run_id,
                    source_path=spec.source_path,
                    flavor=flavor,
                    description=spec.description,
                    status="ready",
                    created_by=ctx.principal.username,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                session.add_all(
                    ModelVersionFileRow(version_id=row.id, path=p, blob_hash=h, size=s)
                    for p, h, s in files
                )
                session.add_all(
                    ModelVersionTagRow(version_id=row.id, key=k, value=v)
                    for k, v in spec.tags.items()
                )
                touch(session, model.id, now)
                ctx.audit(
                    session,
                    "models.create_version",
                    "model_version",
                    row.id,
                    {"model": name, "version": number, "run_id": spec.run_id, "files": len(files)},
                )
                session.flush()
                return version_to_api(session, name, row)
        except DBIntegrityError:
            continue
    raise Conflict(f"could not number a new version of {name!r}: too many concurrent writers")


def list_versions(platform: Platform, project_id: int, name: str) -> list[ModelVersion]:
    """Every version of a model, newest first (without their file lists)."""
    with platform.db.read() as session:
        model = model_row(session, project_id, name)
        rows = list(
            session.scalars(
                select(ModelVersionRow)
                .where(
                    ModelVersionRow.model_id == model.id, ModelVersionRow.status != DELETED_STATUS
                )
                .order_by(ModelVersionRow.version.desc())
            )
        )
        return _to_api(session, name, rows)


def get_version(platform: Platform, project_id: int, name: str, selector: str) -> ModelVersion:
    """One version, with its files, by number, alias or ``latest``."""
    with platform.db.read() as session:
        model = model_row(session, project_id, name)
        return version_to_api(session, name, version_row(session, model, selector))


def version_file(
    platform: Platform, project_id: int, name: str, selector: str, path: str
) -> ModelFile:
    """One file of a version; NotFound when the version has no such file."""
    with platform.db.read() as session:
        model = model_row(session, project_id, name)
        version = version_row(session, model, selector)
        row = session.get(ModelVersionFileRow, (version.id, path))
        if row is None:
            raise NotFound(f"{name} version {version.version} has no file {path[:200]!r}")
        return ModelFile(path=row.path, hash=row.blob_hash, size=row.size)


def update_version(ctx: RequestContext, name: str, selector: str, description: str) -> ModelVersion:
    """Change a version's description."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name)
        row = version_row(session, model, selector)
        row.description = description
        row.updated_at = now_ms()
        ctx.audit(
            session,
            "models.update_version",
            "model_version",
            row.id,
            {"model": name, "version": row.version},
        )
        session.flush()
        return version_to_api(session, name, row)


def delete_version(ctx: RequestContext, name: str, selector: str) -> None:
    """Delete a version and the aliases pointing at it (the blobs stay: the run owns them).

    The row stays behind as a tombstone (status ``deleted``) so that its number
    is never given to another version: ``name/3`` must not change meaning.
    """
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        row = version_row(session, model, selector)
        aliases = list(
            session.scalars(select(ModelAliasRow.alias).where(ModelAliasRow.version_id == row.id))
        )
        session.execute(delete(ModelAliasRow).where(ModelAliasRow.version_id == row.id))
        session.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.version_id == row.id))
        session.execute(delete(ModelVersionFileRow).where(ModelVersionFileRow.version_id == row.id))
        now = now_ms()
        row.status = DELETED_STATUS
        row.updated_at = now
        touch(session, model.id, now)
        ctx.audit(
            session,
            "models.delete_version",
            "model_version",
            row.id,
            {"model": name, "version": row.version, "aliases_removed": aliases},
        )


def set_version_tags(
    ctx: RequestContext, name: str, selector: str, tags: dict[str, str]
) -> ModelVersion:
    """Set (add or overwrite) tags of a version."""
    assert ctx.project_id is not None
    check_tags(tags)
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        row = version_row(session, model, selector)
        if tags:
            session.execute(
                delete(ModelVersionTagRow).where(
                    ModelVersionTagRow.version_id == row.id, ModelVersionTagRow.key.in_(list(tags))
                )
            )
            session.add_all(
                ModelVersionTagRow(version_id=row.id, key=k, value=v) for k, v in tags.items()
            )
        row.updated_at = now_ms()
        ctx.audit(
            session,
            "models.set_version_tags",
            "model_version",
            row.id,
            {"model": name, "version": row.version, "tags": tags},
        )
        session.flush()
        return version_to_api(session, name, row)


def delete_version_tag(ctx: RequestContext, name: str, selector: str, key: str) -> None:
    """Remove one tag of a version; NotFound when it is not set."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        row = version_row(session, model, selector)
        result = session.execute(
            delete(ModelVersionTagRow).where(
                ModelVersionTagRow.version_id == row.id, ModelVersionTagRow.key == key
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"{name} version {row.version} has no tag {key!r}")
        row.updated_at = now_ms()
        ctx.audit(
            session,
            "models.delete_version_tag",
            "model_version",
            row.id,
            {"model": name, "version": row.version, "key": key},
        )
