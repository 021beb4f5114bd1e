"""Browser sessions: a login token carried in an HttpOnly cookie, plus its CSRF token.

A signed-in browser holds the same kind of token an API client does (issued by
:func:`shipyard.auth.service.login`, stored hashed, expiring, revocable), so the
one authorization check treats both alike. What a cookie adds is ambient
authority: a page on another site can make the browser send it. So every
unsafe request that authenticates by cookie must also carry the session's CSRF
token in a header, which only pages of this origin can read (it is derived from
the secret, so nothing more is stored), and a browser request whose Origin is
another site is refused whatever it carries.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from starlette.responses import Response

from shipyard.errors import PermissionDenied

SESSION_COOKIE = "shipyard_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token_for(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``."""
    return hmac.new(secret.encode(), b"shipyard-csrf", hashlib.sha256).hexdigest()


def session_secret(request: Request) -> str | None:
    """The session token the browser sent, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def check_csrf(request: Request, secret: str) -> None:
    """Refuse an unsafe cookie-authenticated request without the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_token_for(secret)):
        raise PermissionDenied("missing or wrong CSRF token: reload the page and try again")


def check_origin(request: Request) -> None:
    """Refuse an unsafe browser request sent from another site.

    Browsers name the page that made a request in ``Origin`` (and, in
    ``Sec-Fetch-Site``, how it relates to the target); API clients send neither.
    This also guards a loopback server with auth off, which needs no cookie.
    """
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise PermissionDenied("cross-site request refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if origin.split("://", 1)[-1] not in hosts - {""}:
        raise PermissionDenied("cross-site request refused: Origin does not match Host")


def cookie_is_secure(request: Request, setting: str) -> bool:
    """Whether the session cookie must be Secure: ``setting`` is ``always``, or the
    request came over HTTPS, seen by the server or by a proxy in front of it.

    ``X-Forwarded-Proto`` is believed from anyone here: it can only add the flag,
    and a cookie that is Secure without need is merely not sent over plain HTTP.
    """
    if setting == "always" or request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def set_session_cookie(response: Response, request: Request, secret: str, max_age_s: int) -> None:
    """Put the session token in an HttpOnly, SameSite cookie (Secure over HTTPS: see
    :func:`cookie_is_secure`)."""
    settings = request.app.state.platform.settings
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(request, settings.secure_cookies),
    )


def clear_session_cookie(response: Response) -> None:
    """Make the browser forget its session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
