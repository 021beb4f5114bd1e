"""Errors on pages: HTML for people, and the sign-in page for those not signed in."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from shipyard.errors import ShipyardError, Unauthenticated
from shipyard.ui.pages.session import login_url
from shipyard.ui.render import render

TITLES = {
    400: "That request was not right",
    403: "You may not see or do this",
    404: "Not found",
    409: "That clashes with what is there",
    422: "That did not pass the checks",
}


def error_page(request: Request, err: ShipyardError) -> Response:
    """The page shown for ``err``; a missing or expired sign-in goes to the login page."""
    if isinstance(err, Unauthenticated) and request.method in ("GET", "HEAD"):
        return RedirectResponse(login_url(request), status_code=303)
    title = TITLES.get(err.status, "Something went wrong")
    return render(
        request, None, "core/error.html", status=err.status, title=title, message=err.message
    )


def wants_html(request: Request) -> bool:
    """A browser navigating to a path outside the APIs (an unknown page, say)."""
    path = request.url.path
    if path.startswith(("/api/", "/ajax-api/")) or request.method not in ("GET", "HEAD"):
        return False
    return "text/html" in request.headers.get("accept", "")
