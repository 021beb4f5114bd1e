"""Find the project a request is about, for the authorization check."""

from __future__ import annotations

from fastapi import Request

from shipyard.platform import Platform
from shipyard.projects.service import resolve_project_id


def project_from_path(request: Request, platform: Platform) -> int:
    """The ``{project}`` path parameter: a project name or id."""
    return resolve_project_id(platform, request.path_params["project"])
