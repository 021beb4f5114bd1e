"""HTTP routes of users, tokens, login and the audit log: thin calls into the service.

Permissions: creating and listing users needs a site admin. Any signed-in user
reads ``/users/me``, changes their own password (giving the current one), and
creates, lists and revokes their own tokens; site admins do that for anyone.
``/auth/login`` is public (it is how a password becomes a token). The audit
log is readable by site admins, and by a project's admins for that project's
events (they must pass ``project=``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from shipyard.auth import service
from shipyard.auth.audit import MAX_EVENTS
from shipyard.auth.authz import RequestContext, get_platform, public, require
from shipyard.auth.principal import Action
from shipyard.auth.types import (
    AuditEvent,
    LoginRequest,
    Me,
    Token,
    TokenCreate,
    TokenCreated,
    TokenRevoked,
    User,
    UserCreate,
    UserUpdate,
)
from shipyard.platform import Platform
from shipyard.projects.service import resolve_project_id
from shipyard.tracking.types import INT64_MAX, Id

router = APIRouter(tags=["auth"])


@router.post("/users", status_code=201)
def create_user(spec: UserCreate, ctx: RequestContext = require(Action.ADMIN)) -> User:
    return service.create_user(ctx, spec)


@router.get("/users")
def list_users(ctx: RequestContext = require(Action.ADMIN)) -> list[User]:
    return service.list_users(ctx.platform)


@router.get("/users/me")
def get_me(ctx: RequestContext = require(Action.AUTHENTICATED)) -> Me:
    return service.me(ctx.platform, ctx.principal)


@router.patch("/users/{username}")
def update_user(
    username: str, spec: UserUpdate, ctx: RequestContext = require(Action.AUTHENTICATED)
) -> User:
    # Admin-or-self (own password only) is decided in the service, which sees the row.
    return service.update_user(ctx, username, spec)


@router.post("/tokens", status_code=201)
def create_token(
    spec: TokenCreate, ctx: RequestContext = require(Action.AUTHENTICATED)
) -> TokenCreated:
    return service.create_token(ctx, spec)


@router.get("/tokens")
def list_tokens(
    username: str | None = None,
    include_revoked: bool = False,
    ctx: RequestContext = require(Action.AUTHENTICATED),
) -> list[Token]:
    return service.list_tokens(ctx.platform, ctx.principal, username, include_revoked)


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: Id, ctx: RequestContext = require(Action.AUTHENTICATED)) -> TokenRevoked:
    return service.revoke_token(ctx, token_id)


# Login is how a password user gets a token, so it cannot require one.
@router.post("/auth/login", status_code=201, dependencies=[public()])
def login(
    spec: LoginRequest, request: Request, platform: Platform = Depends(get_platform)
) -> TokenCreated:
    source = request.client.host if request.client else ""
    return service.login(platform, spec, source)


@router.get("/audit")
def read_audit(
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    project: str | None = Query(None, description="Project name or id."),
    since: int | None = Query(None, ge=0, le=INT64_MAX, description="Epoch ms, inclusive."),
    until: int | None = Query(None, ge=0, le=INT64_MAX, description="Epoch ms, inclusive."),
    limit: int = Query(100, ge=1, le=MAX_EVENTS),
    ctx: RequestContext = require(Action.AUTHENTICATED),
) -> list[AuditEvent]:
    project_id = resolve_project_id(ctx.platform, project) if project is not None else None
    return service.read_audit(
        ctx.platform,
        ctx.principal,
        project_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
        limit=limit,
    )
