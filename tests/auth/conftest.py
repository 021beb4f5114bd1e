"""A real server that REQUIRES auth, on each metadata backend, and helpers to make users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import build_platform

from shipyard.auth import service
from shipyard.auth.authz import RequestContext
from shipyard.auth.principal import Principal
from shipyard.auth.tables import AuditEventRow
from shipyard.auth.types import TokenCreate, UserCreate
from shipyard.client import Client
from shipyard.platform import Platform
from shipyard.projects.types import MemberSet

BOOTSTRAP_SOURCE = "test-bootstrap"


def local_ctx(platform: Platform, project_id: int | None = None) -> RequestContext:
    """The context an embedded, local caller has: every right (how admins are bootstrapped)."""
    return RequestContext(platform, Principal.local(), project_id, BOOTSTRAP_SOURCE)


@dataclass
class Secured:
    """A server with auth required, plus a site admin to set things up with."""

    platform: Platform
    url: str
    admin_token: str = ""
    _clients: list[httpx.Client] = field(default_factory=list)

    def http(self, token: str | None = None) -> httpx.Client:
        """A raw HTTP client, sending ``token`` as a bearer token when given."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        c = httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)
        self._clients.append(c)
        return c

    def sdk(self, token: str) -> Client:
        """The SDK client, remote, with ``token``."""
        c = Client(self.url, token=token, settings=self.platform.settings)
        self._clients.append(c.api.http)
        return c

    def user(
        self,
        username: str,
        *,
        password: str | None = None,
        is_admin: bool = False,
        roles: dict[str, str] | None = None,
    ) -> str:
        """Create a user (with roles by project name) and return a fresh token of theirs."""
        ctx = local_ctx(self.platform)
        spec = UserCreate(username=username, password=password, is_admin=is_admin)
        service.create_user(ctx, spec)
        for project, role in (roles or {}).items():
            self.grant(project, username, role)
        return self.token_for(username)

    def token_for(self, username: str, **spec: Any) -> str:
        ctx = local_ctx(self.platform)
        return service.create_token(ctx, TokenCreate(username=username, **spec)).token

    def grant(self, project: str, username: str, role: str) -> None:
        from shipyard.projects import service as projects

        project_id = projects.resolve_project_id(self.platform, project)
        projects.set_member(
            local_ctx(self.platform, project_id), MemberSet(username=username, role=role)
        )

    def project(self, name: str) -> int:
        from shipyard.projects import service as projects
        from shipyard.projects.types import ProjectCreate

        return projects.create_project(local_ctx(self.platform), ProjectCreate(name=name)).id

    def audit_rows(self, after_id: int = 0) -> list[AuditEventRow]:
        with self.platform.db.read() as session:
            return list(
                session.scalars(
                    select(AuditEventRow)
                    .where(AuditEventRow.id > after_id)
                    .order_by(AuditEventRow.id)
                )
            )

    def last_audit_id(self) -> int:
        rows = self.audit_rows()
        return rows[-1].id if rows else 0

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def secured(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A real uvicorn server over each backend with auth required, and a site admin 'root'."""
    yield from secured_server(request, db_backend, tmp_path, server_for)


def secured_server(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """The body of a ``secured`` fixture on one backend (for modules that pin one)."""
    platform = build_platform(request, backend, tmp_path / "home", auth_required=True)
    s = Secured(platform, server_for(platform).url)
    s.admin_token = s.user("root", is_admin=True)
    yield s
    s.close()
