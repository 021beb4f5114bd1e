"""Users and API tokens: create, change, list, revoke, and password login.

Token secrets are ``shy_`` plus 256 random bits; only their SHA-256 is stored
(see :func:`shipyard.auth.authz.token_hash`), with a short prefix kept so that
people can tell their tokens apart. Passwords are argon2id hashes.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth import audit
from shipyard.auth.authz import RequestContext, authorize, token_hash
from shipyard.auth.passwords import hash_password, needs_rehash, verify_password
from shipyard.auth.principal import Action, Principal
from shipyard.auth.tables import RoleBindingRow, TokenRow, UserRow
from shipyard.auth.types import (
    AuditEvent,
    LoginRequest,
    Me,
    ProjectRole,
    Token,
    TokenCreate,
    TokenCreated,
    TokenRevoked,
    User,
    UserCreate,
    UserUpdate,
)
from shipyard.clock import now_ms
from shipyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow

log = logging.getLogger("shipyard.auth")

TOKEN_PREFIX = "shy_"
PREFIX_CHARS = 12
DAY_MS = 86_400_000
LOGIN_TOKEN_MS = 12 * 3_600_000


# --- users ------------------------------------------------------------------------------


def _user_to_api(row: UserRow) -> User:
    return User(
        username=row.username,
        is_admin=row.is_admin,
        disabled=row.disabled,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )


def _get_user(session: Session, username: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        raise NotFound(f"user {username!r} not found")
    return row


def create_user(ctx: RequestContext, spec: UserCreate) -> User:
    """Create a user (the route lets only site admins call this)."""
    with ctx.platform.db.write() as session:
        if session.scalar(select(UserRow.id).where(UserRow.username == spec.username)):
            raise Conflict(f"user {spec.username!r} already exists")
        row = UserRow(
            username=spec.username,
            password_hash=hash_password(spec.password) if spec.password else None,
            is_admin=spec.is_admin,
            disabled=False,
            created_at=now_ms(),
        )
        session.add(row)
        try:
            session.flush()
        except DBIntegrityError:
            raise Conflict(f"user {spec.username!r} already exists") from None
        ctx.audit(
            session,
            "users.create",
            "user",
            row.username,
            {"is_admin": row.is_admin, "has_password": row.password_hash is not None},
        )
        return _user_to_api(row)


def list_users(platform: Platform) -> list[User]:
    """Every user, by name."""
    with platform.db.read() as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.username))
        return [_user_to_api(r) for r in rows]


def me(platform: Platform, principal: Principal) -> Me:
    """The caller and the roles they hold, by project."""
    roles: list[ProjectRole] = []
    if principal.user_id is not None:
        with platform.db.read() as session:
            rows = session.execute(
                select(ProjectRow.name, ProjectRow.id, RoleBindingRow.role)
                .join(RoleBindingRow, RoleBindingRow.project_id == ProjectRow.id)
                .where(RoleBindingRow.user_id == principal.user_id)
                .order_by(ProjectRow.name)
            ).all()
        roles = [ProjectRole(project=n, project_id=i, role=r) for n, i, r in rows]
    return Me(username=principal.username, is_admin=principal.is_admin, projects=roles)


def update_user(ctx: RequestContext, username: str, spec: UserUpdate) -> User:
    """Change a user. Site admins may change anything; users only their own password."""
    principal = ctx.principal
    changes = {
        k: v for k, v in spec.model_dump(exclude={"current_password"}).items() if v is not None
    }
    if not changes:
        raise InvalidInput("nothing to change: give password, is_admin or disabled")
    if not principal.is_admin and username != principal.username:
        # Before the lookup, so that non-admins cannot probe which usernames exist.
        raise PermissionDenied("only a site administrator may change another user")
    with ctx.platform.db.write() as session:
        row = _get_user(session, username)
        if not principal.is_admin:
            _check_self_service(principal, row, spec)
        demoted = changes.get("is_admin") is False or changes.get("disabled") is True
        if row.is_admin and not row.disabled and demoted:
            _keep_one_admin(session, row)
        if spec.password is not None:
            row.password_hash = hash_password(spec.password)
        if spec.is_admin is not None:
            row.is_admin = spec.is_admin
        if spec.disabled is not None:
            row.disabled = spec.disabled
        details = {k: ("changed" if k == "password" else v) for k, v in changes.items()}
        ctx.audit(session, "users.update", "user", row.username, details)
        return _user_to_api(row)


def _check_self_service(principal: Principal, row: UserRow, spec: UserUpdate) -> None:
    if principal.user_id != row.id:
        raise PermissionDenied("only a site administrator may change another user")
    if spec.is_admin is not None or spec.disabled is not None:
        raise PermissionDenied("only a site administrator may change is_admin or disabled")
    # A stolen token must not be enough to take the account over for good.
    if row.password_hash is not None and not (
        spec.current_password and verify_password(row.password_hash, spec.current_password)
    ):
        raise PermissionDenied("give your current password (current_password) to change it")


def _keep_one_admin(session: Session, row: UserRow) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.is_admin.is_(True), UserRow.disabled.is_(False), UserRow.id != row.id)
    )
    if not others:
        raise Conflict(f"{row.username!r} is the last enabled site administrator")


# --- tokens -----------------------------------------------------------------------------


def _token_to_api(row: TokenRow, username: str) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        username=username,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _issue_token(
    session: Session, user: UserRow, name: str, expires_at: int | None
) -> TokenCreated:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = TokenRow(
        user_id=user.id,
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:PREFIX_CHARS],
        created_at=now_ms(),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return TokenCreated(**_token_to_api(row, user.username).model_dump(), token=secret)


def create_token(ctx: RequestContext, spec: TokenCreate) -> TokenCreated:
    """A new token for the caller (or, for site admins, for ``spec.username``)."""
    principal = ctx.principal
    username = spec.username or principal.username
    if username != principal.username and not principal.is_admin:
        raise PermissionDenied("only a site administrator may create tokens for another user")
    if spec.username is None and principal.user_id is None:
        raise InvalidInput("the local user has no account: name the user the token is for")
    with ctx.platform.db.write() as session:
        user = _get_user(session, username)
        if user.disabled:
            raise Conflict(f"user {username!r} is disabled")
        days = spec.expires_in_days
        expires_at = None if days is None else now_ms() + days * DAY_MS
        created = _issue_token(session, user, spec.name, expires_at)
        ctx.audit(
            session,
            "tokens.create",
            "token",
            created.id,
            {"name": spec.name, "username": username, "expires_at": expires_at},
        )
    return created


def list_tokens(
    platform: Platform,
    principal: Principal,
    username: str | None = None,
    include_revoked: bool = False,
) -> list[Token]:
    """The caller's tokens; site admins may name a user (the local user sees all)."""
    if username is not None and username != principal.username and not principal.is_admin:
        raise PermissionDenied("only a site administrator may list another user's tokens")
    stmt = select(TokenRow, UserRow.username).join(UserRow, UserRow.id == TokenRow.user_id)
    if username is not None:
        stmt = stmt.where(UserRow.username == username)
    elif principal.user_id is not None:
        stmt = stmt.where(TokenRow.user_id == principal.user_id)
    # else: the local user (embedded mode) has no account of its own and sees every token.
    if not include_revoked:
        stmt = stmt.where(TokenRow.revoked_at.is_(None))
    with platform.db.read() as session:
        if username is not None:
            _get_user(session, username)
        rows = session.execute(stmt.order_by(TokenRow.id)).all()
    return [_token_to_api(r, u) for r, u in rows]


