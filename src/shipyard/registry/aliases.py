"""Aliases: movable names (``champion``, ``challenger``) pointing at one version of a model."""

from __future__ import annotations

from sqlalchemy import delete, select

from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.errors import NotFound
from shipyard.registry.models import model_row, touch
from shipyard.registry.tables import ModelAliasRow, ModelVersionRow
from shipyard.registry.types import ModelVersion, check_alias
from shipyard.registry.versions import version_row, version_to_api


def set_alias(ctx: RequestContext, name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` at ``version``, moving it if it pointed elsewhere."""
    assert ctx.project_id is not None
    check_alias(alias)
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        target = version_row(session, model, str(version))
        previous = session.scalar(
            select(ModelVersionRow.version)
            .join(ModelAliasRow, ModelAliasRow.version_id == ModelVersionRow.id)
            .where(ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias)
        )
        session.execute(
            delete(ModelAliasRow).where(
                ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
            )
        )
        session.add(ModelAliasRow(model_id=model.id, alias=alias, version_id=target.id))
        touch(session, model.id, now_ms())
        ctx.audit(
            session,
            "models.set_alias",
            "registered_model",
            model.id,
            {"model": name, "alias": alias, "version": version, "previous": previous},
        )
        session.flush()
        return version_to_api(session, name, target)


def delete_alias(ctx: RequestContext, name: str, alias: str, *, missing_ok: bool = False) -> None:
    """Remove an alias; NotFound when the model has no such alias (unless ``missing_ok``,
    MLflow's behaviour: then nothing changes and nothing is audited)."""
    assert ctx.project_id is not None
    check_alias(alias)
    with ctx.platform.db.write() as session:
        model = model_row(session, ctx.project_id, name, lock=True)
        version = session.scalar(
            select(ModelVersionRow.version)
            .join(ModelAliasRow, ModelAliasRow.version_id == ModelVersionRow.id)
            .where(ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias)
        )
        if version is None:
            if missing_ok:
                return
            raise NotFound(f"registered model {name!r} has no alias {alias!r}")
        session.execute(
            delete(ModelAliasRow).where(
                ModelAliasRow.model_id == model.id, ModelAliasRow.alias == alias
            )
        )
        touch(session, model.id, now_ms())
        ctx.audit(
            session,
            "models.delete_alias",
            "registered_model",
            model.id,
            {"model": name, "alias": alias, "version": version},
        )
