"""SDK clients of users, tokens and the audit log (``client.users``, ``.tokens``, ``.audit``)."""

from __future__ import annotations

from shipyard.auth.types import (
    DEFAULT_TOKEN_DAYS,
    AuditEvent,
    Me,
    Token,
    TokenCreated,
    TokenRevoked,
    User,
)
from shipyard.client.api import Api, segment


class UsersClient:
    """``client.users``: accounts (creating and listing them needs a site admin)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def create(self, username: str, password: str | None = None, *, is_admin: bool = False) -> User:
        """Create a user; without a password they sign in with tokens only."""
        body = {"username": username, "password": password, "is_admin": is_admin}
        return User(**self._api.post("/users", body))

    def list(self) -> list[User]:
        """Every user."""
        return [User(**u) for u in self._api.get("/users")]

    def me(self) -> Me:
        """The caller: name, site admin or not, and roles by project."""
        return Me(**self._api.get("/users/me"))

    def update(
        self,
        username: str,
        *,
        password: str | None = None,
        current_password: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user; non-admins may only change their own password (giving the old one)."""
        body = {
            "password": password,
            "current_password": current_password,
            "is_admin": is_admin,
            "disabled": disabled,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return User(**self._api.patch(f"/users/{segment(username)}", body))


class TokensClient:
    """``client.tokens``: API tokens, whose secret is shown only when created."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def create(
        self,
        name: str = "",
        *,
        expires_in_days: int | None = DEFAULT_TOKEN_DAYS,
        username: str | None = None,
    ) -> TokenCreated:
        """A new token (``expires_in_days=None``: never expires); keep ``.token`` secret."""
        body = {"name": name, "expires_in_days": expires_in_days, "username": username}
        return TokenCreated(**self._api.post("/tokens", body))

    def list(self, username: str | None = None, *, include_revoked: bool = False) -> list[Token]:
        """Your tokens (site admins may name another user)."""
        rows = self._api.get("/tokens", username=username, include_revoked=include_revoked)
        return [Token(**t) for t in rows]

    def revoke(self, token_id: int) -> TokenRevoked:
        """Revoke a token at once; requests carrying it are refused from now on. A token
        revoked before stays as it was (``already_revoked`` is then true)."""
        return TokenRevoked(**self._api.delete(f"/tokens/{segment(token_id)}"))

    def login(self, username: str, password: str) -> TokenCreated:
        """Exchange a username and password for a token that expires in 12 hours."""
        return TokenCreated(
            **self._api.post("/auth/login", {"username": username, "password": password})
        )


class AuditClient:
    """``client.audit``: who changed what, when and from where."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | int | None = None,
        project: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events matching every filter given, newest first (site admins, or project
        admins naming their project)."""
        rows = self._api.get(
            "/audit",
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            project=project,
            since=since,
            until=until,
            limit=limit,
        )
        return [AuditEvent(**e) for e in rows]
