"""Every route goes through the one authorization check (or is explicitly public).

This walks the real application, so a route any domain adds without
``require(...)`` (or ``public()``) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fastapi.routing
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from shipyard.auth.authz import require
from shipyard.auth.gate import BODY_METHODS, PUBLIC_WRITES
from shipyard.auth.principal import Action
from shipyard.config import Settings
from shipyard.platform import Platform
from shipyard.server.app import STREAMING_UPLOADS, create_app

PUBLIC_API = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/v1/auth/login")}
# The web UI's sign-in and sign-out (how a browser gets and drops credentials) and its
# static assets (no data).
PUBLIC_UI = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/ui/static/{fingerprint}/{name}"),
}


def _calls(dependant: Dependant | None) -> Iterator[object]:
    for dep in dependant.dependencies if dependant is not None else ():
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _is_authz(call: object) -> bool:
    return bool(getattr(call, "__shipyard_authz__", False))


@dataclass
class Served:
    """A route as the app serves it: full path, methods, the dependencies that run."""

    kind: str
    path: str
    methods: set[str]
    dependant: Dependant | None
    is_api: bool


def _served(app: FastAPI) -> list[Served]:
    # Newer FastAPI includes routers lazily; iter_route_contexts flattens them with
    # their prefixes and router-level dependencies. Older versions list plain routes.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    out = []
    for route in flatten(app.routes) if flatten else app.routes:
        original = getattr(route, "original_route", route)
        out.append(
            Served(
                kind=type(original).__name__,
                path=str(getattr(route, "path", "")),
                methods=set(getattr(route, "methods", None) or ()),
                dependant=getattr(route, "dependant", None),
                is_api=isinstance(original, APIRoute),
            )
        )
    return out


def _is_public(route: Served) -> bool:
    # public() is the one marked dependency that does not build a RequestContext.
    calls = _calls(route.dependant)
    return any(_is_authz(c) and getattr(c, "__name__", "") == "allow" for c in calls)


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> list[Served]:
    home: Path = tmp_path_factory.mktemp("routes")
    platform = Platform.from_settings(Settings(home=home))
    routes = _served(create_app(platform))
    platform.close()
    return routes


def _unchecked(routes: list[Served]) -> list[str]:
    unchecked = []
    for route in routes:
        if route.is_api:
            if not any(_is_authz(c) for c in _calls(route.dependant)):
                unchecked.append(f"{sorted(route.methods)} {route.path}")
        else:  # mounts and plain Starlette routes bypass dependencies altogether
            unchecked.append(f"{route.kind} {route.path!r}")
    return unchecked


def test_every_route_has_the_authorization_check(app_routes: list[Served]) -> None:
    unchecked = _unchecked(app_routes)
    assert not unchecked, "routes without require(...) or public():\n" + "\n".join(unchecked)


def test_only_health_and_login_are_public(app_routes: list[Served]) -> None:
    public = {
        (method, route.path)
        for route in app_routes
        if route.is_api and _is_public(route)
        for method in route.methods
    }
    assert public == PUBLIC_API | PUBLIC_UI
    # The gate that authenticates API writes before their bodies lets exactly these by.
    api_writes = {(m, path) for m, path in PUBLIC_API if m in BODY_METHODS and "/api/" in path}
    assert api_writes == PUBLIC_WRITES


def test_the_streaming_uploads_exempt_from_the_size_limit_are_routes(
    app_routes: list[Served],
) -> None:
    """The templates server/app.py exempts from the request limit are routes the app
    serves, as declared (a route renamed there must not leave a stale exemption)."""
    served = {(m, r.path) for r in app_routes if r.is_api for m in r.methods}
    assert set(STREAMING_UPLOADS) <= served


def test_api_routes_exist(app_routes: list[Served]) -> None:
    paths = {r.path for r in app_routes if r.is_api}
    for expected in ("/api/v1/users", "/api/v1/tokens", "/api/v1/audit", "/api/v1/projects"):
        assert expected in paths


def test_the_walk_finds_an_unchecked_route(tmp_path: Path) -> None:
    platform = Platform.from_settings(Settings(home=tmp_path / "home"))
    app = create_app(platform)
    leaky = APIRouter()
    guarded = APIRouter(dependencies=[require(Action.ADMIN)])

    @leaky.get("/leak")
    def leak() -> dict[str, str]:
        return {}

    @guarded.get("/guarded")
    def fine() -> dict[str, str]:
        return {}

    app.include_router(leaky, prefix="/api/v1")
    app.include_router(guarded, prefix="/api/v1")
    app.mount("/static", StaticFiles(directory=tmp_path))
    assert _unchecked(_served(app)) == ["['GET'] /api/v1/leak", "Mount '/static'"]
    platform.close()
