"""MLflow's model-registry REST API (``/api/2.0/mlflow/registered-models/...`` and
``/api/2.0/mlflow/model-versions/...``) over Shipyard's registry services.

Every model and version is an ordinary Shipyard one: the same rows, audit events and
permissions as the native routes (reading needs READ, changing WRITE, deleting a whole
registered model MANAGE). The project is the tracking URI's (``/projects/<name>``, or
the default project at the root). Stage transitions, deprecated in MLflow, are kept
as the ``mlflow.stage`` version tag (see :mod:`shipyard.mlflow_compat.registry`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.mlflow_compat import registry as translate
from shipyard.mlflow_compat.protocol import (
    Message,
    field,
    int_field,
    list_field,
    message_of,
    string_field,
    text_field,
    url_message,
)
from shipyard.mlflow_compat.tracking import key_values, validated
from shipyard.registry import aliases, models, versions
from shipyard.registry.types import (
    STAGE_TAG,
    ModelVersionCreate,
    RegisteredModelCreate,
    canonical_stage,
    check_alias,
    check_model_name,
)
from shipyard.server.responses import FastJSON

router = APIRouter(tags=["mlflow"])

MODELS = "/api/2.0/mlflow/registered-models"
VERSIONS = "/api/2.0/mlflow/model-versions"

# Default page sizes of MLflow's server.
_MODEL_PAGE = 100
_VERSION_PAGE = 10_000


def _pid(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


def _name(message: Message, key: str = "name") -> str:
    """A model name from the message (required), checked by the registry's rule."""
    return check_model_name(str(field(message, key)))


def _text(message: Message, key: str) -> str:
    """An optional string field, "" when absent (see :func:`text_field`)."""
    return text_field(message, key) or ""


def _tag(message: Message) -> dict[str, str]:
    """The one tag a set-tag message sets (key and value strings, as MLflow asserts)."""
    return {string_field(message, "key"): _text(message, "value")}


def _model(ctx: RequestContext, name: str) -> dict[str, Any]:
    model = models.get_model(ctx.platform, _pid(ctx), name)
    return translate.models_to_mlflow(ctx.platform, [model])[0]


def _ok() -> FastJSON:
    return FastJSON({})


# --- registered models ----------------------------------------------------------------------


