"""Registered models: create, get, search, describe, tag, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, not_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.db.patterns import contains_text
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.paging import next_token, page_offset
from shipyard.platform import Platform
from shipyard.registry.tables import (
    ModelAliasRow,
    ModelTagRow,
    ModelVersionFileRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
)
from shipyard.registry.types import (
    DELETED_STATUS,
    Condition,
    ModelPage,
    RegisteredModel,
    RegisteredModelCreate,
    check_description,
    check_model_name,
    check_tags,
)
from shipyard.tracking.search import CaseSensitiveLike

# A model without this tag is not a prompt: MLflow clients add
# ``tags.`mlflow.prompt.is_prompt` != 'true'`` to every model search.
PROMPT_TAG = "mlflow.prompt.is_prompt"

MAX_RESULTS = 1000
_ORDER_FIELDS = {
    "name": RegisteredModelRow.name,
    "updated_at": RegisteredModelRow.updated_at,
    "created_at": RegisteredModelRow.created_at,
}


def model_row(
    session: Session, project_id: int, name: str, *, lock: bool = False
) -> RegisteredModelRow:
    """The model named ``name`` in the project; NotFound otherwise.

    ``lock`` takes a row lock (PostgreSQL) so that changes to one model's
    versions and aliases are serialized.
    """
    stmt = select(RegisteredModelRow).where(
        RegisteredModelRow.project_id == project_id, RegisteredModelRow.name == name
    )
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"registered model {name!r} not found", {"model": name})
    return row


def touch(session: Session, model_id: int, at: int) -> None:
    """Mark a model as changed now (search orders by it)."""
    session.execute(
        update(RegisteredModelRow).where(RegisteredModelRow.id == model_id).values(updated_at=at)
    )


def _to_api(session: Session, rows: Sequence[RegisteredModelRow]) -> list[RegisteredModel]:
    """API shapes of ``rows``, with tags, aliases and latest versions in three queries."""
    ids = [r.id for r in rows]
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    latest: dict[int, int] = {}
    if ids:
        for model_id, key, value in session.execute(
            select(ModelTagRow.model_id, ModelTagRow.key, ModelTagRow.value).where(
                ModelTagRow.model_id.in_(ids)
            )
        ):
            tags[model_id][key] = value
        for model_id, alias, version in session.execute(
            select(ModelAliasRow.model_id, ModelAliasRow.alias, ModelVersionRow.version)
            .join(ModelVersionRow, ModelVersionRow.id == ModelAliasRow.version_id)
            .where(ModelAliasRow.model_id.in_(ids))
            .order_by(ModelAliasRow.alias)
        ):
            aliases[model_id][alias] = version
        latest = dict(
            session.execute(
                select(ModelVersionRow.model_id, func.max(ModelVersionRow.version))
                .where(ModelVersionRow.model_id.in_(ids), ModelVersionRow.status != DELETED_STATUS)
                .group_by(ModelVersionRow.model_id)
            ).all()
        )
    return [
        RegisteredModel(
            id=r.id,
            project_id=r.project_id,
            name=r.name,
            description=r.description,
            created_at=r.created_at,
            updated_at=r.updated_at,
            tags=tags[r.id],
            aliases=aliases[r.id],
            latest_version=latest.get(r.id),
        )
        for r in rows
    ]


def create_model(ctx: RequestContext, spec: RegisteredModelCreate) -> RegisteredModel:
    """Register a new, empty model; Conflict when the name is taken in the project."""
    assert ctx.project_id is not None
    check_tags(spec.tags)
    taken = Conflict(f"registered model {spec.name!r} already exists", {"model": spec.name})
    with ctx.platform.db.write() as session:
        if session.scalar(
            select(RegisteredModelRow.id).where(
                RegisteredModelRow.project_id == ctx.project_id,
                RegisteredModelRow.name == spec.name,
            )
        ):
            raise taken
        now = now_ms()
        row = RegisteredModelRow(
            project_id=ctx.project_id,
            name=spec.name,
            description=spec.description,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        try:
            session.flush()
        except DBIntegrityError:
            raise taken from None
        session.add_all(ModelTagRow(model_id=row.id, key=k, value=v) for k, v in spec.tags.items())
        ctx.audit(session, "models.create", "registered_model", row.id, {"name": spec.name})
        session.flush()
        return _to_api(session, [row])[0]


def get_model(platform: Platform, project_id: int, name: str) -> RegisteredModel:
    """One registered model by name."""
    with platform.db.read() as session:
        return _to_api(session, [model_row(session, project_id, name)])[0]


def order_clauses(order_by: Sequence[str], fields: dict[str, Any]) -> list[Any]:
    """ORDER BY clauses for items ``"<field> [ASC|DESC]"``; InvalidInput naming the
    valid fields otherwise."""
    clauses = []
    for item in order_by:
        field, _, direction = item.strip().partition(" ")
        direction = direction.strip().upper() or "ASC"
        column = fields.get(field.strip())
        if column is None or direction not in ("ASC", "DESC"):
            raise InvalidInput(
                f"invalid order_by {item!r}: use one of {sorted(fields)} "
                "optionally followed by ASC or DESC"
            )
        clauses.append(column.desc() if direction == "DESC" else column.asc())
    return clauses


def _order(stmt: Select, order_by: Sequence[str] | None) -> Select:  # type: ignore[type-arg]
    return stmt.order_by(*order_clauses(order_by or ["name"], _ORDER_FIELDS), RegisteredModelRow.id)


def _tag_filter(spec: str):  # type: ignore[no-untyped-def]
    key, eq, value = spec.partition("=")
    if not key:
        raise InvalidInput(f"invalid tag filter {spec!r}: use 'key' or 'key=value'")
    cond = and_(ModelTagRow.model_id == RegisteredModelRow.id, ModelTagRow.key == key)
    if eq:
        cond = and_(cond, ModelTagRow.value == value)
    return exists().where(cond)


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column op value`` for a search :class:`Condition` (LIKE case-sensitive on
    every backend, ILIKE not); InvalidInput for an operator that does not apply."""
    if op in ("IN", "NOT IN"):
        values = list(value) if isinstance(value, tuple) else [value]
        return column.in_(values) if op == "IN" else column.not_in(values)
    if op == "LIKE":
        return CaseSensitiveLike(column, str(value))
    if op == "ILIKE":
        return column.ilike(str(value), escape="\\")  # type: ignore[no-any-return]
    ops = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    if op not in ops:
        raise InvalidInput(f"unsupported comparison {op!r}")
    return ops[op](value)  # type: ignore[no-any-return]


