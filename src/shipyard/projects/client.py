"""SDK client of projects."""

from __future__ import annotations

from shipyard.client.api import Api, segment
from shipyard.projects.types import Member, Project


class ProjectsClient:
    """``client.projects``: create and list projects, manage members."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def create(self, name: str, description: str = "") -> Project:
        """Create a project; you become its admin."""
        return Project(**self._api.post("/projects", {"name": name, "description": description}))

    def list(self) -> list[Project]:
        """Projects you have a role on."""
        return [Project(**p) for p in self._api.get("/projects")]

    def get(self, name: str) -> Project:
        """One project by name or id."""
        return Project(**self._api.get(f"/projects/{segment(name)}"))

    def members(self, project: str) -> list[Member]:
        """Users with a role on ``project``."""
        return [Member(**m) for m in self._api.get(f"/projects/{segment(project)}/members")]

    def set_member(self, project: str, username: str, role: str) -> Member:
        """Give ``username`` a role (viewer, editor, admin) on ``project``."""
        return Member(
            **self._api.put(
                f"/projects/{segment(project)}/members", {"username": username, "role": role}
            )
        )

    def remove_member(self, project: str, username: str) -> None:
        """Take away ``username``'s role on ``project``."""
        self._api.delete(f"/projects/{segment(project)}/members/{segment(username)}")
