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
