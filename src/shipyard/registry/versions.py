"""Model versions: made from a run's artifacts or an MLflow logged model, numbered per
model, resolved by reference.

A version's files are rows pointing at the blobs the run's artifacts (or the logged
model's files) already hold: registering copies metadata, never bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import Select, and_, delete, func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.int64 import numeric_id
from shipyard.paging import next_token, page_offset
from shipyard.platform import Platform
from shipyard.registry.models import (
    MAX_RESULTS,
    compare,
    model_row,
    order_clauses,
    tag_condition,
    touch,
)
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
    STAGE_TAG,
    Condition,
    ModelFile,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
    VersionPage,
    canonical_stage,
    check_alias,
    check_description,
    check_tags,
)
from shipyard.tracking.artifacts import files_under
from shipyard.tracking.logged_models import logged_model_files, logged_model_row
from shipyard.tracking.paths import normalize_artifact_prefix
from shipyard.tracking.tables import ExperimentRow, LoggedModelRow, RunRow

# Concurrent creators may pick the same next number; the unique constraint
# refuses all but one and the others try again.
_CREATE_ATTEMPTS = 8
_MAX_DESCRIPTOR_BYTES = 1024 * 1024
# MLflow clients ask for up to 200,000 versions in one page by default.
MAX_VERSION_RESULTS = 200_000
_VERSION_ORDER_FIELDS = {
    "name": RegisteredModelRow.name,
    "version": ModelVersionRow.version,
    "created_at": ModelVersionRow.created_at,
    "updated_at": ModelVersionRow.updated_at,
}


def version_row(session: Session, model: RegisteredModelRow, selector: str) -> ModelVersionRow:
    """The live version a selector names: a number, an alias, or ``latest``; NotFound otherwise."""
    stmt = select(ModelVersionRow).where(
        ModelVersionRow.model_id == model.id, ModelVersionRow.status != DELETED_STATUS
    )
    number = numeric_id(selector, "version")
    if number is not None:
        what = f"version {number}"
        stmt = stmt.where(ModelVersionRow.version == number)
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
    model_name: str | Mapping[int, str],
    rows: Sequence[ModelVersionRow],
    *,
    with_files: bool = False,
) -> list[ModelVersion]:
    """API shapes of ``rows`` (all of one model, or ``model_name`` maps model ids to
    names), with tags and aliases (and files) in one query each."""
    names = model_name if isinstance(model_name, Mapping) else None
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
            model_name=names[r.model_id] if names is not None else model_name,
            version=r.version,
            run_id=r.run_id,
            source_path=r.source_path,
            logged_model_id=r.logged_model_id,
            source_uri=r.source_uri,
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


def _run_files(
    session: Session, project_id: int, run_id: str, source_path: str
) -> list[tuple[str, str, int]]:
    """The files under ``source_path`` in the run's artifacts; the run must be live and
    in the project."""
    run = session.execute(
        select(RunRow.lifecycle, ExperimentRow.project_id)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .where(RunRow.id == run_id)
    ).first()
    # A run of another project is reported like a missing one: the caller
    # may have no right to know it exists.
    if run is None or run.project_id != project_id:
        raise NotFound(f"run {run_id!r} not found in this project", {"run_id": run_id})
    if run.lifecycle != "active":
        raise InvalidInput(f"run {run_id!r} is deleted", {"run_id": run_id})
    files = files_under(session, run_id, source_path)
    if not files:
        raise InvalidInput(
            f"run {run_id!r} has no artifacts under {source_path or '/'!r}",
            {"run_id": run_id, "source_path": source_path},
        )
    return files


def _logged_model_files(
    session: Session, project_id: int, spec: ModelVersionCreate, source_path: str
) -> tuple[str | None, list[tuple[str, str, int]]]:
    """The logged model's run and its files under ``source_path`` ('' = all of them).

    Only a live, finalized (``ready``) logged model of the project qualifies: a
    pending one may still be receiving files.
    """
    assert spec.logged_model_id is not None
    model_id = spec.logged_model_id
    try:
        row: LoggedModelRow | None = logged_model_row(session, model_id)
    except NotFound:
        row = None
    # One of another project is reported like a missing one, as for runs.
    if row is None or project_id != session.scalar(
        select(ExperimentRow.project_id).where(ExperimentRow.id == row.experiment_id)
    ):
        raise NotFound(
            f"logged model {model_id!r} not found in this project", {"logged_model_id": model_id}
        )
    if row.lifecycle != "active":
        raise InvalidInput(f"logged model {model_id!r} is deleted", {"logged_model_id": model_id})
    if row.status != "ready":
        raise InvalidInput(
            f"logged model {model_id!r} is {row.status}: only a ready (finalized) logged "
            "model can be registered",
            {"logged_model_id": model_id},
        )
    if spec.run_id is not None and spec.run_id != row.run_id:
        raise InvalidInput(
            f"run {spec.run_id!r} is not the run of logged model {model_id!r}",
            {"run_id": spec.run_id, "logged_model_id": model_id},
        )
    files = _under(logged_model_files(session, model_id), source_path)
    if not files:
        raise InvalidInput(
            f"logged model {model_id!r} has no files under {source_path or '/'!r}",
            {"logged_model_id": model_id, "source_path": source_path},
        )
    return row.run_id, files


def _under(files: list[tuple[str, str, int]], prefix: str) -> list[tuple[str, str, int]]:
    """``files`` under the folder ``prefix``, relative to it; a file path, that one file
    relative to its folder (as :func:`files_under` does for run artifacts)."""
    if not prefix:
        return files
    for path, digest, size in files:
        if path == prefix:
            return [(path.rsplit("/", 1)[-1], digest, size)]
    cut = len(prefix) + 1
    return [(p[cut:], h, s) for p, h, s in files if p.startswith(prefix + "/")]


def _source_files(
    ctx: RequestContext, name: str, spec: ModelVersionCreate, source_path: str
) -> tuple[str | None, list[tuple[str, str, int]], str]:
    """Check the model and the source; the version's run and files, and its flavor."""
    assert ctx.project_id is not None
    with ctx.platform.db.read() as session:
        model_row(session, ctx.project_id, name)
        if spec.logged_model_id is not None:
            run_id, files = _logged_model_files(session, ctx.project_id, spec, source_path)
        else:
            assert spec.run_id is not None
            run_id = spec.run_id
            files = _run_files(session, ctx.project_id, run_id, source_path)
    return run_id, files, _read_flavor(ctx.platform, files)


