"""Who may do what with datasets, against a real server that requires auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from blake3 import blake3
from tests.auth.conftest import Secured, secured_server

from shipyard.client import Client
from shipyard.datasets.transfer import Transfer
from shipyard.errors import NotFound, PermissionDenied
from shipyard.platform import Platform


@pytest.fixture
def secured(
    request: pytest.FixtureRequest, tmp_path: Path, server_for: Callable[[Platform], Any]
) -> Iterator[Secured]:
    yield from secured_server(request, "sqlite", tmp_path, server_for)


def _sdk(
    secured: Secured, username: str, roles: dict[str, str] | None = None
) -> tuple[Client, str]:
    token = secured.user(username, roles=roles)
    client = secured.sdk(token)
    client.project = "alpha"
    return client, token


def test_roles(secured: Secured, tmp_path: Path) -> None:
    secured.project("alpha")
    secured.project("beta")
    viewer, viewer_token = _sdk(secured, "vic", {"alpha": "viewer"})
    editor, _ = _sdk(secured, "ed", {"alpha": "editor", "beta": "editor"})
    admin, _ = _sdk(secured, "ada", {"alpha": "admin"})
    outsider, _ = _sdk(secured, "out")

    editor.datasets.create("churn", description="customers")
    editor.datasets.ingest("churn", pa.table({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0]}))
    editor.datasets.ingest("churn", pa.table({"id": [1, 2, 4], "x": [1.0, 2.5, 4.0]}))
    other = editor.datasets.ingest("secret", pa.table({"k": [42]}), project="beta")

    # A viewer reads: listings, versions, diffs, the data itself.
    assert [d.name for d in viewer.datasets.list().datasets] == ["churn"]
    assert viewer.datasets.get_version("churn", 1).rows == 3
    assert viewer.datasets.diff("churn", 1, 2, keys=["id"]).rows_diff is not None
    assert viewer.datasets.to_arrow("churn", 2).column("id").to_pylist() == [1, 2, 4]
    assert viewer.datasets.lineage("churn", 2).parents == []

    # ... and changes nothing.
    blob = b"not yours to add"
    digest = blake3(blob).hexdigest()
    with pytest.raises(PermissionDenied):
        viewer.datasets.create("mine")
    with pytest.raises(PermissionDenied):
        viewer.datasets.ingest("churn", pa.table({"id": [9], "x": [9.0]}))
    with pytest.raises(PermissionDenied):
        viewer.datasets.set_tag("churn", "prod", 1)
    with pytest.raises(PermissionDenied):
        viewer.datasets.update("churn", description="changed")
    with pytest.raises(PermissionDenied):
        Transfer(viewer, "alpha").publish({digest: blob})
    http = secured.http(viewer_token)
    upload = http.put(f"/projects/alpha/dataset-blobs/{digest}", content=blob)
    assert upload.status_code == 403
    claim = http.post("/projects/alpha/datasets/-/claim-blobs", json={"hashes": [digest]})
    assert claim.status_code == 403
    join = {"hash": digest, "pieces": [[digest, len(blob)]]}
    assert http.post("/projects/alpha/datasets/-/join-blob", json=join).status_code == 403
    run = editor.runs.create(name="train")
    with pytest.raises(PermissionDenied):
        viewer.datasets.log_input(run.id, "churn", 1)
    assert editor.datasets.log_input(run.id, "churn", 1).version == 1
    assert [i.version for i in viewer.datasets.inputs_of(run.id)] == [1]
    assert editor.datasets.get("churn").tags == {"latest": 2}
    assert editor.datasets.get("churn").latest_version == 2

    # A hash learnt elsewhere opens nothing: not through alpha, and beta is not the viewer's.
    secret_hash = editor.datasets.get_version("secret", other.version, project="beta").files[0]
    with pytest.raises(NotFound):
        Transfer(viewer, "alpha").fetch([secret_hash.hash])
    with pytest.raises(PermissionDenied):
        Transfer(viewer, "beta").fetch([secret_hash.hash])
    with pytest.raises(PermissionDenied):
        viewer.datasets.get("secret", project="beta")

    # Outsiders see nothing of the project.
    with pytest.raises(PermissionDenied):
        outsider.datasets.list()
    with pytest.raises(PermissionDenied):
        outsider.datasets.get("churn")
    with pytest.raises(PermissionDenied):
        outsider.datasets.inputs_of(run.id)

    # Deleting a whole dataset takes the project admin role.
    with pytest.raises(PermissionDenied):
        editor.datasets.delete("churn")
    admin.datasets.delete("churn")
    with pytest.raises(NotFound):
        viewer.datasets.get("churn")
