"""API shapes of projects."""

from __future__ import annotations

from pydantic import BaseModel, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class ProjectCreate(BaseModel):
    """Input of project creation."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name: letters, digits, . _ -")
    description: str = Field(default="", max_length=10_000)


class Project(BaseModel):
    """A project: the namespace and security boundary of everything else."""

    id: int
    name: str
    description: str
    created_at: int
    created_by: str
    role: str | None = Field(default=None, description="The caller's role on it.")


class MemberSet(BaseModel):
    """Give a user a role on a project (viewer, editor, admin)."""

    username: str
    role: str = Field(pattern=r"^(viewer|editor|admin)$")


class Member(BaseModel):
    username: str
    role: str
