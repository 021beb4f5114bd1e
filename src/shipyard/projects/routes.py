"""HTTP routes of projects: thin calls into the service."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.projects import service
from shipyard.projects.resolvers import project_from_path
from shipyard.projects.types import Member, MemberSet, Project, ProjectCreate

router = APIRouter(tags=["projects"])


@router.post("/projects", status_code=201)
def create_project(
    spec: ProjectCreate, ctx: RequestContext = require(Action.AUTHENTICATED)
) -> Project:
    return service.create_project(ctx, spec)


@router.get("/projects")
def list_projects(ctx: RequestContext = require(Action.AUTHENTICATED)) -> list[Project]:
    return service.list_projects(ctx.platform, ctx.principal)


@router.get("/projects/{project}")
def get_project(
    project: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> Project:
    assert ctx.project_id is not None
    return service.get_project(ctx.platform, ctx.project_id, ctx.principal)


@router.get("/projects/{project}/members")
def list_members(
    project: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> list[Member]:
    assert ctx.project_id is not None
    return service.list_members(ctx.platform, ctx.project_id)


@router.put("/projects/{project}/members")
def set_member(
    project: str, spec: MemberSet, ctx: RequestContext = require(Action.MANAGE, project_from_path)
) -> Member:
    return service.set_member(ctx, spec)


@router.delete("/projects/{project}/members/{username}", status_code=204)
def remove_member(
    project: str, username: str, ctx: RequestContext = require(Action.MANAGE, project_from_path)
) -> None:
    service.remove_member(ctx, username)
