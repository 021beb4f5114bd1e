"""MLflow's error shape: which requests get it, and the codes and statuses it uses.

Kept apart from the protocol's messages (:mod:`shipyard.mlflow_compat.protocol`),
which import the resolvers of three domains: the server's error handlers need only
this, and so does every embedded command that never serves MLflow.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    ShipyardError,
    Unauthenticated,
    Unavailable,
)

# Path fragments that mark a request as MLflow's (also under /projects/<name>).
MLFLOW_PATH_MARKERS = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow")

# MLflow's error codes and the HTTP status its server answers each with.
MLFLOW_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "MALFORMED_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "ENDPOINT_NOT_FOUND": 404,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}

# Shipyard's error codes in MLflow's words. A ShipyardError can override the
# choice with ``details["mlflow_error_code"]`` (a changed param is a Conflict in
# Shipyard, INVALID_PARAMETER_VALUE in MLflow).
_FROM_SHIPYARD = {
    "invalid_input": "INVALID_PARAMETER_VALUE",
    "unauthenticated": "UNAUTHENTICATED",
    "permission_denied": "PERMISSION_DENIED",
    "not_found": "RESOURCE_DOES_NOT_EXIST",
    "conflict": "RESOURCE_ALREADY_EXISTS",
    "payload_too_large": "INVALID_PARAMETER_VALUE",
    "method_not_allowed": "ENDPOINT_NOT_FOUND",
    "unavailable": "TEMPORARILY_UNAVAILABLE",
}

MLFLOW_CODE = "mlflow_error_code"

_CLASS_BY_STATUS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    503: Unavailable,
}


def is_mlflow_path(path: str) -> bool:
    """Whether a request path belongs to the MLflow protocol (errors in its shape)."""
    return any(marker in path for marker in MLFLOW_PATH_MARKERS) or "/mlflow-artifacts/" in path


def mlflow_error(err: ShipyardError) -> tuple[dict[str, Any], int]:
    """``({"error_code", "message"}, status)`` for an error on an MLflow route."""
    code = str(err.details.get(MLFLOW_CODE) or _FROM_SHIPYARD.get(err.code, "INTERNAL_ERROR"))
    return {"error_code": code, "message": err.message}, MLFLOW_STATUS.get(code, 500)


def fail(error_code: str, message: str) -> ShipyardError:
    """An error that reaches an MLflow client with exactly ``error_code``.

    ``raise fail("INVALID_PARAMETER_VALUE", "...")``; on native routes it would read
    as the Shipyard error of the same status.
    """
    cls = _CLASS_BY_STATUS.get(MLFLOW_STATUS.get(error_code, 500), ShipyardError)
    return cls(message, {MLFLOW_CODE: error_code})
