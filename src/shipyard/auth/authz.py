"""The one authorization check. Every route depends on :func:`require`.

A route names the :class:`Action` it performs and, for project-scoped routes, a
resolver that finds the project from the request's path (a run id, an
experiment id, a project name). The dependency authenticates the caller,
resolves the project, checks the caller's role and hands the route a
:class:`RequestContext`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shipyard.auth import audit
from shipyard.auth.loopback import check_local_caller
from shipyard.auth.passwords import verify_password
from shipyard.auth.principal import ROLE_ALLOWS, Action, Principal, Role
from shipyard.auth.sessions import check_csrf, check_origin, session_secret
from shipyard.auth.tables import RoleBindingRow, TokenRow, UserRow
from shipyard.cache import BoundedCache, holds_data
from shipyard.clock import now_ms
from shipyard.errors import PermissionDenied, Unauthenticated
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow

ProjectResolver = Callable[[Request, Platform], int]


@dataclass
class RequestContext:
    """What a route and its service need to know about the call."""

    platform: Platform
    principal: Principal
    project_id: int | None
    source: str

    def audit(
        self,
        session: Session,
        action: str,
        object_type: str,
        object_id: str | int,
        details: dict[str, Any] | None = None,
        *,
        project_id: int | None = None,
    ) -> None:
        """Record an audit event for a change made in ``session``."""
        audit.record(
            session,
            actor=self.principal.username,
            action=action,
            object_type=object_type,
            object_id=object_id,
            project_id=project_id if project_id is not None else self.project_id,
            source=self.source,
            details=details,
        )


async def get_platform(request: Request) -> Platform:
    """The platform the app was built with."""
    return request.app.state.platform  # type: ignore[no-any-return]


def token_hash(secret: str) -> str:
    """How token secrets are stored: SHA-256 hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


PRINCIPAL_KEY = "shipyard.principal"
"""Where ``auth.gate`` leaves the principal it authenticated, in the request's scope."""


def authenticate(request: Request, platform: Platform) -> Principal:
    """The caller, from a bearer token, HTTP Basic credentials (the ``mlflow`` client's
    username and password) or a browser's session cookie; the local user when auth is
    off and none is sent. Unsafe browser requests must come from this origin, and
    with a session cookie, carry its CSRF token (see :mod:`shipyard.auth.sessions`)."""
    check_origin(request)
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential:
        return _principal_from_token(platform, credential.strip())
    if scheme.lower() == "basic" and credential:
        source = request.client.host if request.client else ""
        return _principal_from_basic(platform, credential.strip(), source)
    if header:
        raise Unauthenticated(
            "unsupported Authorization header: send 'Bearer <token>' or Basic credentials"
        )
    cookie = session_secret(request)
    if cookie is not None and platform.auth_required:
        check_csrf(request, cookie)
        return _principal_from_token(platform, cookie)
    if platform.auth_required:
        raise Unauthenticated(
            "authentication required: send 'Authorization: Bearer <token>' "
            "(the SDK and CLI send SHIPYARD_TOKEN)"
        )
    check_local_caller(request)
    return Principal.local()


def _principal_from_token(platform: Platform, secret: str) -> Principal:
    now = now_ms()
    digest = token_hash(secret)
    with platform.db.read() as session:
        row = session.execute(
            select(TokenRow.id, TokenRow.expires_at, TokenRow.revoked_at, UserRow)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.token_hash == digest)
        ).first()
    if row is None:
        raise Unauthenticated("invalid token")
    token_id, expires_at, revoked_at, user = row
    if revoked_at is not None:
        raise Unauthenticated("token has been revoked")
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated("token has expired")
    if user.disabled:
        raise Unauthenticated("user is disabled")
    _touch_token(platform, token_id, digest, now)
    return Principal(username=user.username, user_id=user.id, is_admin=user.is_admin)


# Basic credentials that verified: sha256(credential) -> the password hash they matched.
# argon2 costs ~64 MiB and tens of ms by design, too much for every request of a
# client that sends Basic each time; a hit still re-reads the user, so a changed
# password, a disabled user or a removed account takes effect at once.
_VERIFIED_BASIC: BoundedCache[str] = holds_data(BoundedCache(1_000))


