"""The front page: the projects the caller can see."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.projects import service as projects
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render

router = page_router()


@router.get("/")
def home(request: Request, ctx: RequestContext = require(Action.AUTHENTICATED)) -> HTMLResponse:
    visible = projects.list_projects(ctx.platform, ctx.principal)
    return render(request, ctx, "core/home.html", projects=visible)