def revoke_token(ctx: RequestContext, token_id: int) -> TokenRevoked:
    """Revoke a token (own, or any for site admins); revoking twice changes nothing
    (``already_revoked`` then says so)."""
    principal = ctx.principal
    with ctx.platform.db.write() as session:
        found = session.execute(
            select(TokenRow, UserRow.username)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.id == token_id)
        ).first()
        # Someone else's token is "not found": ids must not reveal other users' tokens.
        if found is None or (not principal.is_admin and found[0].user_id != principal.user_id):
            raise NotFound(f"token {token_id} not found")
        row, username = found
        already = row.revoked_at is not None
        if not already:
            row.revoked_at = now_ms()
            ctx.audit(session, "tokens.revoke", "token", row.id, {"name": row.name})
        return TokenRevoked(**_token_to_api(row, username).model_dump(), already_revoked=already)


# --- login ------------------------------------------------------------------------------


def login(platform: Platform, spec: LoginRequest, source: str) -> TokenCreated:
    """Exchange a username and password for a token that expires in 12 hours.

    Repeated failures for one user name or from one address are refused for a while
    (TooManyRequests) before the password is even checked."""
    user_key, source_key = f"user:{spec.username}", f"source:{source}"
    throttle = platform.login_failures
    throttle.check("failed sign-ins", user_key, source_key)
    with platform.db.write() as session:
        user = session.scalar(select(UserRow).where(UserRow.username == spec.username))
        ok = verify_password(user.password_hash if user else None, spec.password)
        if user is None or not ok or user.disabled:
            log.warning("failed login for %r from %s", spec.username[:200], source)
            throttle.failed(user_key, source_key)
            raise Unauthenticated("invalid username or password")
        throttle.clear(user_key)
        assert user.password_hash is not None
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(spec.password)
        created = _issue_token(session, user, "login", now_ms() + LOGIN_TOKEN_MS)
        audit.record(
            session,
            actor=user.username,
            action="auth.login",
            object_type="token",
            object_id=created.id,
            project_id=None,
            source=source,
            details={"expires_at": created.expires_at},
        )
    return created


def logout(platform: Platform, secret: str, source: str) -> None:
    """Revoke the login token ``secret`` (a browser signing out); unknown or already
    revoked tokens change nothing."""
    with platform.db.write() as session:
        row = session.execute(
            select(TokenRow, UserRow.username)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.token_hash == token_hash(secret))
        ).first()
        if row is None or row[0].revoked_at is not None:
            return
        token, username = row
        token.revoked_at = now_ms()
        audit.record(
            session,
            actor=username,
            action="auth.logout",
            object_type="token",
            object_id=token.id,
            project_id=None,
            source=source,
        )


# --- audit log --------------------------------------------------------------------------


def read_audit(
    platform: Platform,
    principal: Principal,
    project_id: int | None,
    **filters: Any,
) -> list[AuditEvent]:
    """Audit events, newest first. Site admins read everything; a project's admins
    read that project's events (they must name the project)."""
    if not principal.is_admin:
        if project_id is None:
            raise PermissionDenied(
                "only a site administrator may read the whole audit log; "
                "project admins pass project=<name>"
            )
        authorize(platform, principal, Action.MANAGE, project_id)
    with platform.db.read() as session:
        return audit.query(session, project_id=project_id, **filters)
