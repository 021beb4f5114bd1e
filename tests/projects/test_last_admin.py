"""A project keeps at least one admin: its last admin cannot be removed or demoted,
through the REST API (as that admin or as a site admin) or from the shell."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.auth.conftest import Secured, secured  # noqa: F401  (the fixture)
from typer.testing import CliRunner

from shipyard.cli.main import app


def _members(s: Secured, project: str) -> dict[str, str]:
    listed = s.sdk(s.admin_token).projects.members(project)
    return {m.username: m.role for m in listed}


def test_last_admin_cannot_leave_or_be_demoted(secured: Secured) -> None:  # noqa: F811
    secured.project("projB")
    secured.user("vic", roles={"projB": "viewer"})
    dave = secured.http(secured.user("dave", roles={"projB": "admin"}))
    root = secured.http(secured.admin_token)
    before = _members(secured, "projB")
    last_event = secured.last_audit_id()

    refusals = [
        dave.delete("/projects/projB/members/dave"),
        dave.put("/projects/projB/members", json={"username": "dave", "role": "editor"}),
        root.delete("/projects/projB/members/dave"),
        root.put("/projects/projB/members", json={"username": "dave", "role": "viewer"}),
    ]
    for response in refusals:
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "conflict"
        assert "without an admin" in error["message"]
        assert "shipyard projects grant projB USER admin" in error["message"]
    assert _members(secured, "projB") == before
    assert secured.audit_rows(last_event) == []

    # Handed over first, the former admin may go.
    response = dave.put("/projects/projB/members", json={"username": "vic", "role": "admin"})
    assert response.status_code == 200, response.text
    assert dave.delete("/projects/projB/members/dave").status_code == 204
    assert _members(secured, "projB") == {"vic": "admin"}
    # Re-granting the admin role to an admin, or demoting one of two, stays allowed.
    vic = secured.http(secured.token_for("vic"))
    assert (
        vic.put("/projects/projB/members", json={"username": "vic", "role": "admin"}).status_code
        == 200
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for name in ("SHIPYARD_URL", "SHIPYARD_TOKEN", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "cli-home"))
    return CliRunner()


def _cli_members(cli: CliRunner, project: str) -> dict[str, str]:
    result = cli.invoke(app, ["projects", "members", project, "--json"])
    assert result.exit_code == 0, result.output
    return {m["username"]: m["role"] for m in orjson.loads(result.stdout)}


def test_last_admin_from_the_shell(cli: CliRunner) -> None:
    for user in ("ann", "bo"):
        assert cli.invoke(app, ["users", "create", user, "--no-password"]).exit_code == 0
    assert cli.invoke(app, ["projects", "create", "vision"]).exit_code == 0
    assert cli.invoke(app, ["projects", "grant", "vision", "ann", "admin"]).exit_code == 0

    for args in (["revoke", "vision", "ann"], ["grant", "vision", "ann", "editor"]):
        result = cli.invoke(app, ["projects", *args])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error (conflict):")
        assert "without an admin" in result.stderr and "Traceback" not in result.output
    assert _cli_members(cli, "vision") == {"ann": "admin"}

    assert cli.invoke(app, ["projects", "grant", "vision", "bo", "admin"]).exit_code == 0
    result = cli.invoke(app, ["projects", "grant", "vision", "ann", "editor"])
    assert result.exit_code == 0, result.output
    assert cli.invoke(app, ["projects", "revoke", "vision", "ann"]).exit_code == 0
    assert _cli_members(cli, "vision") == {"bo": "admin"}
