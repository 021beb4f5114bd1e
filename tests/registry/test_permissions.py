"""Who may do what in the registry, against a server that requires auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.auth.conftest import Secured, secured_server

from shipyard.errors import NotFound, PermissionDenied
from shipyard.platform import Platform

from .conftest import log_model, train


@pytest.fixture
def secured(
    request: pytest.FixtureRequest, tmp_path: Path, server_for: Callable[[Platform], Any]
) -> Iterator[Secured]:
    yield from secured_server(request, "sqlite", tmp_path, server_for)


def test_roles(secured: Secured, tmp_path: Path) -> None:
    secured.project("alpha")
    viewer = secured.sdk(secured.user("vic", roles={"alpha": "viewer"}))
    editor = secured.sdk(secured.user("ed", roles={"alpha": "editor"}))
    admin = secured.sdk(secured.user("ada", roles={"alpha": "admin"}))
    outsider = secured.sdk(secured.user("out"))
    for c in (viewer, editor, admin, outsider):
        c.project = "alpha"

    model, _ = train(0)
    run_id = log_model(editor, model, tmp_path)
    editor.models.create("m")
    editor.models.create_version("m", run_id)
    editor.models.set_alias("m", "champion", 1)

    assert viewer.models.get("m").aliases == {"champion": 1}
    assert viewer.models.load("m@champion").predict(train(0)[1]).shape == (50,)
    with pytest.raises(PermissionDenied):
        viewer.models.create("n")
    with pytest.raises(PermissionDenied):
        viewer.models.set_alias("m", "champion", 1)
    with pytest.raises(PermissionDenied):
        outsider.models.get("m")
    # Deleting a whole model needs the project admin role; an editor may delete a version.
    with pytest.raises(PermissionDenied):
        editor.models.delete("m")
    editor.models.delete_version("m", 1)
    admin.models.delete("m")
    with pytest.raises(NotFound):
        admin.models.get("m")
