"""Static assets: the UI's own CSS and scripts, and plotly.js.

plotly.js comes in two builds. The full one (``plotly.min.js``, every trace type:
parallel coordinates, WebGL) is the one the ``plotly`` Python package ships. The
basic one (``plotly-basic.min.js``: lines, bars, pies), which pages that draw only
line charts load, comes from the npm registry through ``frontend/package-lock.json``
and ``make ui-assets`` into ``static/vendor/``; a browser compiles it in a quarter
of the time (about 0.2 s against 0.9 s on a 2-core machine), which is most of
the time a run's charts take to appear on a first visit. Where it was not built
(a source install without npm), the full build answers in its place.

Assets hold no data, so they are public. Names are checked against what is on
disk before any file is opened, so a request cannot walk out of the folder.
URLs carry a content fingerprint, which lets browsers cache them for a year, and
scripts and styles go gzipped to browsers that take it (plotly.js is 4.8 MB, 1.4 MB
gzipped), compressed once per process.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from shipyard.auth.authz import public
from shipyard.errors import NotFound
from shipyard.hashing import hash_file

STATIC = Path(__file__).with_name("static")
VENDOR = STATIC / "vendor"
PLOTLY = "plotly.min.js"
PLOTLY_BASIC = "plotly-basic.min.js"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


def _plotly_path() -> Path:
    spec = importlib.util.find_spec("plotly")  # locate it without importing plotly's Python
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("plotly.js is not installed (pip install plotly)")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY


@lru_cache(maxsize=1)
def assets() -> dict[str, Path]:
    """Every servable asset by name."""
    found = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES and p.is_file()}
    plotly = _plotly_path()
    if plotly.is_file():
        found[PLOTLY] = plotly
    basic = VENDOR / PLOTLY_BASIC
    if basic.is_file():
        found[PLOTLY_BASIC] = basic
    elif plotly.is_file():
        found[PLOTLY_BASIC] = plotly  # same API, every trace type; slower to compile
    return found


@lru_cache(maxsize=64)
def _fingerprint(name: str) -> str:
    return hash_file(assets()[name])[:12]


def static_url(name: str) -> str:
    """The URL of asset ``name``, fingerprinted so browsers may cache it for good."""
    if name not in assets():
        raise NotFound(f"no static asset {name!r}")
    return f"/ui/static/{_fingerprint(name)}/{name}"


@lru_cache(maxsize=64)
def _gzipped(name: str) -> bytes:
    return gzip.compress(assets()[name].read_bytes(), compresslevel=6, mtime=0)


@router.get("/ui/static/{fingerprint}/{name}", dependencies=[public()])
def static_asset(fingerprint: str, name: str, request: Request) -> Response:
    path = assets().get(name)
    if path is None:
        raise NotFound(f"no static asset {name!r}")
    cache = (
        "public, max-age=31536000, immutable" if fingerprint == _fingerprint(name) else "no-cache"
    )
    headers = {
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    media_type = _TYPES[path.suffix]
    if path.suffix != ".svg" and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(_gzipped(name), media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)
