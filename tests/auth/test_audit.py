"""Every change writes an audit event: who, what, which object, when, from where.

The walk reads the mutating routes from the OpenAPI schema and calls each one
it has a recipe for; a mutating route without a recipe fails
``test_every_mutating_route_is_walked``, so new routes get audited (and tested).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shipyard.clock import now_ms
from shipyard.errors import PermissionDenied

from .conftest import Secured

CONVERTOR = re.compile(r"\{(\w+):\w+\}")  # {path:path} -> {path}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that only read (a query too large for a URL, or a computation over stored data).
READ_ONLY = {
    ("POST", "/projects/{project}/runs/search"),
    ("POST", "/projects/{project}/datasets/-/missing-blobs"),
    ("POST", "/projects/{project}/datasets/{name}/versions/{version}/validate"),
}
# Routes that answer only callers in the server's own process (refused over HTTP);
# tests/datasets checks their audit events in embedded mode.
IN_PROCESS_ONLY = {("POST", "/projects/{project}/datasets/-/claim-blobs")}
ACTOR = "alice"
SOURCE = "127.0.0.1"


@dataclass
class Expect:
    """What the event must say; None means 'any' (for domains whose names we do not own)."""

    action: str | None = None
    object_type: str | None = None
    object_ids: set[str] = field(default_factory=set)
    actor: str = ACTOR
    project: bool = False  # the event carries the project's id


@dataclass
class Walk:
    secured: Secured
    http: httpx.Client
    state: dict[str, Any] = field(default_factory=dict)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, f"{response.request.url}: {response.text}"
        return response.json() if response.content else None


Recipe = Callable[[Walk], Expect]


def _create_user(w: Walk) -> Expect:
    w.ok(w.http.post("/users", json={"username": "bob", "password": "bob-password"}))
    return Expect("users.create", "user", {"bob"})


def _update_user(w: Walk) -> Expect:
    w.ok(w.http.patch("/users/bob", json={"password": "bob-password-2"}))
    return Expect("users.update", "user", {"bob"})


def _create_token(w: Walk) -> Expect:
    w.state["token"] = w.ok(w.http.post("/tokens", json={"name": "walk", "username": "bob"}))
    return Expect("tokens.create", "token", {str(w.state["token"]["id"])})


def _revoke_token(w: Walk) -> Expect:
    w.ok(w.http.delete(f"/tokens/{w.state['token']['id']}"))
    return Expect("tokens.revoke", "token", {str(w.state["token"]["id"])})


def _login(w: Walk) -> Expect:
    login = {"username": "bob", "password": "bob-password-2"}
    created = w.ok(httpx.post(w.secured.url + "/api/v1/auth/login", json=login))
    return Expect("auth.login", "token", {str(created["id"])}, actor="bob")


def _create_project(w: Walk) -> Expect:
    w.state["project"] = w.ok(w.http.post("/projects", json={"name": "audited"}))
    return Expect("projects.create", "project", {str(w.state["project"]["id"])}, project=True)


def _set_member(w: Walk) -> Expect:
    w.ok(w.http.put("/projects/audited/members", json={"username": "bob", "role": "viewer"}))
    return Expect("projects.set_member", "project", {str(w.state["project"]["id"])}, project=True)


def _remove_member(w: Walk) -> Expect:
    w.ok(w.http.delete("/projects/audited/members/bob"))
    pid = str(w.state["project"]["id"])
    return Expect("projects.remove_member", "project", {pid}, project=True)


def _tracked(w: Walk) -> Expect:
    ids = {str(w.state[k]["id"]) for k in ("experiment", "run", "model", "version") if k in w.state}
    return Expect(object_ids=ids, project=True)


def _create_experiment(w: Walk) -> Expect:
    w.state["experiment"] = w.ok(
        w.http.post("/projects/audited/experiments", json={"name": "walk"})
    )
    return _tracked(w)


def _experiment_call(method: str, suffix: str, body: Any = None) -> Recipe:
    def call(w: Walk) -> Expect:
        path = f"/experiments/{w.state['experiment']['id']}{suffix}"
        w.ok(w.http.request(method, path, json=body))
        return _tracked(w)

    return call


def _create_run(w: Walk) -> Expect:
    path = f"/experiments/{w.state['experiment']['id']}/runs"
    w.state["run"] = w.ok(w.http.post(path, json={"name": "walk-run"}))
    return _tracked(w)


def _create_runs(w: Walk) -> Expect:
    path = f"/experiments/{w.state['experiment']['id']}/runs/bulk"
    runs = [{"name": "bulk-a"}, {"name": "bulk-b", "status": "finished"}]
    ids = w.ok(w.http.post(path, json={"runs": runs}))["run_ids"]
    return Expect("runs.create", "run", set(ids), project=True)


def _run_call(method: str, suffix: str, body: Any = None) -> Recipe:
    def call(w: Walk) -> Expect:
        w.ok(w.http.request(method, f"/runs/{w.state['run']['id']}{suffix}", json=body))
        return _tracked(w)

    return call


def _upload_artifact(w: Walk) -> Expect:
    path = f"/runs/{w.state['run']['id']}/artifacts/model/notes.txt"
    w.ok(w.http.put(path, content=b"hello", headers={"content-type": "application/octet-stream"}))
    return _tracked(w)


MODEL = "/projects/audited/models/walk-model"


def _create_model(w: Walk) -> Expect:
    w.state["model"] = w.ok(w.http.post("/projects/audited/models", json={"name": "walk-model"}))
    return _tracked(w)


def _create_version(w: Walk) -> Expect:
    body = {"run_id": w.state["run"]["id"], "source_path": "model"}
    w.state["version"] = w.ok(w.http.post(MODEL + "/versions", json=body))
    return _tracked(w)


def _model_call(method: str, suffix: str, body: Any = None) -> Recipe:
    def call(w: Walk) -> Expect:
        w.ok(w.http.request(method, MODEL + suffix, json=body))
        return _tracked(w)

    return call


DATASET = "/projects/audited/datasets/walk-data"
BLOB = b"walk dataset file"


def _create_dataset(w: Walk) -> Expect:
    w.ok(w.http.post("/projects/audited/datasets", json={"name": "walk-data"}))
    return Expect("datasets.create", "dataset", project=True)


def _upload_dataset_blob(w: Walk) -> Expect:
    from blake3 import blake3

    w.state["blob"] = digest = blake3(BLOB).hexdigest()
    w.ok(
        w.http.put(
            f"/projects/audited/dataset-blobs/{digest}",
            content=BLOB,
            headers={"content-type": "application/octet-stream"},
        )
    )
    return Expect("datasets.upload_blob", "project", {str(w.state["project"]["id"])}, project=True)


def _join_dataset_blob(w: Walk) -> Expect:
    # The blob uploaded above, joined from its own bytes: a list of one piece.
    pieces = [[w.state["blob"], len(BLOB)]]
    body = {"hash": w.state["blob"], "pieces": pieces}
    w.ok(w.http.post("/projects/audited/datasets/-/join-blob", json=body))
    return Expect("datasets.join_blob", "project", {str(w.state["project"]["id"])}, project=True)


def _create_dataset_version(w: Walk) -> Expect:
    body = {
        "files": [{"path": "a.parquet", "hash": w.state["blob"], "size": len(BLOB), "rows": 1}],
        "columns": [{"name": "a", "type": "int64"}],
    }
    w.ok(w.http.post(DATASET + "/versions", json=body))
    return Expect("datasets.create_version", "dataset_version", project=True)


def _dataset_call(method: str, suffix: str, body: Any = None) -> Recipe:
    def call(w: Walk) -> Expect:
        w.ok(w.http.request(method, DATASET + suffix, json=body))
        return Expect(object_type="dataset", project=True)

    return call


def _log_dataset_input(w: Walk) -> Expect:
    run_id = w.state["run"]["id"]
    body = {"project": "audited", "dataset": "walk-data", "version": "1", "context": "training"}
    w.ok(w.http.post(f"/runs/{run_id}/dataset-inputs", json=body))
    return Expect("runs.log_dataset_input", "run", {run_id}, project=True)


DATASETS = "/projects/{project}/datasets"

BATCH = {
    "params": {"lr": "0.1"},
    "tags": {"team": "a"},
    "metrics": {"keys": ["loss"], "values": [0.5], "steps": [0], "timestamps": [0]},
}

MODELS = "/projects/{project}/models"
VERSION = MODELS + "/{name}/versions/{version}"
ALIAS = MODELS + "/{name}/aliases/{alias}"

# In the order they run: later steps use what earlier ones made.
RECIPES: list[tuple[str, str, Recipe]] = [
    ("POST", "/users", _create_user),
    ("PATCH", "/users/{username}", _update_user),
    ("POST", "/tokens", _create_token),
    ("DELETE", "/tokens/{token_id}", _revoke_token),
    ("POST", "/auth/login", _login),
    ("POST", "/projects", _create_project),
    ("PUT", "/projects/{project}/members", _set_member),
    ("DELETE", "/projects/{project}/members/{username}", _remove_member),
    ("POST", "/projects/{project}/experiments", _create_experiment),
    ("PATCH", "/experiments/{experiment_id}", _experiment_call("PATCH", "", {"description": "d"})),
    ("PUT", "/experiments/{experiment_id}/tags", _experiment_call("PUT", "/tags", {"k": "v"})),
    ("POST", "/experiments/{experiment_id}/runs", _create_run),
    ("POST", "/experiments/{experiment_id}/runs/bulk", _create_runs),
    ("PATCH", "/runs/{run_id}", _run_call("PATCH", "", {"name": "renamed"})),
    ("POST", "/runs/{run_id}/batch", _run_call("POST", "/batch", BATCH)),
    ("POST", "/runs/{run_id}/heartbeat", _run_call("POST", "/heartbeat")),  # the first one
    ("DELETE", "/runs/{run_id}/tags/{key}", _run_call("DELETE", "/tags/team")),
    ("PUT", "/runs/{run_id}/artifacts/{path}", _upload_artifact),
    ("POST", "/projects/{project}/models", _create_model),
    ("PATCH", MODELS + "/{name}", _model_call("PATCH", "", {"description": "d"})),
    ("PUT", MODELS + "/{name}/tags", _model_call("PUT", "/tags", {"k": "v"})),
    ("DELETE", MODELS + "/{name}/tags/{key}", _model_call("DELETE", "/tags/k")),
    ("POST", MODELS + "/{name}/versions", _create_version),
    ("PATCH", VERSION, _model_call("PATCH", "/versions/1", {"description": "d"})),
    ("PUT", VERSION + "/tags", _model_call("PUT", "/versions/1/tags", {"k": "v"})),
    ("DELETE", VERSION + "/tags/{key}", _model_call("DELETE", "/versions/1/tags/k")),
    (
        "PUT",
        MODELS + "/{name}/aliases/{alias}",
        _model_call("PUT", "/aliases/prod", {"version": 1}),
    ),
    ("DELETE", ALIAS, _model_call("DELETE", "/aliases/prod")),
    ("DELETE", VERSION, _model_call("DELETE", "/versions/1")),
    ("DELETE", MODELS + "/{name}", _model_call("DELETE", "")),
    ("POST", DATASETS, _create_dataset),
    ("PATCH", DATASETS + "/{name}", _dataset_call("PATCH", "", {"description": "d"})),
    ("PUT", "/projects/{project}/dataset-blobs/{digest}", _upload_dataset_blob),
    ("POST", DATASETS + "/-/join-blob", _join_dataset_blob),
    ("POST", DATASETS + "/{name}/versions", _create_dataset_version),
    ("PUT", DATASETS + "/{name}/tags/{tag}", _dataset_call("PUT", "/tags/prod", {"version": 1})),
    ("DELETE", DATASETS + "/{name}/tags/{tag}", _dataset_call("DELETE", "/tags/prod")),
    ("POST", "/runs/{run_id}/dataset-inputs", _log_dataset_input),
    ("DELETE", DATASETS + "/{name}", _dataset_call("DELETE", "")),
    ("DELETE", "/runs/{run_id}", _run_call("DELETE", "")),
    ("POST", "/runs/{run_id}/restore", _run_call("POST", "/restore")),
    ("DELETE", "/experiments/{experiment_id}", _experiment_call("DELETE", "")),
    ("POST", "/experiments/{experiment_id}/restore", _experiment_call("POST", "/restore")),
]


def _mutating_routes(secured: Secured) -> set[tuple[str, str]]:
    signed_in = {"authorization": f"Bearer {secured.admin_token}"}
    paths = httpx.get(secured.url + "/openapi.json", headers=signed_in).json()["paths"]
    found = set()
    for path, operations in paths.items():
        for method in operations:
            key = (method.upper(), CONVERTOR.sub(r"{\1}", path.removeprefix("/api/v1")))
            if key[0] in MUTATING and key not in READ_ONLY | IN_PROCESS_ONLY:
                found.add(key)
    return found


def test_every_mutating_route_is_walked(secured: Secured) -> None:
    known = {(m, p) for m, p, _ in RECIPES}
    missing = sorted(_mutating_routes(secured) - known)
    assert not missing, f"mutating routes with no audit recipe in {__file__}: {missing}"


def test_each_mutation_writes_an_audit_event(secured: Secured) -> None:
    walk = Walk(secured, secured.http(secured.user(ACTOR, is_admin=True)))
    available = _mutating_routes(secured)
    walked = []
    for method, path, recipe in RECIPES:
        if (method, path) not in available:
            continue
        before_id, before_ms = secured.last_audit_id(), now_ms()
        expect = recipe(walk)
        events = secured.audit_rows(before_id)
        where = f"{method} {path}"
        assert events, f"{where} wrote no audit event"
        for ev in events:
            assert ev.actor == expect.actor, where
            assert ev.source == SOURCE, where
            assert before_ms <= ev.at <= now_ms(), where
            assert ev.action and ev.object_type and ev.object_id, where
        assert any(
            (expect.action is None or ev.action == expect.action)
            and (expect.object_type is None or ev.object_type == expect.object_type)
            and (not expect.object_ids or ev.object_id in expect.object_ids)
            and (not expect.project or ev.project_id == walk.state["project"]["id"])
            for ev in events
        ), f"{where}: no event matches {expect}: {[vars(e) for e in events]}"
        walked.append(where)
    assert len(walked) >= 8  # auth and projects routes at least


def test_audit_events_never_hold_secrets(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    admin.users.create("sam", "sam-password")
    admin.users.update("sam", password="sam-password-2")
    created = admin.tokens.create("x", username="sam")
    text = secured.http(secured.admin_token).get("/audit").text
    assert "sam-password" not in text and created.token not in text
    update = admin.audit.list(action="users.update")[0]
    assert update.details == {"password": "changed"}


def test_read_audit_with_filters_newest_first(secured: Secured) -> None:
    admin = secured.sdk(secured.admin_token)
    start = now_ms()
    admin.users.create("u1")
    admin.users.create("u2")
    admin.projects.create("p1")
    events = admin.audit.list(since=start)
    assert [e.action for e in events] == ["projects.create", "users.create", "users.create"]
    assert [e.object_id for e in events[1:]] == ["u2", "u1"]
    assert all(e.actor == "root" and e.source == SOURCE for e in events)
    assert [e.object_id for e in admin.audit.list(object_type="user", object_id="u1")] == ["u1"]
    assert len(admin.audit.list(action="users.create", since=start, limit=1)) == 1
    assert admin.audit.list(actor="nobody") == []
    assert admin.audit.list(until=start - 1, action="projects.create") == []
    p1 = admin.audit.list(project="p1")
    assert [e.action for e in p1] == ["projects.create"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 5000}, {"since": "yesterday"}])
def test_read_audit_bad_query_is_400(secured: Secured, params: dict[str, Any]) -> None:
    response = secured.http(secured.admin_token).get("/audit", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_project_admins_read_their_project_only(secured: Secured) -> None:
    secured.project("alpha")
    secured.project("beta")
    owner = secured.sdk(secured.user("own", roles={"alpha": "admin", "beta": "editor"}))
    viewer = secured.sdk(secured.user("vic", roles={"alpha": "viewer"}))
    owner.projects.set_member("alpha", "vic", "editor")
    events = owner.audit.list(project="alpha")
    assert events[0].action == "projects.set_member" and events[0].actor == "own"
    assert {e.project_id for e in events} == {events[0].project_id}
    with pytest.raises(PermissionDenied, match="project admins pass project"):
        owner.audit.list()
    with pytest.raises(PermissionDenied):
        owner.audit.list(project="beta")
    with pytest.raises(PermissionDenied):
        viewer.audit.list(project="alpha")