def default_source_uri(run_id: str | None, logged_model_id: str | None, source_path: str) -> str:
    """The source of a version in MLflow's words, when no MLflow client gave one:
    ``models:/<logged model id>`` or ``runs:/<run id>/<path>``."""
    if logged_model_id is not None:
        return f"models:/{logged_model_id}" + (f"/{source_path}" if source_path else "")
    return f"runs:/{run_id}/{source_path}"


def create_version(
    ctx: RequestContext, name: str, spec: ModelVersionCreate, *, source_uri: str = ""
) -> ModelVersion:
    """Register files as the model's next version: the run's artifacts under
    ``spec.source_path`` (default ``model``), or a logged model's files (under
    ``spec.source_path``, default all of them).

    ``source_uri`` is the source as an MLflow client named it; without one, the
    version records :func:`default_source_uri`.
    """
    assert ctx.project_id is not None
    check_tags(spec.tags)
    default_path = "" if spec.logged_model_id is not None else "model"
    source_path = normalize_artifact_prefix(
        spec.source_path if spec.source_path is not None else default_path
    )
    run_id, files, flavor = _source_files(ctx, name, spec, source_path)
    source_uri = source_uri or default_source_uri(run_id, spec.logged_model_id, source_path)
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
                    run_id=run_id,
                    source_path=source_path,
                    logged_model_id=spec.logged_model_id,
                    source_uri=source_uri,
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
                details = {"model": name, "version": number, "run_id": run_id, "files": len(files)}
                if spec.logged_model_id is not None:
                    details["logged_model_id"] = spec.logged_model_id
                ctx.audit(session, "models.create_version", "model_version", row.id, details)
                session.flush()
                return version_to_api(session, name, row)
        except DBIntegrityError:
            continue
    raise Conflict(f"could not number a new version of {name!r}: too many concurrent writers")