def tag_condition(tag_table: Any, owner: Any, cond: Condition) -> ColumnElement[bool]:
    """``cond`` on a tag: true when the tag is set and its value compares true.

    ``tag_table`` is ModelTagRow or ModelVersionTagRow, ``owner`` the column its
    owner id joins on. The prompt marker is the exception MLflow makes: a model
    without it is not a prompt, so it matches ``!= 'true'`` and ``= 'false'``.
    """
    owner_col = tag_table.model_id if tag_table is ModelTagRow else tag_table.version_id
    base = and_(owner_col == owner, tag_table.key == cond.key)
    matched = exists().where(base, compare(tag_table.value, cond.op, cond.value))
    if cond.key == PROMPT_TAG and (
        (cond.op == "!=" and cond.value == "true") or (cond.op == "=" and cond.value == "false")
    ):
        return matched | not_(exists().where(base))  # type: ignore[no-any-return]
    return matched


def _model_conditions(stmt: Select, conditions: Sequence[Condition]) -> Select:  # type: ignore[type-arg]
    for cond in conditions:
        if cond.field == "name":
            stmt = stmt.where(compare(RegisteredModelRow.name, cond.op, cond.value))
        elif cond.field == "tag":
            stmt = stmt.where(tag_condition(ModelTagRow, RegisteredModelRow.id, cond))
        else:
            raise InvalidInput(f"models cannot be searched by {cond.field!r}: use name or tags")
    return stmt


