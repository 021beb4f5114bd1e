"""``shipyard users`` and ``shipyard tokens``: embedded (the bootstrap path) and remote."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.client import Client

from .conftest import Secured


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A runner whose commands use a fresh embedded home unless told otherwise."""
    for name in ("SHIPYARD_URL", "SHIPYARD_TOKEN", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "cli-home"))
    return CliRunner()


def _ok(cli: CliRunner, args: list[str], stdin: str | None = None) -> str:
    result = cli.invoke(app, args, input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def _json(cli: CliRunner, args: list[str], stdin: str | None = None) -> object:
    return orjson.loads(_ok(cli, [*args, "--json"], stdin))


def test_embedded_users_and_tokens(cli: CliRunner) -> None:
    created = _json(
        cli, ["users", "create", "admin", "--admin", "--password-stdin"], "pw-admin-1\n"
    )
    assert created == {**created, "username": "admin", "is_admin": True, "has_password": True}
    token = _json(cli, ["tokens", "create", "--user", "admin", "--name", "ci"])
    assert isinstance(token, dict) and token["token"].startswith("shy_")
    assert token["expires_at"] is not None
    # The local user has no account of its own and sees every token, without secrets.
    listed = _json(cli, ["tokens", "list"])
    assert isinstance(listed, list) and [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0]
    assert _ok(cli, ["tokens", "revoke", str(token["id"])]) == f"token {token['id']} revoked\n"
    # Again: said so, exit 0 (the token is revoked, as asked), nothing changed.
    again = _ok(cli, ["tokens", "revoke", str(token["id"])])
    assert f"token {token['id']} was already revoked" in again and "nothing changed" in again
    with Client() as client:
        assert len(client.audit.list(action="tokens.revoke")) == 1
    assert _json(cli, ["tokens", "list"]) == []
    revoked = _json(cli, ["tokens", "list", "--all"])
    assert isinstance(revoked, list) and revoked[0]["revoked_at"] is not None
    users = _json(cli, ["users", "list"])
    assert isinstance(users, list) and [u["username"] for u in users] == ["admin"]
    assert "admin" in _ok(cli, ["users", "list"])


def test_password_prompted_twice(cli: CliRunner) -> None:
    # A mismatch asks again; the second pair matches.
    stdin = "first-pass\nother-pass\nfinal-pass\nfinal-pass\n"
    created = _json(cli, ["users", "create", "pam"], stdin)
    assert isinstance(created, dict) and created["has_password"] is True
    no_pw = _json(cli, ["users", "create", "svc", "--no-password"])
    assert isinstance(no_pw, dict) and no_pw["has_password"] is False


def test_bad_input_is_a_clean_error_and_changes_nothing(cli: CliRunner) -> None:
    result = cli.invoke(app, ["users", "create", "amy", "--password-stdin"], input="short\n")
    assert result.exit_code == 1
    assert "invalid_input" in result.output and "Traceback" not in result.output
    result = cli.invoke(app, ["users", "create", "bad name", "--no-password"])
    assert result.exit_code == 1
    assert _json(cli, ["users", "list"]) == []
    result = cli.invoke(app, ["tokens", "create"])
    assert result.exit_code == 1 and "name the user" in result.output
    result = cli.invoke(app, ["tokens", "revoke", "42"])
    assert result.exit_code == 1 and "not_found" in result.output


def test_first_admin_bootstrapped_on_the_server_database(
    cli: CliRunner, secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Embedded, against the server's own database: the local OS user has every right.
    url = secured.platform.db.url.render_as_string(hide_password=False)
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", url)
    _ok(cli, ["users", "create", "boss", "--admin", "--password-stdin"], "boss-password\n")
    # The new admin logs in over the network and works there.
    token = secured.sdk("").tokens.login("boss", "boss-password")
    assert secured.sdk(token.token).users.me().is_admin is True


def test_remote_commands_use_the_token(
    cli: CliRunner, secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_URL", secured.url)
    monkeypatch.setenv("SHIPYARD_TOKEN", secured.admin_token)
    _ok(cli, ["users", "create", "bob", "--no-password"])
    out = _ok(cli, ["tokens", "create", "--user", "bob", "--name", "laptop", "--no-expiry"])
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("shy_")
    monkeypatch.setenv("SHIPYARD_TOKEN", secret)
    me = _json(cli, ["users", "me"])
    assert me == {"username": "bob", "is_admin": False, "projects": []}
    result = cli.invoke(app, ["users", "create", "eve", "--no-password"])
    assert result.exit_code == 1 and "permission_denied" in result.output
    mine = _json(cli, ["tokens", "list"])
    assert isinstance(mine, list) and mine[0]["expires_at"] is None
    _ok(cli, ["tokens", "revoke", str(mine[0]["id"])])
    result = cli.invoke(app, ["users", "me"])
    assert result.exit_code == 1 and "revoked" in result.output
    monkeypatch.delenv("SHIPYARD_TOKEN")
    result = cli.invoke(app, ["users", "list"])
    assert result.exit_code == 1 and "authentication required" in result.output


def test_project_roles_from_the_shell(cli: CliRunner) -> None:
    _ok(cli, ["users", "create", "ann", "--password-stdin"], "pw-ann-12\n")
    created = _json(cli, ["projects", "create", "vision"])
    assert isinstance(created, dict) and created["name"] == "vision"  # the object, not a list
    granted = _json(cli, ["projects", "grant", "vision", "ann", "viewer"])
    assert granted == {"username": "ann", "role": "viewer"}
    assert "ann is editor of vision" in _ok(cli, ["projects", "grant", "vision", "ann", "editor"])
    members = _json(cli, ["projects", "members", "vision"])
    assert isinstance(members, list) and {"username": "ann", "role": "editor"} in members
    assert "no role on vision" in _ok(cli, ["projects", "revoke", "vision", "ann"])
    members = _json(cli, ["projects", "members", "vision"])
    assert isinstance(members, list) and "ann" not in [m["username"] for m in members]
    # A role that does not exist, or a user who does not: one line, nothing changed.
    for args in (["vision", "ann", "owner"], ["vision", "nobody", "viewer"]):
        result = cli.invoke(app, ["projects", "grant", *args])
        assert result.exit_code == 1 and result.stderr.startswith("error"), result.output
    assert "ann" not in [m["username"] for m in _json(cli, ["projects", "members", "vision"])]  # type: ignore[union-attr]


def test_an_all_digit_project_name_is_one_error_line(cli: CliRunner) -> None:
    result = cli.invoke(app, ["projects", "create", "1234"])
    assert result.exit_code == 1 and result.stderr.startswith("error"), result.output
    assert "must contain a character other than a digit" in result.stderr
    assert "Traceback" not in result.output
    projects = _json(cli, ["projects", "list"])
    assert isinstance(projects, list) and [p["name"] for p in projects] == ["default"]
