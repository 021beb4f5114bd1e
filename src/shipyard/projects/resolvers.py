"""Find the project a request is about, for the authorization check."""

from __future__ import annotations

from shipyard.auth.resolvers import CachedResolver
from shipyard.projects.service import resolve_project_id

# Projects are never renamed or removed, so a name's id can be cached.
project_from_path = CachedResolver("project", "project", resolve_project_id)
"""The ``{project}`` path parameter: a project name or id."""
