"""API shapes of projects."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from shipyard.tracking.types import StoredText

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


def _not_all_digits(name: str) -> str:
    # A reference of ASCII digits only is read as a project id (resolve_project_id):
    # a project named "2" could never be reached by name, and its name would reach
    # project 2. (The pattern admits ASCII only, so isdigit() sees no other digits.)
    if name.isdigit():
        raise ValueError("a project name must contain a character other than a digit")
    return name


ProjectName = Annotated[
    str,
    Field(pattern=NAME_PATTERN, description="Unique name: letters, digits, . _ -; not all digits"),
    AfterValidator(_not_all_digits),
]


class ProjectCreate(BaseModel):
    """Input of project creation."""

    name: ProjectName
    description: StoredText = Field(default="", max_length=10_000)


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
