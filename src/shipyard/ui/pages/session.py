"""Sign in and sign out.

Signing in exchanges a password for a login token (the same 12-hour token
``POST /api/v1/auth/login`` gives) and keeps it in an HttpOnly cookie. These
routes are public: they are how a browser gets credentials. A plain HTML form
posts them, so they read the form themselves and are guarded by the Origin check.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from shipyard.auth import service
from shipyard.auth.authz import public
from shipyard.auth.sessions import (
    CSRF_FIELD,
    check_origin,
    clear_session_cookie,
    csrf_token_for,
    session_secret,
    set_session_cookie,
)
from shipyard.auth.types import LoginRequest, TokenCreated
from shipyard.errors import InvalidInput, PermissionDenied, TooManyRequests, Unauthenticated
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render

router = page_router()

MAX_FORM_BYTES = 16_384


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\\\" in target:
        return "/"
    return target


def login_url(request: Request) -> str:
    """The sign-in page, coming back to ``request``'s page afterwards."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(path, safe='')}"


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form body as a dict (first value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("form too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("form is not UTF-8") from None
    return {k: v[0] for k, v in fields.items()}


@router.get("/login", dependencies=[public()])
def login_page(request: Request, next: str | None = None) -> Response:
    platform = request.app.state.platform
    if not platform.auth_required:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, None, "core/login.html", next=safe_next(next), error="", username="")


@router.post("/login", dependencies=[public()])
async def login(request: Request) -> Response:
    check_origin(request)
    platform = request.app.state.platform
    form = await read_form(request)
    target = safe_next(form.get("next"))
    if not platform.auth_required:
        return RedirectResponse(target, status_code=303)
    username = form.get("username", "")
    source = request.client.host if request.client else ""
    try:
        spec = LoginRequest(username=username, password=form.get("password", ""))
        # argon2 takes tens of ms by design: keep it off the event loop.
        created: TokenCreated = await run_in_threadpool(service.login, platform, spec, source)
    except (Unauthenticated, ValidationError, TooManyRequests) as exc:
        waiting = isinstance(exc, TooManyRequests)
        return render(
            request,
            None,
            "core/login.html",
            status=429 if waiting else 401,
            next=target,
            username=username,
            error=f"{exc.message[0].upper()}{exc.message[1:]}."
            if waiting
            else "Wrong username or password.",
        )
    response = RedirectResponse(target, status_code=303)
    assert created.expires_at is not None
    max_age = max(1, (created.expires_at - created.created_at) // 1000)
    set_session_cookie(response, request, created.token, max_age)
    return response


@router.post("/logout", dependencies=[public()])
async def logout(request: Request) -> Response:
    check_origin(request)
    secret = session_secret(request)
    response = RedirectResponse("/login" if request.app.state.platform.auth_required else "/", 303)
    if secret is None:
        return response
    form = await read_form(request)
    if not hmac.compare_digest(form.get(CSRF_FIELD, ""), csrf_token_for(secret)):
        raise PermissionDenied("missing or wrong CSRF token: reload the page and try again")
    source = request.client.host if request.client else ""
    await run_in_threadpool(service.logout, request.app.state.platform, secret, source)
    clear_session_cookie(response)
    return response
