"""Users and tokens over the API: rules, bad input changing nothing, self-service."""

from __future__ import annotations

import pytest

from shipyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated

from .conftest import Secured

BAD_USERS = [
    {"username": "has space"},
    {"username": "-leading-dash"},
    {"username": "x" * 101},
    {"username": ""},
    {"username": "ok", "password": "short"},
    {"username": "ok", "is_admin": "maybe"},
    {},
]


def test_bad_user_input_is_400_and_changes_nothing(secured: Secured) -> None:
    admin = secured.http(secured.admin_token)
    before = secured.last_audit_id()
    for body in BAD_USERS:
        response = admin.post("/users", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_input"
    assert [u["username"] for u in admin.get("/users").json()] == ["root"]
    assert secured.audit_rows(before) == []


def test_duplicate_user_is_409(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    admin.users.create("zed", "password-1")
    with pytest.raises(Conflict):
        admin.users.create("zed", "password-2")
    assert [u.username for u in admin.users.list()] == ["root", "zed"]


def test_usernames_with_allowed_punctuation(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    user = admin.users.create("first.last@example.com", is_admin=False)
    assert user.username == "first.last@example.com"
    assert user.has_password is False
    token = admin.tokens.create("ci", username=user.username)
    assert secured.sdk(token.token).users.me().username == user.username


def test_me_lists_roles(secured: Secured) -> None:
    secured.project("alpha")
    token = secured.user("mia", roles={"alpha": "editor", "default": "viewer"})
    me = secured.sdk(token).users.me()
    assert me.username == "mia" and me.is_admin is False
    roles = [(r.project, r.role) for r in me.projects]
    assert roles == [("alpha", "editor"), ("default", "viewer")]


def test_user_changes_own_password_with_current_one(secured: Secured) -> None:
    token = secured.user("ola", password="first-password")
    sdk = secured.sdk(token)
    with pytest.raises(PermissionDenied, match="current password"):
        sdk.users.update("ola", password="second-password")
    with pytest.raises(PermissionDenied, match="current password"):
        sdk.users.update("ola", password="second-password", current_password="wrong-one")
    sdk.users.update("ola", password="second-password", current_password="first-password")
    anonymous = secured.sdk("")
    assert anonymous.tokens.login("ola", "second-password").token
    with pytest.raises(Unauthenticated, match="invalid username or password"):
        anonymous.tokens.login("ola", "first-password")


def test_update_validation(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    admin.users.create("pat", "pat-password")
    before = secured.last_audit_id()
    with pytest.raises(InvalidInput, match="nothing to change"):
        admin.users.update("pat")
    with pytest.raises(InvalidInput):
        admin.users.update("pat", password="short")
    with pytest.raises(NotFound):
        admin.users.update("ghost", is_admin=True)
    assert secured.audit_rows(before) == []
    assert admin.users.update("pat", is_admin=True).is_admin is True


def test_last_admin_cannot_be_removed(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    with pytest.raises(Conflict, match="last enabled site administrator"):
        admin.users.update("root", is_admin=False)
    with pytest.raises(Conflict):
        admin.users.update("root", disabled=True)
    admin.users.create("second", is_admin=True)
    assert admin.users.update("root", is_admin=False).is_admin is False


BAD_TOKENS = [
    {"expires_in_days": 0},
    {"expires_in_days": -3},
    {"expires_in_days": 100_000},
    {"expires_in_days": "soon"},
    {"name": "x" * 201},
    {"name": "a\u0000b"},  # NUL: stored on SQLite, a generic refusal on PostgreSQL
]


def test_bad_token_input_is_400_and_changes_nothing(secured: Secured) -> None:
    http = secured.http(secured.admin_token)
    before = secured.last_audit_id()
    for body in BAD_TOKENS:
        response = http.post("/tokens", json=body)
        assert response.status_code == 400, (body, response.text)
    assert len(http.get("/tokens").json()) == 1
    assert secured.audit_rows(before) == []


def test_token_for_unknown_or_disabled_user(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    with pytest.raises(NotFound):
        admin.tokens.create(username="ghost")
    admin.users.create("gone")
    admin.users.update("gone", disabled=True)
    with pytest.raises(Conflict, match="disabled"):
        admin.tokens.create(username="gone")
    assert admin.tokens.list("gone") == []


def test_tokens_listing_and_secret_shown_once(secured: Secured) -> None:
    token = secured.user("quinn")
    sdk = secured.sdk(token)
    created = sdk.tokens.create("laptop", expires_in_days=30)
    listed = sdk.tokens.list()
    assert [t.name for t in listed] == ["", "laptop"]
    assert all(t.username == "quinn" for t in listed)
    assert created.prefix == created.token[:12]
    assert all(not hasattr(t, "token") for t in listed)
    raw = secured.http(token).get("/tokens").json()
    assert all("token" not in t for t in raw)
    # The site admin sees their own by default, another user's when named.
    admin = secured.sdk(secured.admin_token)
    assert [t.username for t in admin.tokens.list()] == ["root"]
    assert len(admin.tokens.list("quinn")) == 2
    with pytest.raises(NotFound):
        admin.tokens.list("ghost")


def test_revoke_twice_and_unknown(secured: Secured) -> None:
    sdk = secured.sdk(secured.user("rae"))
    spare = sdk.tokens.create("spare")
    first = sdk.tokens.revoke(spare.id)
    assert first.already_revoked is False and first.revoked_at is not None
    assert (first.id, first.username) == (spare.id, "rae")
    before = secured.last_audit_id()
    again = sdk.tokens.revoke(spare.id)  # already revoked: nothing changes, nothing is recorded
    assert again.already_revoked is True and again.revoked_at == first.revoked_at
    assert secured.audit_rows(before) == []
    with pytest.raises(NotFound):
        sdk.tokens.revoke(999_999)
