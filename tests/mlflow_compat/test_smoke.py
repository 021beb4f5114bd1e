"""The protocol plumbing: errors in MLflow's shape, and an unknown endpoint."""

from __future__ import annotations

import httpx

from .conftest import MlflowTarget


def test_unknown_endpoint_answers_in_mlflow_shape(mlflow_target: MlflowTarget) -> None:
    response = httpx.post(f"{mlflow_target.url}/api/2.0/mlflow/no-such-thing", json={})
    assert response.status_code == 404
    assert set(response.json()) == {"error_code", "message"}
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_wrong_method_is_endpoint_not_found(mlflow_target: MlflowTarget) -> None:
    response = httpx.delete(f"{mlflow_target.url}/api/2.0/mlflow/runs/create")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_each_path_app_serves_the_route_the_whole_protocol_would() -> None:
    """A path's own app (ProtocolFastPath) holds the route that the whole protocol's
    routes, tried in order, give each of its methods; paths where a parametrised route
    could answer instead are left to the whole protocol."""
    import importlib

    from fastapi.routing import APIRoute

    from shipyard.mlflow_compat.routes import COMPAT_ROUTES, routers_by_path

    ordered = [
        route
        for module in COMPAT_ROUTES
        for route in importlib.import_module(module).router.routes
        if isinstance(route, APIRoute)
    ]
    by_path = routers_by_path()
    assert "/api/2.0/mlflow/runs/log-batch" in by_path
    assert "/api/2.0/mlflow/logged-models/search" not in by_path  # also /{model_id}
    for path, router in by_path.items():
        own = [r for r in router.routes if isinstance(r, APIRoute)]
        assert own and all(r.path == path for r in own)
        for method in {m for r in own for m in r.methods}:
            first = next(r for r in ordered if method in r.methods and r.path_regex.match(path))
            assert first in own, (path, method, first.path)