def list_versions(
    platform: Platform,
    project_id: int,
    name: str,
    *,
    max_results: int = 100,
    page_token: str | None = None,
) -> VersionPage:
    """A model's live versions, newest first, one page at a time (without file lists)."""
    offset = page_offset(max_results, page_token, MAX_RESULTS)
    with platform.db.read() as session:
        model = model_row(session, project_id, name)
        rows = list(
            session.scalars(
                select(ModelVersionRow)
                .where(
                    ModelVersionRow.model_id == model.id, ModelVersionRow.status != DELETED_STATUS
                )
                .order_by(ModelVersionRow.version.desc())
                .offset(offset)
                .limit(max_results + 1)
            )
        )
        found = _to_api(session, name, rows[:max_results])
    return VersionPage(versions=found, next_page_token=next_token(len(rows), offset, max_results))


def _version_conditions(stmt: Select, conditions: Sequence[Condition]) -> Select:  # type: ignore[type-arg]
    columns = {
        "name": RegisteredModelRow.name,
        "version": ModelVersionRow.version,
        "run_id": ModelVersionRow.run_id,
        "source_path": ModelVersionRow.source_uri,
    }
    for cond in conditions:
        if cond.field == "tag":
            stmt = stmt.where(tag_condition(ModelVersionTagRow, ModelVersionRow.id, cond))
        else:
            stmt = stmt.where(compare(columns[cond.field], cond.op, cond.value))
    return stmt


