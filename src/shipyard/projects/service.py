"""Projects: create, list what the caller may see, resolve names, manage members."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from shipyard.auth.authz import RequestContext, role_on
from shipyard.auth.principal import Principal, Role
from shipyard.auth.tables import RoleBindingRow, UserRow
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound
from shipyard.int64 import numeric_id
from shipyard.platform import Platform
from shipyard.projects.tables import ProjectRow
from shipyard.projects.types import Member, MemberSet, Project, ProjectCreate


def _to_api(row: ProjectRow, role: str | None = None) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        role=role,
    )


def resolve_project_id(platform: Platform, ref: str) -> int:
    """A project's id from its name, or from its id when ``ref`` is ASCII digits (no
    project name is all digits); NotFound otherwise, InvalidInput for an id past 64 bits."""
    number = numeric_id(ref, "project id")
    with platform.db.read() as session:
        stmt = select(ProjectRow.id)
        if number is not None:
            stmt = stmt.where(ProjectRow.id == number)
        else:
            stmt = stmt.where(ProjectRow.name == ref)
        project_id = session.scalar(stmt)
    if project_id is None:
        raise NotFound(f"project {ref!r} not found")
    return project_id


def create_project(ctx: RequestContext, spec: ProjectCreate) -> Project:
    """Create a project; its creator becomes its admin."""
    principal = ctx.principal
    with ctx.platform.db.write() as session:
        if session.scalar(select(ProjectRow.id).where(ProjectRow.name == spec.name)):
            raise Conflict(f"project {spec.name!r} already exists")
        row = ProjectRow(
            name=spec.name,
            description=spec.description,
            created_at=now_ms(),
            created_by=principal.username,
        )
        session.add(row)
        try:
            session.flush()
        except DBIntegrityError:
            raise Conflict(f"project {spec.name!r} already exists") from None
        if principal.user_id is not None:
            session.execute(
                insert(RoleBindingRow),
                {"user_id": principal.user_id, "project_id": row.id, "role": Role.ADMIN.value},
            )
        ctx.audit(
            session, "projects.create", "project", row.id, {"name": row.name}, project_id=row.id
        )
        return _to_api(row, Role.ADMIN.value)


def list_projects(platform: Platform, principal: Principal) -> list[Project]:
    """The projects the caller has a role on (all of them for a site admin)."""
    with platform.db.read() as session:
        if principal.is_admin:
            return [
                _to_api(r, Role.ADMIN.value)
                for r in session.scalars(select(ProjectRow).order_by(ProjectRow.name))
            ]
        rows = session.execute(
            select(ProjectRow, RoleBindingRow.role)
            .join(RoleBindingRow, RoleBindingRow.project_id == ProjectRow.id)
            .where(RoleBindingRow.user_id == principal.user_id)
            .order_by(ProjectRow.name)
        ).all()
        return [_to_api(r, role) for r, role in rows]


def get_project(platform: Platform, project_id: int, principal: Principal | None = None) -> Project:
    """One project by id; with ``principal``, ``role`` is theirs on it, as the
    authorization check computes it (:func:`~shipyard.auth.authz.role_on`)."""
    role = role_on(platform, principal, project_id) if principal is not None else None
    with platform.db.read() as session:
        row = session.get(ProjectRow, project_id)
        if row is None:
            raise NotFound(f"project {project_id} not found")
        return _to_api(row, role.value if role is not None else None)


def list_members(platform: Platform, project_id: int) -> list[Member]:
    """Users with a role on the project."""
    with platform.db.read() as session:
        rows = session.execute(
            select(UserRow.username, RoleBindingRow.role)
            .join(RoleBindingRow, RoleBindingRow.user_id == UserRow.id)
            .where(RoleBindingRow.project_id == project_id)
            .order_by(UserRow.username)
        ).all()
    return [Member(username=u, role=r) for u, r in rows]


def _keep_an_admin(session: Session, project_id: int, user_id: int, change: str) -> None:
    """Conflict when ``user_id`` is the project's only admin: removing or demoting them
    would leave no one (but site admins) who may manage its members.

    The project's admin bindings are locked (PostgreSQL) until the transaction ends,
    so two admins demoting each other at once cannot both succeed; SQLite's writers
    take turns anyway.
    """
    admins = session.scalars(
        select(RoleBindingRow.user_id)
        .where(
            RoleBindingRow.project_id == project_id,
            RoleBindingRow.role == Role.ADMIN.value,
        )
        .with_for_update()
    ).all()
    if list(admins) == [user_id]:
        name = session.scalar(select(ProjectRow.name).where(ProjectRow.id == project_id))
        raise Conflict(
            f"{change} would leave project {name!r} without an admin: make another "
            f"member admin first (shipyard projects grant {name} USER admin)"
        )


def set_member(ctx: RequestContext, spec: MemberSet) -> Member:
    """Give ``spec.username`` the role ``spec.role`` on the context's project
    (Conflict when that would demote its last admin)."""
    project_id = ctx.project_id
    assert project_id is not None
    with ctx.platform.db.write() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.username == spec.username))
        if user_id is None:
            raise NotFound(f"user {spec.username!r} not found")
        if spec.role != Role.ADMIN.value:
            change = f"making {spec.username!r} {spec.role}"
            _keep_an_admin(session, project_id, user_id, change)
        session.execute(
            delete(RoleBindingRow).where(
                RoleBindingRow.user_id == user_id, RoleBindingRow.project_id == project_id
            )
        )
        session.execute(
            insert(RoleBindingRow),
            {"user_id": user_id, "project_id": project_id, "role": spec.role},
        )
        ctx.audit(
            session,
            "projects.set_member",
            "project",
            project_id,
            {"username": spec.username, "role": spec.role},
        )
    return Member(username=spec.username, role=spec.role)


def remove_member(ctx: RequestContext, username: str) -> None:
    """Take away a user's role on the context's project (Conflict for its last admin)."""
    assert ctx.project_id is not None
    with ctx.platform.db.write() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.username == username))
        if user_id is None:
            raise NotFound(f"user {username!r} not found")
        _keep_an_admin(session, ctx.project_id, user_id, f"removing {username!r}")
        result = session.execute(
            delete(RoleBindingRow).where(
                RoleBindingRow.user_id == user_id, RoleBindingRow.project_id == ctx.project_id
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"user {username!r} has no role on this project")
        ctx.audit(
            session,
            "projects.remove_member",
            "project",
            ctx.project_id or 0,
            {"username": username},
        )
