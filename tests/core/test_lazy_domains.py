"""The embedded app builds a domain's routes on the first request for one of its paths."""

from __future__ import annotations

import importlib
import re

import httpx
import pytest

from shipyard.client.inprocess import InProcessTransport
from shipyard.platform import Platform
from shipyard.server.app import API_PREFIX, DOMAIN_ROUTES, create_app, domains_for


def _concrete(path: str) -> str:
    """A path template with each parameter filled in (``{key:path}`` with two segments)."""
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else "x1", path)


@pytest.mark.parametrize("module", DOMAIN_ROUTES)
def test_every_route_is_found_in_its_own_module(module: str) -> None:
    router = importlib.import_module(module).router
    paths = [route.path for route in router.routes]  # type: ignore[attr-defined]
    assert paths
    for path in paths:
        assert domains_for(API_PREFIX + _concrete(path)) == (module,), path


def test_paths_of_no_domain() -> None:
    assert domains_for("/healthz") == ()
    assert domains_for("/api/v1") == ()
    assert domains_for(f"{API_PREFIX}/nothing/here") == DOMAIN_ROUTES


def _built(app: object) -> set[str]:
    """The route modules whose router ``app`` includes."""
    included = [getattr(r, "original_router", None) for r in app.routes]  # type: ignore[attr-defined]
    return {
        m for m in DOMAIN_ROUTES if any(importlib.import_module(m).router is r for r in included)
    }


def test_a_lazy_app_builds_only_what_is_asked(platform: Platform) -> None:
    app = create_app(platform, mlflow=False, ui=False, lazy=True)
    assert _built(app) == set()
    with httpx.Client(transport=InProcessTransport(app), base_url="http://embedded") as http:
        assert http.get("/healthz").status_code == 200
        assert _built(app) == set()

        r = http.get(f"{API_PREFIX}/projects/default/datasets")
        assert r.status_code == 200 and r.json()["datasets"] == []
        assert _built(app) == {"shipyard.datasets.routes"}

        r = http.get(f"{API_PREFIX}/projects/default/models")
        assert r.status_code == 200 and r.json()["models"] == []
        assert _built(app) == {"shipyard.datasets.routes", "shipyard.registry.routes"}

        # Asked again, a domain is not included a second time.
        before = len(app.routes)
        assert http.get(f"{API_PREFIX}/projects/default/models").status_code == 200
        assert len(app.routes) == before


def test_a_lazy_app_answers_as_the_whole_app(platform: Platform) -> None:
    """The same answers, errors included, from a lazy app as from an eager one."""
    lazy = create_app(platform, mlflow=False, ui=False, lazy=True)
    eager = create_app(platform, mlflow=False, ui=False)
    asks = [
        ("GET", f"{API_PREFIX}/projects/default/experiments", None),
        ("GET", f"{API_PREFIX}/runs/no-such-run", None),
        ("GET", f"{API_PREFIX}/nothing/here", None),
        ("POST", f"{API_PREFIX}/projects", {"name": 5}),
        ("DELETE", f"{API_PREFIX}/users/me", None),
    ]
    answers = []
    for app in (lazy, eager):
        with httpx.Client(transport=InProcessTransport(app), base_url="http://e") as http:
            answers.append(
                [
                    (r.status_code, r.json())
                    for r in (http.request(m, p, json=body) for m, p, body in asks)
                ]
            )
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[0]] == [200, 404, 404, 400, 405]
    assert _built(lazy) == _built(eager) == set(DOMAIN_ROUTES)
