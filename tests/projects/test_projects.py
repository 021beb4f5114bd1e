from __future__ import annotations

import pytest

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