@router.post(MODELS + "/create")
def create_registered_model(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    spec = validated(
        RegisteredModelCreate,
        {
            "name": _name(msg),
            "description": _text(msg, "description"),
            "tags": dict(key_values(msg, "tags")),
        },
    )
    created = models.create_model(ctx, spec)
    return FastJSON({"registered_model": translate.model_to_mlflow(created, [])})


@router.get(MODELS + "/get")
def get_registered_model(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    return FastJSON({"registered_model": _model(ctx, _name(message_of(request)))})


@router.post(MODELS + "/rename")
def rename_registered_model(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    renamed = models.rename_model(ctx, _name(msg), _name(msg, "new_name"))
    return FastJSON({"registered_model": _model(ctx, renamed.name)})


@router.patch(MODELS + "/update")
def update_registered_model(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    updated = models.update_model(ctx, _name(msg), _text(msg, "description"))
    return FastJSON({"registered_model": _model(ctx, updated.name)})


@router.delete(MODELS + "/delete")
def delete_registered_model(
    request: Request, ctx: RequestContext = require(Action.MANAGE, url_message)
) -> FastJSON:
    models.delete_model(ctx, _name(message_of(request)))
    return _ok()


@router.get(MODELS + "/search")
def search_registered_models(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    page = models.search_models(
        ctx.platform,
        _pid(ctx),
        conditions=translate.model_filter(_text(msg, "filter")),
        order_by=translate.model_order(list_field(msg, "order_by")),
        max_results=int_field(msg, "max_results", default=_MODEL_PAGE) or _MODEL_PAGE,
        page_token=_text(msg, "page_token") or None,
    )
    body: dict[str, Any] = {
        "registered_models": translate.models_to_mlflow(ctx.platform, page.models)
    }
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return FastJSON(body)


@router.get(MODELS + "/get-latest-versions")
@router.post(MODELS + "/get-latest-versions")
def get_latest_versions(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    """The newest version in each stage asked for (every stage when none is)."""
    msg = message_of(request)
    stages = {canonical_stage(str(s)) for s in list_field(msg, "stages")}
    model = models.get_model(ctx.platform, _pid(ctx), _name(msg))
    latest = versions.latest_by_stage(ctx.platform, [model])[model.id]
    chosen = [v for v in latest if not stages or v.tags.get(STAGE_TAG, "None") in stages]
    return FastJSON({"model_versions": [translate.version_to_mlflow(v) for v in chosen]})


@router.post(MODELS + "/set-tag")
def set_registered_model_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    models.set_model_tags(ctx, _name(msg), _tag(msg))
    return _ok()


@router.delete(MODELS + "/delete-tag")
def delete_registered_model_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    """Removing a tag that is not set changes nothing and succeeds, as in MLflow."""
    msg = message_of(request)
    models.delete_model_tag(ctx, _name(msg), str(field(msg, "key")), missing_ok=True)
    return _ok()


@router.post(MODELS + "/alias")
def set_registered_model_alias(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    selector = translate.version_selector(field(msg, "version"))
    aliases.set_alias(ctx, _name(msg), check_alias(str(field(msg, "alias"))), int(selector))
    return _ok()


@router.delete(MODELS + "/alias")
def delete_registered_model_alias(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    """Removing an alias that is not set changes nothing and succeeds, as in MLflow."""
    msg = message_of(request)
    aliases.delete_alias(ctx, _name(msg), str(field(msg, "alias")), missing_ok=True)
    return _ok()


@router.get(MODELS + "/alias")
def get_model_version_by_alias(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    alias = check_alias(str(field(msg, "alias")))
    version = versions.get_version(ctx.platform, _pid(ctx), _name(msg), alias)
    return FastJSON({"model_version": translate.version_to_mlflow(version)})


# --- model versions --------------------------------------------------------------------------


@router.post(VERSIONS + "/create")
def create_model_version(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    """A version from a run's artifacts or a logged model (see :func:`version_source`);
    READY at once, since its files are rows pointing at blobs already stored."""
    msg = message_of(request)
    name = _name(msg)
    source = translate.version_source(
        ctx.platform,
        _pid(ctx),
        str(field(msg, "source")),
        _text(msg, "run_id") or None,
        _text(msg, "model_id") or None,
    )
    spec = validated(
        ModelVersionCreate,
        {
            "run_id": source.run_id,
            "logged_model_id": source.logged_model_id,
            "source_path": source.source_path,
            "description": _text(msg, "description"),
            "tags": dict(key_values(msg, "tags")),
        },
    )
    created = versions.create_version(ctx, name, spec, source_uri=source.source_uri)
    return FastJSON({"model_version": translate.version_to_mlflow(created)})


@router.get(VERSIONS + "/get")
def get_model_version(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    selector = translate.version_selector(field(msg, "version"))
    version = versions.get_version(ctx.platform, _pid(ctx), _name(msg), selector)
    return FastJSON({"model_version": translate.version_to_mlflow(version)})


@router.patch(VERSIONS + "/update")
def update_model_version(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    selector = translate.version_selector(field(msg, "version"))
    updated = versions.update_version(ctx, _name(msg), selector, _text(msg, "description"))
    return FastJSON({"model_version": translate.version_to_mlflow(updated)})


@router.delete(VERSIONS + "/delete")
def delete_model_version(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    versions.delete_version(ctx, _name(msg), translate.version_selector(field(msg, "version")))
    return _ok()


@router.get(VERSIONS + "/search")
def search_model_versions(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    msg = message_of(request)
    page = versions.search_versions(
        ctx.platform,
        _pid(ctx),
        conditions=translate.version_filter(_text(msg, "filter")),
        order_by=translate.version_order(list_field(msg, "order_by")),
        max_results=int_field(msg, "max_results", default=_VERSION_PAGE) or _VERSION_PAGE,
        page_token=_text(msg, "page_token") or None,
    )
    body: dict[str, Any] = {
        "model_versions": [translate.version_to_mlflow(v) for v in page.versions]
    }
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return FastJSON(body)


@router.get(VERSIONS + "/get-download-uri")
def get_model_version_download_uri(
    request: Request, ctx: RequestContext = require(Action.READ, url_message)
) -> FastJSON:
    """The artifact proxy's URI of the version's files (``mlflow-artifacts:/...``)."""
    msg = message_of(request)
    selector = translate.version_selector(field(msg, "version"))
    version = versions.get_version(ctx.platform, _pid(ctx), _name(msg), selector)
    return FastJSON({"artifact_uri": translate.download_uri(ctx.platform, version)})


@router.post(VERSIONS + "/transition-stage")
def transition_model_version_stage(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    """MLflow's deprecated stages, kept as the version's ``mlflow.stage`` tag."""
    msg = message_of(request)
    archive = msg.get("archive_existing_versions", False)
    if not isinstance(archive, bool):
        archive = str(archive).lower() == "true"
    updated = versions.transition_stage(
        ctx,
        _name(msg),
        translate.version_selector(field(msg, "version")),
        str(field(msg, "stage")),
        archive_existing=archive,
    )
    return FastJSON({"model_version": translate.version_to_mlflow(updated)})


@router.post(VERSIONS + "/set-tag")
def set_model_version_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    msg = message_of(request)
    versions.set_version_tags(
        ctx,
        _name(msg),
        translate.version_selector(field(msg, "version")),
        _tag(msg),
    )
    return _ok()


@router.delete(VERSIONS + "/delete-tag")
def delete_model_version_tag(
    request: Request, ctx: RequestContext = require(Action.WRITE, url_message)
) -> FastJSON:
    """Removing a tag that is not set changes nothing and succeeds, as in MLflow."""
    msg = message_of(request)
    versions.delete_version_tag(
        ctx,
        _name(msg),
        translate.version_selector(field(msg, "version")),
        str(field(msg, "key")),
        missing_ok=True,
    )
    return _ok()
