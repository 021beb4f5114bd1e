"""Routes that answer with HTML, errors included."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

PAGE_SCOPE_KEY = "shipyard.page"


class PageRoute(APIRoute):
    """Marks the request as a page, so that errors are rendered as HTML (and a caller
    who is not signed in is sent to the login page) instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            request.scope[PAGE_SCOPE_KEY] = True
            return await handler(request)

        return page_handler


def page_router() -> APIRouter:
    """The router a page module declares its pages on."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def is_page(request: Request) -> bool:
    """Whether ``request`` was made to a page (errors answer in HTML)."""
    return bool(request.scope.get(PAGE_SCOPE_KEY))