def _principal_from_basic(platform: Platform, credential: str, source: str) -> Principal:
    try:
        decoded = base64.b64decode(credential, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise Unauthenticated("malformed Basic credentials: expected 'user:password'")
    key = hashlib.sha256(credential.encode()).hexdigest()
    with platform.db.read() as session:
        user = session.scalar(select(UserRow).where(UserRow.username == username))
    known = _VERIFIED_BASIC.get(key)
    stored = user.password_hash if user is not None else None
    if known is None or known != stored:
        # Guessing passwords through Basic auth is throttled like the sign-in form.
        keys = (f"user:{username}", f"source:{source}")
        platform.login_failures.check("failed sign-ins", *keys)
        if not verify_password(stored, password):
            platform.login_failures.failed(*keys)
            raise Unauthenticated("invalid username or password")
        assert stored is not None
        _VERIFIED_BASIC.put(key, stored)
    assert user is not None
    if user.disabled:
        raise Unauthenticated("user is disabled")
    return Principal(username=user.username, user_id=user.id, is_admin=user.is_admin)


# Keyed by the token's hash, not its row id: ids repeat across databases in one process.
_LAST_TOUCH: BoundedCache[int] = holds_data(BoundedCache(10_000))


def _touch_token(platform: Platform, token_id: int, key: str, now: int) -> None:
    # last_used_at is informative: write it at most once a minute per token.
    if now - (_LAST_TOUCH.get(key) or 0) < 60_000:
        return
    _LAST_TOUCH.put(key, now)
    with platform.db.write() as session:
        session.execute(update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=now))


def role_on(platform: Platform, principal: Principal, project_id: int) -> Role | None:
    """The caller's role on a project (site admins are admins everywhere)."""
    if principal.is_admin:
        return Role.ADMIN
    if principal.user_id is None:
        return None
    with platform.db.read() as session:
        role = session.scalar(
            select(RoleBindingRow.role).where(
                RoleBindingRow.user_id == principal.user_id,
                RoleBindingRow.project_id == project_id,
            )
        )
    return Role(role) if role else None


def authorize(
    platform: Platform, principal: Principal, action: Action, project_id: int | None
) -> None:
    """Raise PermissionDenied unless ``principal`` may do ``action`` (on the project)."""
    if principal.is_admin or action is Action.AUTHENTICATED:
        return
    if action is Action.ADMIN:
        raise PermissionDenied("only a site administrator may do this")
    if project_id is None:
        raise PermissionDenied(f"'{action}' needs a project")
    role = role_on(platform, principal, project_id)
    if role is None:
        raise PermissionDenied(f"no access to project {project_id}")
    if action not in ROLE_ALLOWS[role]:
        # The caller has a role on it, so it may read the project's name.
        with platform.db.read() as session:
            name = session.scalar(select(ProjectRow.name).where(ProjectRow.id == project_id))
        raise PermissionDenied(f"role '{role}' may not {action} in project '{name}'")


def require(action: Action, project: ProjectResolver | None = None) -> Any:
    """The dependency every route declares: authenticate, resolve the project, check.

    A resolver that needs the request body (the MLflow protocol names its objects
    there) has an async ``prepare(request)``, awaited first.
    """

    peek = getattr(project, "peek", None)
    prepare: Callable[[Request], Awaitable[None]] | None = getattr(project, "prepare", None)

    def decide(request: Request, platform: Platform) -> RequestContext:
        principal = request.scope.get(PRINCIPAL_KEY) or authenticate(request, platform)
        project_id = project(request, platform) if project is not None else None
        authorize(platform, principal, action, project_id)
        source = request.client.host if request.client else ""
        return RequestContext(platform, principal, project_id, source)

    async def check(request: Request) -> RequestContext:
        platform: Platform = request.app.state.platform
        if prepare is not None:
            await prepare(request)
        # Decide on the event loop when no I/O is needed (the local caller on an
        # auth-off server, project known from cache); else in a worker thread.
        if (
            not platform.auth_required
            and "authorization" not in request.headers
            and (project is None or (peek is not None and peek(request, platform) is not None))
        ):
            return decide(request, platform)
        return await run_in_threadpool(decide, request, platform)

    check.__shipyard_authz__ = True  # type: ignore[attr-defined]
    return Depends(check)


def public() -> Any:
    """Marks a route that needs no authentication: health checks and password login."""

    async def allow() -> None:  # async: no worker-thread hop for nothing
        return None

    allow.__shipyard_authz__ = True  # type: ignore[attr-defined]
    return Depends(allow)
