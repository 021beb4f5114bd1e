"""Authorization: project roles, no access across projects, site admin powers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from shipyard.auth import service
from shipyard.auth.authz import authorize
from shipyard.auth.principal import Action, Principal
from shipyard.auth.tables import UserRow
from shipyard.auth.types import UserCreate
from shipyard.errors import NotFound, PermissionDenied
from shipyard.platform import Platform
from shipyard.projects import service as projects
from shipyard.projects.types import MemberSet, ProjectCreate

from .conftest import Secured, local_ctx


def _paths(secured: Secured) -> set[str]:
    signed_in = {"authorization": f"Bearer {secured.admin_token}"}
    return set(httpx.get(secured.url + "/openapi.json", headers=signed_in).json()["paths"])


def _assert_403(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "permission_denied"


def test_viewer_reads_but_cannot_write(secured: Secured) -> None:
    secured.project("alpha")
    secured.user("ed", roles={"alpha": "editor"})
    viewer = secured.http(secured.user("vic", roles={"alpha": "viewer"}))
    assert viewer.get("/projects/alpha").status_code == 200
    assert {m["username"] for m in viewer.get("/projects/alpha/members").json()} >= {"vic"}
    _assert_403(viewer.put("/projects/alpha/members", json={"username": "ed", "role": "admin"}))
    refused = viewer.delete("/projects/alpha/members/ed")
    _assert_403(refused)
    # A member is told which project, by name; a stranger only that it has no access.
    assert "role 'viewer' may not" in refused.json()["error"]["message"]
    assert "in project 'alpha'" in refused.json()["error"]["message"]
    members = secured.sdk(secured.admin_token).projects.members("alpha")
    assert {m.username: m.role for m in members}["ed"] == "editor"
    if "/projects/{project}/experiments" in _paths(secured):
        _assert_403(viewer.post("/projects/alpha/experiments", json={"name": "nope"}))
        assert viewer.get("/projects/alpha/experiments").json() == []


def test_editor_writes_but_cannot_manage_members(secured: Secured) -> None:
    secured.project("alpha")
    secured.user("vic", roles={"alpha": "viewer"})
    editor = secured.http(secured.user("ed", roles={"alpha": "editor"}))
    _assert_403(editor.put("/projects/alpha/members", json={"username": "vic", "role": "admin"}))
    if "/projects/{project}/experiments" in _paths(secured):
        assert editor.post("/projects/alpha/experiments", json={"name": "ok"}).status_code < 300


def test_project_admin_manages_members(secured: Secured) -> None:
    secured.project("alpha")
    secured.user("vic", roles={"alpha": "viewer"})
    owner = secured.http(secured.user("own", roles={"alpha": "admin"}))
    response = owner.put("/projects/alpha/members", json={"username": "vic", "role": "editor"})
    assert response.status_code == 200, response.text
    assert owner.delete("/projects/alpha/members/vic").status_code == 204


def test_no_access_across_projects(secured: Secured) -> None:
    secured.project("alpha")
    secured.project("beta")
    secured.user("bea", roles={"beta": "viewer"})
    alice = secured.http(secured.user("alice", roles={"alpha": "admin"}))
    assert [p["name"] for p in alice.get("/projects").json()] == ["alpha"]
    _assert_403(alice.get("/projects/beta"))
    _assert_403(alice.get("/projects/beta/members"))
    _assert_403(alice.put("/projects/beta/members", json={"username": "alice", "role": "admin"}))
    _assert_403(alice.delete("/projects/beta/members/bea"))
    _assert_403(alice.get("/audit", params={"project": "beta"}))
    if "/projects/{project}/experiments" in _paths(secured):
        _assert_403(alice.get("/projects/beta/experiments"))
        _assert_403(alice.post("/projects/beta/experiments", json={"name": "x"}))
    members = secured.sdk(secured.admin_token).projects.members("beta")
    assert [(m.username, m.role) for m in members] == [("bea", "viewer")]


def test_site_admin_can_do_everything(secured: Secured) -> None:
    secured.project("beta")
    secured.user("bea", roles={"beta": "viewer"})
    admin = secured.http(secured.admin_token)
    assert admin.get("/projects/beta").status_code == 200
    assert (
        admin.put("/projects/beta/members", json={"username": "bea", "role": "editor"}).status_code
        == 200
    )
    assert admin.post("/users", json={"username": "new"}).status_code == 201
    assert admin.get("/users").status_code == 200
    assert admin.post("/tokens", json={"username": "new"}).status_code == 201
    assert admin.get("/audit").status_code == 200
    assert {p["name"] for p in admin.get("/projects").json()} == {"default", "beta"}


def test_non_admin_cannot_manage_users(secured: Secured) -> None:
    user = secured.http(secured.user("joe", password="joe-password", roles={"default": "admin"}))
    secured.user("kim")
    _assert_403(user.post("/users", json={"username": "mallory", "is_admin": True}))
    _assert_403(user.get("/users"))
    _assert_403(user.patch("/users/joe", json={"is_admin": True}))
    _assert_403(user.patch("/users/kim", json={"password": "taken-over"}))
    _assert_403(user.patch("/users/ghost", json={"password": "taken-over"}))  # no probing
    _assert_403(user.post("/tokens", json={"username": "kim"}))
    _assert_403(user.get("/tokens", params={"username": "kim"}))
    names = {u.username: u.is_admin for u in secured.sdk(secured.admin_token).users.list()}
    assert names == {"root": True, "joe": False, "kim": False}
    assert secured.sdk(secured.admin_token).tokens.list("kim")[0].name == ""
    assert len(secured.sdk(secured.admin_token).tokens.list("kim")) == 1


def test_users_cannot_revoke_others_tokens(secured: Secured) -> None:
    victim = secured.user("vera", roles={"default": "viewer"})
    other = secured.sdk(secured.user("otto"))
    token_id = secured.sdk(victim).tokens.list()[0].id
    # Someone else's token is "not found", so ids reveal nothing.
    with pytest.raises(NotFound):
        other.tokens.revoke(token_id)
    assert secured.http(victim).get("/projects").status_code == 200
    # A site admin may revoke anyone's.
    secured.sdk(secured.admin_token).tokens.revoke(token_id)
    assert secured.http(victim).get("/projects").status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {Action.READ}),
        ("editor", {Action.READ, Action.WRITE}),
        ("admin", {Action.READ, Action.WRITE, Action.MANAGE}),
        (None, set()),
    ],
)
def test_role_matrix(platform: Platform, role: str | None, allowed: set[Action]) -> None:
    """The one check, directly: what each role may do, on its project and on another."""
    ctx = local_ctx(platform)
    service.create_user(ctx, UserCreate(username="u"))
    project_id = projects.create_project(ctx, ProjectCreate(name="p")).id
    other_id = projects.resolve_project_id(platform, "default")
    if role:
        projects.set_member(local_ctx(platform, project_id), MemberSet(username="u", role=role))
    with platform.db.read() as session:
        uid = session.scalar(select(UserRow.id).where(UserRow.username == "u"))
    principal = Principal(username="u", user_id=uid, is_admin=False)
    for action in (Action.READ, Action.WRITE, Action.MANAGE):
        if action in allowed:
            authorize(platform, principal, action, project_id)
        else:
            with pytest.raises(PermissionDenied):
                authorize(platform, principal, action, project_id)
        with pytest.raises(PermissionDenied):
            authorize(platform, principal, action, other_id)
    authorize(platform, principal, Action.AUTHENTICATED, None)
    with pytest.raises(PermissionDenied):
        authorize(platform, principal, Action.ADMIN, None)
    with pytest.raises(PermissionDenied):
        authorize(platform, principal, Action.READ, None)
    admin = Principal(username="a", user_id=None, is_admin=True)
    for action in Action:
        authorize(platform, admin, action, other_id)