def search_versions(
    platform: Platform,
    project_id: int,
    *,
    conditions: Sequence[Condition] = (),
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> VersionPage:
    """Live versions of every model of the project matching all ``conditions``, one page
    at a time (without file lists).

    ``order_by`` items are ``name``, ``version``, ``created_at`` or ``updated_at``,
    each optionally followed by ASC or DESC; ties go by name, then newest version.
    ``source_path`` conditions compare the version's source URI.
    """
    offset = page_offset(max_results, page_token, MAX_VERSION_RESULTS)
    stmt = (
        select(ModelVersionRow, RegisteredModelRow.name)
        .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
        .where(
            RegisteredModelRow.project_id == project_id, ModelVersionRow.status != DELETED_STATUS
        )
    )
    stmt = _version_conditions(stmt, conditions)
    clauses = order_clauses(order_by or [], _VERSION_ORDER_FIELDS)
    stmt = stmt.order_by(
        *clauses, RegisteredModelRow.name, ModelVersionRow.version.desc(), ModelVersionRow.id
    )
    stmt = stmt.offset(offset).limit(max_results + 1)
    with platform.db.read() as session:
        found = session.execute(stmt).all()
        page = found[:max_results]
        names = {row.model_id: name for row, name in page}
        versions = _to_api(session, names, [row for row, _ in page])
    return VersionPage(
        versions=versions, next_page_token=next_token(len(found), offset, max_results)
    )


def latest_by_stage(
    platform: Platform, models: Sequence[RegisteredModel]
) -> dict[int, list[ModelVersion]]:
    """For each model (by id): its newest live version in each stage it has versions in
    (MLflow's ``latest_versions``; a version without a stage tag is in stage "None")."""
    ids = [m.id for m in models]
    out: dict[int, list[ModelVersion]] = {i: [] for i in ids}
    if not ids:
        return out
    live = and_(ModelVersionRow.model_id.in_(ids), ModelVersionRow.status != DELETED_STATUS)
    with platform.db.read() as session:
        newest = session.execute(
            select(ModelVersionRow.model_id, func.max(ModelVersionRow.version))
            .outerjoin(
                ModelVersionTagRow,
                and_(
                    ModelVersionTagRow.version_id == ModelVersionRow.id,
                    ModelVersionTagRow.key == STAGE_TAG,
                ),
            )
            .where(live)
            # Grouped by the raw tag value: NULL (no tag) is one group of its own.
            .group_by(ModelVersionRow.model_id, ModelVersionTagRow.value)
        ).all()
        wanted = {(model_id, version) for model_id, version in newest}
        if not wanted:
            return out
        rows = [
            r
            for r in session.scalars(
                select(ModelVersionRow)
                .where(live, ModelVersionRow.version.in_({v for _, v in wanted}))
                .order_by(ModelVersionRow.model_id, ModelVersionRow.version)
            )
            if (r.model_id, r.version) in wanted
        ]
        owner = {r.id: r.model_id for r in rows}
        for version in _to_api(session, {m.id: m.name for m in models}, rows):
            out[owner[version.id]].append(version)
    return out


def _set_stage(session: Session, version_id: int, stage: str) -> None:
    session.execute(
        delete(ModelVersionTagRow).where(
            ModelVersionTagRow.version_id == version_id, ModelVersionTagRow.key == STAGE_TAG
        )
    )
    if stage != "None":
        session.add(ModelVersionTagRow(version_id=version_id, key=STAGE_TAG, value=stage))


def transition_stage(
    ctx: RequestContext, name: str, selector: str, stage: str, *, archive_existing: bool = False
) -> ModelVersion:
    """Move a version to an MLflow stage (None, Staging, Production, Archived), kept as
    its ``mlflow.stage`` tag. ``archive_existing`` moves the model's other versions in
    that stage to Archived (only for Staging and Production, as in MLflow)."""
    assert ctx.project_id is not None
    stage = canonical_stage(stage)
    if archive_existing and stage not in ("Staging", "Production"):
        raise InvalidInput(
            f"archive_existing_versions applies to the Staging and Production stages, not {stage!r}"
        )
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        row = version_row(session, model, selector)
        now = now_ms()
        archived: list[int] = []
        if archive_existing:
            others = session.scalars(
                select(ModelVersionRow)
                .join(ModelVersionTagRow, ModelVersionTagRow.version_id == ModelVersionRow.id)
                .where(
                    ModelVersionRow.model_id == model.id,
                    ModelVersionRow.id != row.id,
                    ModelVersionRow.status != DELETED_STATUS,
                    ModelVersionTagRow.key == STAGE_TAG,
                    ModelVersionTagRow.value == stage,
                )
            ).all()
            for other in others:
                _set_stage(session, other.id, "Archived")
                other.updated_at = now
                archived.append(other.version)
        _set_stage(session, row.id, stage)
        row.updated_at = now
        touch(session, model.id, now)
        ctx.audit(
            session,
            "models.transition_stage",
            "model_version",
            row.id,
            {"model": name, "version": row.version, "stage": stage, "archived": archived},
        )
        session.flush()
        return version_to_api(session, name, row)


def source_unchanged(platform: Platform, version: ModelVersion) -> bool:
    """Whether the version's source (its run's folder, or its logged model) still holds
    exactly the version's files: what a client that reads the source instead of the
    version (the MLflow protocol's download URI) would get. ``version`` carries files."""
    assert version.files is not None, "needs a version with its files"
    with platform.db.read() as session:
        if version.logged_model_id is not None:
            current = _under(
                logged_model_files(session, version.logged_model_id), version.source_path
            )
        elif version.run_id is not None:
            current = files_under(session, version.run_id, version.source_path)
        else:
            return False
    recorded = [(f.path, f.hash, f.size) for f in version.files]
    return sorted(current) == sorted(recorded)


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
    check_description(description)
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


def delete_version_tag(
    ctx: RequestContext, name: str, selector: str, key: str, *, missing_ok: bool = False
) -> None:
    """Remove one tag of a version; NotFound when it is not set (unless ``missing_ok``,
    MLflow's behaviour: then nothing changes and nothing is audited)."""
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
            if missing_ok:
                return
            raise NotFound(f"{name} version {row.version} has no tag {key!r}")
        row.updated_at = now_ms()
        ctx.audit(
            session,
            "models.delete_version_tag",
            "model_version",
            row.id,
            {"model": name, "version": row.version, "key": key},
        )
