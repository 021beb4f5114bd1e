"""API shapes of users, tokens and audit events. Hashes never appear in any of them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shipyard.tracking.types import StoredText

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
MIN_PASSWORD = 8
# Long enough for any passphrase, short enough that hashing it is no denial of service.
MAX_PASSWORD = 1024
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650


class UserCreate(BaseModel):
    """Input of user creation (site admins only)."""

    username: str = Field(pattern=USERNAME_PATTERN, description="Letters, digits, . _ @ -")
    password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description="Optional: a user without one signs in with tokens an admin creates.",
    )
    is_admin: bool = Field(default=False, description="Site administrator: every right.")


class UserUpdate(BaseModel):
    """A change to a user; fields left out stay as they are."""

    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    current_password: str | None = Field(
        default=None,
        max_length=MAX_PASSWORD,
        description="Needed when a non-admin changes their own password.",
    )
    is_admin: bool | None = None
    disabled: bool | None = None


class User(BaseModel):
    """A user account."""

    username: str
    is_admin: bool
    disabled: bool
    has_password: bool
    created_at: int


class ProjectRole(BaseModel):
    """A role the caller holds on one project."""

    project: str
    project_id: int
    role: str


class Me(BaseModel):
    """The caller, as the server sees them."""

    username: str
    is_admin: bool
    projects: list[ProjectRole] = Field(description="Explicit role bindings, by project name.")


class TokenCreate(BaseModel):
    """Input of token creation."""

    name: StoredText = Field(default="", max_length=200, description="What the token is for.")
    expires_in_days: int | None = Field(
        default=DEFAULT_TOKEN_DAYS,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description="Lifetime in days; null makes a token that never expires.",
    )
    username: str | None = Field(
        default=None, description="Site admins only: create the token for another user."
    )


class Token(BaseModel):
    """A token as listed: everything but its secret."""

    id: int
    name: str
    username: str
    prefix: str = Field(description="The first characters of the secret, to recognise it.")
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None


class TokenRevoked(Token):
    """A token after a revocation request."""

    already_revoked: bool = Field(
        description="It had been revoked before: nothing changed, nothing was recorded."
    )


class TokenCreated(Token):
    """A new token, with its secret: the only time the server ever shows it."""

    token: str


class LoginRequest(BaseModel):
    """Exchange a username and password for a short-lived token."""

    username: str = Field(max_length=200)
    password: str = Field(max_length=MAX_PASSWORD)


class AuditEvent(BaseModel):
    """One change: who did what to which object, when and from where."""

    id: int
    at: int
    actor: str
    action: str
    object_type: str
    object_id: str
    project_id: int | None
    source: str
    details: dict[str, Any]
