"""Rendering pages: one Jinja environment, the context every page shares, and filters."""

from __future__ import annotations

import datetime as dt
import gzip
import math
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shipyard.auth.authz import RequestContext
from shipyard.auth.sessions import csrf_token_for, session_secret
from shipyard.ui.static_files import static_url

TEMPLATES = Path(__file__).with_name("templates")


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as local ``YYYY-MM-DD HH:MM:SS`` ('' for none)."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | float | None) -> str:
    """A duration for people: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_number(value: Any, digits: int = 4) -> str:
    """A metric value, short: 4 significant digits, ints as ints, NaN and inf named."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}g}"
    return str(value)


def format_bytes(n: int | None) -> str:
    """A size for people: ``512 B``, ``1.5 MiB``."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def url_part(value: Any) -> str:
    """Quote a value for use as one path segment (slashes included)."""
    return quote(str(value), safe="")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one template environment (autoescaping on: every value is escaped)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=format_time,
        duration=format_duration,
        num=format_number,
        bytes=format_bytes,
        urlpart=url_part,
    )
    env.globals.update(static=static_url)
    return env


def page_context(request: Request, ctx: RequestContext) -> dict[str, Any]:
    """What the layout needs on every page: who is signed in, their CSRF token, the project."""
    secret = session_secret(request) if ctx.platform.auth_required else None
    return {
        "request": request,
        "user": ctx.principal,
        "auth_on": ctx.platform.auth_required,
        "csrf_token": csrf_token_for(secret) if secret else "",
        "project": None,
        "nav": "",
    }


def render(
    request: Request,
    ctx: RequestContext | None,
    template: str,
    *,
    status: int = 200,
    **data: Any,
) -> HTMLResponse:
    """Render ``template`` with the shared page context plus ``data``.

    ``ctx`` is None only for pages shown before anyone is known (sign-in, errors
    about authentication).
    """
    context: dict[str, Any] = (
        page_context(request, ctx)
        if ctx is not None
        else {
            "request": request,
            "user": None,
            "auth_on": True,
            "csrf_token": "",
            "project": None,
            "nav": "",
        }
    )
    context.update(data)
    body = environment().get_template(template).render(context).encode()
    headers = dict(SECURITY_HEADERS)
    if len(body) > GZIP_ABOVE and "gzip" in request.headers.get("accept-encoding", ""):
        # Pages of wide tables and profiles shrink five- to tenfold.
        body = gzip.compress(body, compresslevel=5, mtime=0)
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    return HTMLResponse(body, status_code=status, headers=headers)


GZIP_ABOVE = 8192


# No framing (clickjacking), no sniffing, no referrer leaking ids to other sites; scripts
# and styles only from this origin (inline <script type="application/json"> data blocks
# are not executed, so they need no exception).
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Cache-Control": "no-store",
}