def search_models(
    platform: Platform,
    project_id: int,
    *,
    query: str | None = None,
    name_like: str | None = None,
    tags: Sequence[str] = (),
    conditions: Sequence[Condition] = (),
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> ModelPage:
    """Models of the project matching every given condition, one page at a time.

    ``query`` matches a substring of the name, ``name_like`` is a LIKE pattern
    (``%`` and ``_``); both ignore case on every backend. Each of ``tags`` is
    ``key`` (the tag is set) or ``key=value``. ``conditions`` (on ``name`` and
    ``tag``) are the MLflow protocol's filter.
    """
    offset = page_offset(max_results, page_token, MAX_RESULTS)
    stmt = select(RegisteredModelRow).where(RegisteredModelRow.project_id == project_id)
    if query:
        stmt = stmt.where(contains_text(RegisteredModelRow.name, query))
    if name_like:
        stmt = stmt.where(RegisteredModelRow.name.ilike(name_like))
    for spec in tags:
        stmt = stmt.where(_tag_filter(spec))
    stmt = _model_conditions(stmt, conditions)
    stmt = _order(stmt, order_by).offset(offset).limit(max_results + 1)
    with platform.db.read() as session:
        rows = list(session.scalars(stmt))
        models = _to_api(session, rows[:max_results])
    return ModelPage(models=models, next_page_token=next_token(len(rows), offset, max_results))


def update_model(ctx: RequestContext, name: str, description: str) -> RegisteredModel:
    """Change a model's description."""
    assert ctx.project_id is not None
    check_description(description)
    with ctx.platform.db.write() as session:
        row = model_row(session, ctx.project_id, name)
        row.description = description
        row.updated_at = now_ms()
        ctx.audit(session, "models.update", "registered_model", row.id, {"name": name})
        session.flush()
        return _to_api(session, [row])[0]


def rename_model(ctx: RequestContext, name: str, new_name: str) -> RegisteredModel:
    """Give a model a new name; its versions, aliases and tags follow it.

    Conflict when the new name is taken in the project. References by the old
    name (``old@champion``) stop resolving, as they would after a delete.
    """
    assert ctx.project_id is not None
    check_model_name(new_name)
    taken = Conflict(f"registered model {new_name!r} already exists", {"model": new_name})
    with ctx.platform.db.write() as session:
        row = model_row(session, ctx.project_id, name, lock=True)
        if new_name == name:
            return _to_api(session, [row])[0]
        if session.scalar(
            select(RegisteredModelRow.id).where(
                RegisteredModelRow.project_id == ctx.project_id,
                RegisteredModelRow.name == new_name,
            )
        ):
            raise taken
        row.name = new_name
        row.updated_at = now_ms()
        try:
            session.flush()
        except DBIntegrityError:
            raise taken from None
        ctx.audit(
            session,
            "models.rename",
            "registered_model",
            row.id,
            {"name": name, "new_name": new_name},
        )
        return _to_api(session, [row])[0]


def delete_model(ctx: RequestContext, name: str) -> None:
    """Delete a model with all its versions, aliases and tags (the blobs stay: runs own them)."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        row = model_row(session, ctx.project_id, name, lock=True)
        version_ids = select(ModelVersionRow.id).where(ModelVersionRow.model_id == row.id)
        count = session.scalar(
            select(func.count())
            .select_from(ModelVersionRow)
            .where(ModelVersionRow.model_id == row.id)
        )
        # Explicit deletes rather than ON DELETE CASCADE: the ORM session and
        # both backends then agree on what is gone.
        session.execute(delete(ModelAliasRow).where(ModelAliasRow.model_id == row.id))
        session.execute(delete(ModelTagRow).where(ModelTagRow.model_id == row.id))
        session.execute(
            delete(ModelVersionTagRow).where(ModelVersionTagRow.version_id.in_(version_ids))
        )
        session.execute(
            delete(ModelVersionFileRow).where(ModelVersionFileRow.version_id.in_(version_ids))
        )
        session.execute(delete(ModelVersionRow).where(ModelVersionRow.model_id == row.id))
        session.execute(delete(RegisteredModelRow).where(RegisteredModelRow.id == row.id))
        ctx.audit(
            session, "models.delete", "registered_model", row.id, {"name": name, "versions": count}
        )


def set_model_tags(ctx: RequestContext, name: str, tags: dict[str, str]) -> RegisteredModel:
    """Set (add or overwrite) tags of a model."""
    assert ctx.project_id is not None
    check_tags(tags)
    with ctx.platform.db.write() as session:
        row = model_row(session, ctx.project_id, name, lock=True)
        if tags:
            session.execute(
                delete(ModelTagRow).where(
                    ModelTagRow.model_id == row.id, ModelTagRow.key.in_(list(tags))
                )
            )
            session.add_all(ModelTagRow(model_id=row.id, key=k, value=v) for k, v in tags.items())
        row.updated_at = now_ms()
        ctx.audit(
            session, "models.set_tags", "registered_model", row.id, {"name": name, "tags": tags}
        )
        session.flush()
        return _to_api(session, [row])[0]


def delete_model_tag(ctx: RequestContext, name: str, key: str, *, missing_ok: bool = False) -> None:
    """Remove one tag of a model; NotFound when it is not set (unless ``missing_ok``,
    MLflow's behaviour: then nothing changes and nothing is audited)."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        row = model_row(session, ctx.project_id, name, lock=True)
        result = session.execute(
            delete(ModelTagRow).where(ModelTagRow.model_id == row.id, ModelTagRow.key == key)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            if missing_ok:
                return
            raise NotFound(f"model {name!r} has no tag {key!r}")
        row.updated_at = now_ms()
        ctx.audit(
            session, "models.delete_tag", "registered_model", row.id, {"name": name, "key": key}
        )
