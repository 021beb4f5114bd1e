"""Who is calling and what roles allow."""

from __future__ import annotations

import functools
import getpass
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What a route does, checked against the caller's role on the project."""

    READ = "read"  # viewer and up
    WRITE = "write"  # editor and up
    MANAGE = "manage"  # project admin: members, deleting the project
    AUTHENTICATED = "authenticated"  # any signed-in user (e.g. list own projects)
    ADMIN = "admin"  # site administrator only (users)


class Role(StrEnum):
    """A user's role on one project."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


ROLE_ALLOWS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.EDITOR: frozenset({Action.READ, Action.WRITE}),
    Role.ADMIN: frozenset({Action.READ, Action.WRITE, Action.MANAGE}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    username: str
    user_id: int | None
    is_admin: bool

    @classmethod
    def local(cls) -> Principal:
        """The caller when auth is off: the OS user, with every right (it owns the files)."""
        return cls(username=_os_user(), user_id=None, is_admin=True)


@functools.cache
def _os_user() -> str:
    # Once per process: getuser() reads four environment variables and then the
    # password database, and a server with auth off asks on every request.
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "local"
