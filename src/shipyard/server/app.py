"""create_app(): the one HTTP application, served by uvicorn or mounted in-process."""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import shipyard
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
    "shipyard.datasets.routes",
    "shipyard.datasets.inputs",
)


def create_app(platform: Platform, *, mlflow: bool = True, ui: bool = True) -> FastAPI:
    """Build the application over ``platform``'s stores.

    ``mlflow=False`` leaves out MLflow's protocol and ``ui=False`` the web pages: the
    embedded SDK calls neither, and building their routes would cost every CLI start
    a few tenths of a second.
    """
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
    if ui:
        from shipyard.ui.routes import build_router

        app.include_router(build_router())
    if mlflow:
        from shipyard.mlflow_compat.routes import mount as mount_mlflow_protocol

        mount_mlflow_protocol(app)
        app.add_middleware(ProtocolFastPath, protocol=_protocol_app(app))
    app.add_middleware(
        BodyLimit,
        max_bytes=platform.settings.max_request_bytes,
        streaming=("/artifacts", "/mlflow-artifacts/", "/dataset-blobs/"),
    )
    return app


def _protocol_app(app: FastAPI) -> FastAPI:
    """The MLflow protocol routes alone, with ``app``'s state and error handling."""
    from shipyard.mlflow_compat.routes import mount as mount_mlflow_protocol

    protocol = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    protocol.state.platform = app.state.platform
    protocol.dependency_overrides = app.dependency_overrides
    install_error_handlers(protocol)
    mount_mlflow_protocol(protocol)
    return protocol


class ProtocolFastPath:
    """Sends MLflow protocol requests straight to an app that holds only those routes.

    The application lists them too (so every route walker and check sees them), after
    the native ones; FastAPI finds a route by trying each in turn, and the ~100 native
    routes cost an MLflow request 0.1-0.3 ms before its own is reached.
    """

    def __init__(self, app: ASGIApp, protocol: ASGIApp) -> None:
        from shipyard.mlflow_compat.routes import is_protocol_path

        self.app = app
        self.protocol = protocol
        self._is_protocol_path = is_protocol_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_protocol_path(scope["path"]):
            await self.protocol(scope, receive, send)
        else:
            await self.app(scope, receive, send)
