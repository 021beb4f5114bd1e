"""Mounts the MLflow protocol routers at the root and under ``/projects/{project}``."""

from __future__ import annotations

import importlib
import re

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

# Each module exposes `router` with paths as the mlflow client calls them
# (/api/2.0/mlflow/..., /api/3.0/mlflow/..., /api/2.0/mlflow-artifacts/...).
COMPAT_ROUTES = (
    "shipyard.mlflow_compat.tracking_routes",
    "shipyard.mlflow_compat.artifact_routes",
    "shipyard.mlflow_compat.logged_model_routes",
    "shipyard.mlflow_compat.registry_routes",
)

PROJECT_PREFIX = "/projects/{project}"
"""A tracking URI of ``http://host/projects/<name>`` works in project <name>."""

# Where the routers above serve, at the root or under PROJECT_PREFIX.
_PROTOCOL_PATH = re.compile(
    r"^(?:/projects/[^/]+)?/(?:api/2\.0/mlflow(?:-artifacts)?|api/3\.0/mlflow)(?:/|$)"
)


def is_protocol_path(path: str) -> bool:
    """Whether ``path`` is one the MLflow protocol routers serve (no other route does)."""
    return _PROTOCOL_PATH.match(path) is not None


def mount(app: FastAPI) -> None:
    """Serve the MLflow protocol from ``app``: for the default project at the root,
    for any project under :data:`PROJECT_PREFIX`."""
    for module in COMPAT_ROUTES:
        router = importlib.import_module(module).router
        app.include_router(router, include_in_schema=False)
        app.include_router(router, prefix=PROJECT_PREFIX, include_in_schema=False)


def routers_by_path() -> dict[str, APIRouter]:
    """For each protocol path without parameters, a router holding its routes alone.

    A path that a parametrised route also matches is left out: which route serves it
    depends on the order of all of them."""
    static: dict[str, APIRouter] = {}
    parametrised: list[APIRoute] = []
    for module in COMPAT_ROUTES:
        for route in importlib.import_module(module).router.routes:
            if not isinstance(route, APIRoute):
                continue
            if "{" in route.path:
                parametrised.append(route)
            else:
                static.setdefault(route.path, APIRouter()).routes.append(route)
    return {
        path: router
        for path, router in static.items()
        if not any(r.path_regex.match(path) for r in parametrised)
    }
