"""create_app(): the one HTTP application, served by uvicorn or mounted in-process."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

import shipyard
from shipyard.mlflow_compat.routes import mount as mount_mlflow_protocol
from shipyard.platform import Platform
from shipyard.server.errors import install_error_handlers
from shipyard.server.health import router as health_router
from shipyard.server.limits import BodyLimit

API_PREFIX = "/api/v1"

# Each domain exposes `router` in its routes module; order does not matter.
DOMAIN_ROUTES = (
    "shipyard.projects.routes",
    "shipyard.auth.routes",
    "shipyard.tracking.routes",
    "shipyard.tracking.artifact_routes",
    "shipyard.registry.routes",
)


def create_app(platform: Platform) -> FastAPI:
    """Build the application over ``platform``'s stores."""
    app = FastAPI(
        title="Shipyard",
        version=shipyard.__version__,
        description="ML platform API: tracking, registry, auth.",
    )
    app.state.platform = platform
    install_error_handlers(app)
    app.include_router(health_router)
    for module in DOMAIN_ROUTES:
        app.include_router(importlib.import_module(module).router, prefix=API_PREFIX)
    mount_mlflow_protocol(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=platform.settings.max_request_bytes,
        streaming=("/artifacts", "/mlflow-artifacts/"),
    )
    return app
