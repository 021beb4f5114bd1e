"""create_app(): the one HTTP application, served by uvicorn or mounted in-process."""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

import shipyard
from shipyard.auth.gate import AuthenticateFirst
from shipyard.platform import Platform
from shipyard.server.docs import router as docs_router
from shipyard.server.errors import install_error_handlers
from shipyard.server.health import router as health_router
from shipyard.server.limits import BigBodyTurns, BodyLimit, StreamingUploads

API_PREFIX = "/api/v1"
KEEP_ALIVE_SECONDS = 75
"""How long the server keeps an idle connection open (uvicorn's default is 5 s). Clients
keep pooled connections across pauses of a few seconds (the mlflow client while it
logs a model), and a server that closes one just as the client reuses it resets that
request. 75 s also outlasts the 60 s idle timeout of common load balancers, which
should close first."""

# Each domain exposes `router` in its routes module, served under API_PREFIX. Which
# module serves a path: by its first segment, or by its first and third
# (``projects/{project}/models``, ``runs/{run_id}/artifacts``) where those decide. A
# lazy app imports a module on the first request for one of its paths;
# tests/core/test_lazy_domains.py checks every route of every module against this.
_ROUTES_BY_SEGMENTS = {
    "projects": "shipyard.projects.routes",
    "projects/members": "shipyard.projects.routes",
    "audit": "shipyard.auth.routes",
    "auth": "shipyard.auth.routes",
    "tokens": "shipyard.auth.routes",
    "users": "shipyard.auth.routes",
    "experiments": "shipyard.tracking.routes",
    "runs": "shipyard.tracking.routes",
    "projects/experiments": "shipyard.tracking.routes",
    "projects/runs": "shipyard.tracking.routes",
    "runs/artifacts": "shipyard.tracking.artifact_routes",
    "projects/models": "shipyard.registry.routes",
    "projects/datasets": "shipyard.datasets.routes",
    "projects/dataset-blobs": "shipyard.datasets.routes",
    "runs/dataset-inputs": "shipyard.datasets.inputs",
}
DOMAIN_ROUTES = tuple(dict.fromkeys(_ROUTES_BY_SEGMENTS.values()))
_MLFLOW_ARTIFACT_UPLOAD = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"
STREAMING_UPLOADS = (
    ("PUT", API_PREFIX + "/runs/{run_id}/artifacts/{path:path}"),
    ("PUT", API_PREFIX + "/projects/{project}/dataset-blobs/{digest}"),
    ("PUT", _MLFLOW_ARTIFACT_UPLOAD),
    ("PUT", "/projects/{project}" + _MLFLOW_ARTIFACT_UPLOAD),
)
"""The routes that stream their body to the blob store under their own, larger limit
(method, path template as the route declares it): the only requests exempt from the
request size limit and the turns of big bodies."""
"""Every domain's routes module (order does not matter)."""

TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry, off unless ``settings.otel``: on, FastAPI asks the
OpenTelemetry API for configured providers on every request (1.4% of the server's
instructions for a run the mlflow client creates)."""


def create_app(
    platform: Platform, *, mlflow: bool = True, ui: bool = True, lazy: bool = False
) -> FastAPI:
    """Build the application over ``platform``'s stores.

    ``mlflow=False`` leaves out MLflow's protocol and ``ui=False`` the web pages: the
    embedded SDK calls neither, and building their routes would cost every CLI start
    a few tenths of a second. ``lazy`` (the embedded SDK too) imports each domain's
    routes when the first request for one of its paths comes (:class:`LazyDomains`),
    so that a ``shipyard data`` command does not build the registry's routes.
    """
    app = FastAPI(
        title="Shipyard",
        version=shipyard.__version__,
        description="ML platform API: tracking, registry, auth.",
        telemetry=None if platform.settings.otel else TELEMETRY_OFF,
        # Served by server/docs.py, behind the authorization check like every route.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.platform = platform
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(docs_router)
    if not lazy:
        for module in DOMAIN_ROUTES:
            include_domain(app, module)
    if ui:
        from shipyard.ui.routes import build_router

        app.include_router(build_router())
    if mlflow:
        from shipyard.mlflow_compat.routes import mount as mount_mlflow_protocol

        mount_mlflow_protocol(app)
        app.add_middleware(ProtocolFastPath, protocol=_protocol_app(app))
    if lazy:
        app.add_middleware(LazyDomains, target=app)
    streaming = StreamingUploads(STREAMING_UPLOADS)
    # Outermost last: the size limit, then authentication, then turns for big bodies.
    app.add_middleware(BigBodyTurns, turns=platform.upload_turns, streaming=streaming)
    app.add_middleware(AuthenticateFirst, platform=platform)
    app.add_middleware(
        BodyLimit, max_bytes=platform.settings.max_request_bytes, streaming=streaming
    )
    return app


def include_domain(app: FastAPI, module: str) -> None:
    """Serve the routes of ``module`` (one of DOMAIN_ROUTES) under API_PREFIX."""
    app.include_router(importlib.import_module(module).router, prefix=API_PREFIX)


def domains_for(path: str) -> tuple[str, ...]:
    """The route modules that may serve ``path``: one, or all where the path is not
    one of theirs (so that a stray path is answered as by the whole app)."""
    if not path.startswith(API_PREFIX + "/"):
        return ()
    parts = path[len(API_PREFIX) + 1 :].split("/")
    for key in (f"{parts[0]}/{parts[2]}" if len(parts) > 2 else None, parts[0]):
        if key in _ROUTES_BY_SEGMENTS:
            return (_ROUTES_BY_SEGMENTS[key],)
    return DOMAIN_ROUTES


class LazyDomains:
    """Includes a domain's routes in ``target`` before the first request they serve.

    For an app that one event loop runs (the embedded SDK's): checking and including
    happen with no await between them, so no request sees a half-built router.
    """

    def __init__(self, app: ASGIApp, target: FastAPI) -> None:
        self.app = app
        self.target = target
        self.loaded: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for module in domains_for(scope["path"]):
                if module not in self.loaded:
                    include_domain(self.target, module)
                    self.loaded.add(module)
        await self.app(scope, receive, send)


def _protocol_shell(app: FastAPI) -> FastAPI:
    """An app without routes sharing ``app``'s state, overrides and error handling."""
    # Telemetry off: the outer app's (when on) already covers what this app serves.
    shell = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, telemetry=TELEMETRY_OFF)
    shell.state.platform = app.state.platform
    shell.dependency_overrides = app.dependency_overrides
    install_error_handlers(shell)
    return shell


def _protocol_app(app: FastAPI) -> FastAPI:
    """The MLflow protocol routes alone, with ``app``'s state and error handling."""
    from shipyard.mlflow_compat.routes import mount as mount_mlflow_protocol

    protocol = _protocol_shell(app)
    mount_mlflow_protocol(protocol)
    return protocol


class ProtocolFastPath:
    """Sends MLflow protocol requests straight to an app that holds only their routes.

    The application lists them too (so every route walker and check sees them), after
    the native ones; FastAPI finds a route by trying each in turn. The ~100 native
    routes cost an MLflow request 0.1-0.3 ms before its own is reached, and the ~80
    protocol routes as much again. A path without parameters (all the tracking and
    registry calls; not the artifact proxy, nor a logged model by id) goes to an app
    of its own routes, made on its first request; the others to the app of every
    protocol route. Counted with callgrind, creating a run through the mlflow client
    (four requests) took 11.5% fewer instructions on the server with the dispatch.
    """

    def __init__(self, app: ASGIApp, protocol: FastAPI) -> None:
        from shipyard.mlflow_compat.routes import is_protocol_path, routers_by_path

        self.app = app
        self.protocol = protocol
        self._is_protocol_path = is_protocol_path
        self._routers = routers_by_path()
        self._by_path: dict[str, ASGIApp] = {}

    def _app_for(self, path: str) -> ASGIApp:
        found = self._by_path.get(path)
        if found is None:
            router = self._routers.get(path)
            if router is None:
                return self.protocol
            # Built with no await before it is kept: one event loop serves the app.
            found = _protocol_shell(self.protocol)
            found.include_router(router, include_in_schema=False)
            self._by_path[path] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_protocol_path(scope["path"]):
            await self._app_for(scope["path"])(scope, receive, send)
        else:
            await self.app(scope, receive, send)
