"""HTTP routes of the model registry: thin calls into the service modules.

Permissions: reading needs READ; creating and changing models, versions,
tags and aliases needs WRITE (editor). Deleting a whole registered model takes
every version and alias with it, which can pull a model out from under its
consumers, so it needs MANAGE (project admin); deleting one version needs WRITE.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.responses import Response

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.blobs.http import blob_response
from shipyard.projects.resolvers import project_from_path
from shipyard.registry import aliases, models, versions
from shipyard.registry.types import (
    AliasSet,
    DescriptionUpdate,
    ModelPage,
    ModelTags,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
    RegisteredModelCreate,
    VersionPage,
    check_alias,
)

router = APIRouter(tags=["registry"])

MODELS = "/projects/{project}/models"
MODEL = MODELS + "/{name}"
VERSION = MODEL + "/versions/{version}"


def _pid(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


@router.post(MODELS, status_code=201)
def create_model(
    project: str,
    spec: RegisteredModelCreate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> RegisteredModel:
    return models.create_model(ctx, spec)


@router.get(MODELS)
def search_models(
    project: str,
    query: str | None = Query(None, description="Substring of the name (any case)."),
    name_like: str | None = Query(None, description="LIKE pattern on the name (any case)."),
    tag: list[str] = Query([], description="'key' or 'key=value'; repeat for several."),
    order_by: list[str] = Query([], description="name | updated_at | created_at [ASC|DESC]."),
    max_results: int = 100,
    page_token: str | None = None,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> ModelPage:
    return models.search_models(
        ctx.platform,
        _pid(ctx),
        query=query,
        name_like=name_like,
        tags=tag,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token,
    )


@router.get(MODEL)
def get_model(
    project: str, name: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> RegisteredModel:
    return models.get_model(ctx.platform, _pid(ctx), name)


@router.patch(MODEL)
def update_model(
    project: str,
    name: str,
    spec: DescriptionUpdate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> RegisteredModel:
    return models.update_model(ctx, name, spec.description)


@router.delete(MODEL, status_code=204)
def delete_model(
    project: str, name: str, ctx: RequestContext = require(Action.MANAGE, project_from_path)
) -> None:
    models.delete_model(ctx, name)


@router.put(MODEL + "/tags")
def set_model_tags(
    project: str,
    name: str,
    tags: ModelTags,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> RegisteredModel:
    return models.set_model_tags(ctx, name, tags)


@router.delete(MODEL + "/tags/{key:path}", status_code=204)
def delete_model_tag(
    project: str,
    name: str,
    key: str,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> None:
    models.delete_model_tag(ctx, name, key)


@router.post(MODEL + "/versions", status_code=201)
def create_version(
    project: str,
    name: str,
    spec: ModelVersionCreate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> ModelVersion:
    return versions.create_version(ctx, name, spec)


@router.get(MODEL + "/versions")
def list_versions(
    project: str,
    name: str,
    max_results: int = 100,
    page_token: str | None = None,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> VersionPage:
    """The model's versions, newest first; pass ``next_page_token`` back for older ones."""
    return versions.list_versions(
        ctx.platform, _pid(ctx), name, max_results=max_results, page_token=page_token
    )


@router.get(VERSION)
def get_version(
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> ModelVersion:
    """``version`` is a number, an alias, or ``latest``."""
    return versions.get_version(ctx.platform, _pid(ctx), name, version)


@router.patch(VERSION)
def update_version(
    project: str,
    name: str,
    version: str,
    spec: DescriptionUpdate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> ModelVersion:
    return versions.update_version(ctx, name, version, spec.description)


@router.delete(VERSION, status_code=204)
def delete_version(
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> None:
    versions.delete_version(ctx, name, version)


@router.put(VERSION + "/tags")
def set_version_tags(
    project: str,
    name: str,
    version: str,
    tags: ModelTags,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> ModelVersion:
    return versions.set_version_tags(ctx, name, version, tags)


@router.delete(VERSION + "/tags/{key:path}", status_code=204)
def delete_version_tag(
    project: str,
    name: str,
    version: str,
    key: str,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> None:
    versions.delete_version_tag(ctx, name, version, key)


@router.get(VERSION + "/files/{path:path}")
def download_file(
    project: str,
    name: str,
    version: str,
    path: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> Response:
    """The file's bytes, streamed, with its hash in ``X-Shipyard-Blob-Hash``."""
    file = versions.version_file(ctx.platform, _pid(ctx), name, version, path)
    return blob_response(ctx.platform.blobs, file.hash, file.size)


@router.put(MODEL + "/aliases/{alias}")
def set_alias(
    project: str,
    name: str,
    alias: str,
    spec: AliasSet,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> ModelVersion:
    """Point the alias at a version (moving it if it was set)."""
    return aliases.set_alias(ctx, name, alias, spec.version)


@router.get(MODEL + "/aliases/{alias}")
def get_alias(
    project: str,
    name: str,
    alias: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> ModelVersion:
    """The version the alias points at."""
    return versions.get_version(ctx.platform, _pid(ctx), name, check_alias(alias))


@router.delete(MODEL + "/aliases/{alias}", status_code=204)
def delete_alias(
    project: str,
    name: str,
    alias: str,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> None:
    aliases.delete_alias(ctx, name, alias)
