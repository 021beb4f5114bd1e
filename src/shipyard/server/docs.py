"""The API's documentation: its OpenAPI schema, and the Swagger UI and ReDoc pages that
read it. Behind the same check as every other route: on a server that requires auth,
only a signed-in caller sees them (the schema names every route the server has); a
browser that is not signed in is sent to the sign-in page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.ui.page_route import page_router

OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False)
pages = page_router()


@router.get(OPENAPI_URL)
def openapi_schema(
    request: Request, ctx: RequestContext = require(Action.AUTHENTICATED)
) -> JSONResponse:
    """The OpenAPI schema of every route (FastAPI builds it once and keeps it)."""
    return JSONResponse(request.app.openapi())


@pages.get("/docs")
def swagger_ui(
    request: Request, ctx: RequestContext = require(Action.AUTHENTICATED)
) -> HTMLResponse:
    """Swagger UI over the schema."""
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} API")


@pages.get("/redoc")
def redoc(request: Request, ctx: RequestContext = require(Action.AUTHENTICATED)) -> HTMLResponse:
    """ReDoc over the schema."""
    return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} API")


router.include_router(pages)
