"""The audit log page: who changed what, when and from where.

Readable by site admins; a project's admins read their project's events by naming it
(``?project=``), exactly as ``GET /api/v1/audit`` allows (the same service call
decides). Newest first; "older" pages continue from the last event shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from shipyard.auth import service
from shipyard.auth.audit import MAX_EVENTS
from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.auth.types import AuditEvent
from shipyard.errors import InvalidInput, NotFound
from shipyard.projects import service as projects
from shipyard.tracking.types import INT64_MAX
from shipyard.ui.page_route import page_router
from shipyard.ui.render import render

router = page_router()

DEFAULT_LIMIT = 100
DAY_MS = 86_400_000
FILTERS = ("user", "action", "object_type", "object_id", "project", "from", "to")


def day_start_ms(text: str, field: str) -> int:
    """Epoch ms of local midnight starting day ``text`` (``YYYY-MM-DD``, as date inputs
    send it). Local, like the times the page shows."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a date like 2024-05-31, not {text[:40]!r}") from None
    return int(dt.datetime.combine(day, dt.time()).timestamp() * 1000)


def _count(text: str) -> int:
    """The number of events to show, from the form's field."""
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_EVENTS:
        raise InvalidInput(f"show must be a number from 1 to {MAX_EVENTS}, not {text[:20]!r}")
    return int(text)


def read_page(
    ctx: RequestContext,
    project_id: int | None,
    filters: dict[str, Any],
    *,
    until: int | None,
    before: int | None,
    limit: int,
) -> list[AuditEvent]:
    """One page of events, newest first, older than the cursor ``(until, before)``.

    Events are ordered by time then id, and many share a millisecond (bulk changes
    write one event per object at once), so the cursor is the last event's time and
    id: first the rest of that millisecond, then what is older. (Past MAX_EVENTS
    events in one millisecond, the rest of that millisecond is skipped.)
    """

    def read(**window: Any) -> list[AuditEvent]:
        return service.read_audit(ctx.platform, ctx.principal, project_id, **filters, **window)

    since = filters.pop("since", None)
    if until is None or before is None:
        return read(since=since, until=until, limit=limit)
    if since is not None and since > until:
        return []
    events = [e for e in read(since=until, until=until, limit=MAX_EVENTS) if e.id < before]
    events = events[:limit]
    if len(events) < limit:
        events += read(since=since, until=until - 1, limit=limit - len(events))
    return events


def _details(event: AuditEvent) -> str:
    return (
        orjson.dumps(event.details, option=orjson.OPT_SORT_KEYS).decode() if event.details else ""
    )


@router.get("/audit")
def audit_page(
    request: Request,
    user: str = Query("", max_length=200),
    action: str = Query("", max_length=200),
    object_type: str = Query("", max_length=200),
    object_id: str = Query("", max_length=200),
    project: str = Query("", max_length=200),
    from_: str = Query("", alias="from", max_length=40),
    to: str = Query("", max_length=40),
    limit: str = Query(str(DEFAULT_LIMIT), max_length=20),
    until: int | None = Query(
        None, ge=0, le=INT64_MAX, description="Cursor: the last shown event's time (ms)."
    ),
    before: int | None = Query(
        None, ge=0, le=INT64_MAX, description="Cursor: the last shown event's id."
    ),
    ctx: RequestContext = require(Action.AUTHENTICATED),
) -> HTMLResponse:
    error, status = "", 200
    events: list[AuditEvent] = []
    count = DEFAULT_LIMIT
    try:  # a bad filter is the reader's to fix: shown by the form, which stays
        count = _count(limit)
        since = day_start_ms(from_, "from") if from_ else None
        end = day_start_ms(to, "to") + DAY_MS - 1 if to else None  # the whole last day
        if until is None or (end is not None and end < until):
            until, before = end, None
        project_id = projects.resolve_project_id(ctx.platform, project) if project else None
        filters: dict[str, Any] = {
            "actor": user or None,
            "action": action or None,
            "object_type": object_type or None,
            "object_id": object_id or None,
            "since": since,
        }
        events = read_page(ctx, project_id, filters, until=until, before=before, limit=count)
    except (InvalidInput, NotFound) as exc:
        error, status = exc.message, exc.status
    names = {p.id: p.name for p in projects.list_projects(ctx.platform, ctx.principal)}
    current = {
        "user": user,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "project": project,
        "from": from_,
        "to": to,
    }

    def filter_url(**changes: Any) -> str:
        """This page with some filters changed (empty ones dropped), from the newest."""
        query = {k: v for k, v in {**current, **changes}.items() if v}
        if count != DEFAULT_LIMIT:
            query["limit"] = count
        return "/audit" + ("?" + urlencode(query) if query else "")

    older = None
    if len(events) == count:
        last = events[-1]
        older = filter_url(until=last.at, before=last.id)
    return render(
        request,
        ctx,
        "audit/audit.html",
        status=status,
        error=error,
        nav="audit",
        events=events,
        project_names=names,
        current=current,
        limit=limit if error else count,
        paged=until is not None and before is not None,
        older=older,
        newest=filter_url(),
        filter_url=filter_url,
        details=_details,
    )
