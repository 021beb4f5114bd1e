from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.auth.conftest import Secured, secured_server

from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput, NotFound


def test_default_project_exists(client: Client) -> None:
    names = [p.name for p in client.projects.list()]
    assert names == ["default"]


def test_create_and_get(client: Client) -> None:
    created = client.projects.create("vision", "image models")
    assert created.role == "admin"
    assert client.projects.get("vision").id == created.id
    assert client.projects.get(str(created.id)).name == "vision"


def test_duplicate_and_bad_names_change_nothing(client: Client) -> None:
    client.projects.create("nlp")
    with pytest.raises(Conflict):
        client.projects.create("nlp")
    with pytest.raises(InvalidInput):
        client.projects.create("has space")
    with pytest.raises(NotFound):
        client.projects.get("missing")
    assert sorted(p.name for p in client.projects.list()) == ["default", "nlp"]


@pytest.mark.parametrize("name", ["1234", "2", "007"])
def test_all_digit_names_are_refused_and_change_nothing(client: Client, name: str) -> None:
    # An all-digit reference is read as a project id: such a project could not be
    # reached by name, and its name would reach another project.
    with pytest.raises(InvalidInput, match="must contain a character other than a digit"):
        client.projects.create(name)
    assert [p.name for p in client.projects.list()] == ["default"]
    for allowed in ("1a", "1.2", "2024-q1"):
        assert client.projects.create(allowed).name == allowed


@pytest.mark.parametrize("ref", ["²", "٢", "２"])
def test_other_digits_are_names_not_ids(client: Client, ref: str) -> None:
    assert client.projects.create("second").id == 2  # what int() reads '٢' and '２' as
    with pytest.raises(NotFound, match="not found"):
        client.projects.get(ref)


@pytest.fixture
def secured(
    request: pytest.FixtureRequest, db_backend: str, tmp_path: Path, server_for: object
) -> Iterator[Secured]:
    yield from secured_server(request, db_backend, tmp_path, server_for)  # type: ignore[arg-type]


def test_get_answers_the_callers_role_as_the_list_does(secured: Secured) -> None:
    secured.project("alpha")
    roles = {"ed": "editor", "vic": "viewer", "ada": "admin"}
    tokens = {user: secured.user(user, roles={"alpha": role}) for user, role in roles.items()}
    tokens["root"], roles["root"] = secured.admin_token, "admin"  # a site admin
    for user, token in tokens.items():
        sdk = secured.sdk(token)
        assert {p.name: p.role for p in sdk.projects.list()}["alpha"] == roles[user], user
        assert sdk.projects.get("alpha").role == roles[user], user
