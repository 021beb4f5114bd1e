"""Authentication before the body: on a server that requires it, an API request that
carries a body is authenticated before anything reads that body.

FastAPI reads and parses a route's body before it runs the route's dependencies, the
authorization check among them, and the MLflow resolvers read the body to find the
objects a message names. Without this gate a caller with no credentials could make
the server read and parse bodies up to the request limit (64 MiB each), as many at
once as it likes. The principal found here is kept in the request's scope, so the
route's check (``authz.require``) does not authenticate again (a password check
costs tens of milliseconds).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.auth.authz import PRINCIPAL_KEY, authenticate
from shipyard.errors import ShipyardError
from shipyard.platform import Platform

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The API's only write that needs no credentials: it is how a caller gets them.
PUBLIC_WRITES = frozenset({("POST", "/api/v1/auth/login")})


class AuthenticateFirst:
    """Answers 401 (in the shape the path's API uses) before the body of an
    unauthenticated API request with a body is read; web pages keep their own
    sign-in flow (their forms carry no large bodies and their routes check first)."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.platform.auth_required and _api_write(scope)):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await run_in_threadpool(authenticate, request, self.platform)
        except ShipyardError as err:
            from shipyard.server.errors import error_response

            await error_response(err, request)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


def _api_write(scope: Scope) -> bool:
    """An HTTP request to the API (native, MLflow's, its artifact proxy) that may carry
    a body and needs credentials."""
    if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
        return False
    path = scope["path"]
    if "/api/" not in path and "/mlflow-artifacts/" not in path:
        return False
    return (scope["method"], path) not in PUBLIC_WRITES
