"""Runs whose process died: heartbeats in, lost runs marked failed.

A run the SDK logs into gets a heartbeat from its process every
``run_heartbeat_interval`` seconds (:mod:`shipyard.tracking.heartbeat`). A process
that ends its run, raises, gets Ctrl-C or SIGTERM sets the run's status itself; one
killed outright (SIGKILL, the out-of-memory killer, a machine going down) cannot, and
its run would read ``running`` forever. So a running run whose last heartbeat is older
than the server's ``run_heartbeat_timeout`` is marked ``failed``, ending when it was
last heard of, with the tag :data:`LOST_TAG` saying so. A run that never sent a
heartbeat (made by the mlflow client, imported, or created without the SDK's
``ActiveRun``) is never touched: nothing says whether its process is alive.

The check runs where runs are read (a search, a run's page, ``GET /runs/{id}``), at
most once per :data:`CHECK_EVERY_S` seconds per process and database, through the
(status, heartbeat_at) index: a server that nobody reads from has nobody to show a
status to, and marks nothing. A server marks nothing in its first
:data:`RESTART_GRACE_S` seconds either: heartbeats sent while it was down were lost,
and their processes send the next within one interval of it coming back. A process
that was only paused (a laptop asleep, a debugger) and beats again brings its run back
to ``running``, if it was this check that ended it; a status set by anyone else (the
process ending its run late, a user) clears :data:`LOST_TAG`, and no heartbeat
revives that run.

The audit log records when a run starts being watched (its first heartbeat), when it
is marked lost and when it is brought back. The heartbeats in between only move a
liveness time forward, as a token's last use does, and are not recorded one by one:
a day of a run's heartbeats would be 2,880 events saying nothing new.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shipyard.auth import audit
from shipyard.auth.authz import RequestContext
from shipyard.clock import now_ms
from shipyard.db.driver import driver_cursor, driver_sql
from shipyard.errors import Conflict, NotFound
from shipyard.platform import Platform
from shipyard.tracking import summaries
from shipyard.tracking.tables import ExperimentRow, RunRow, RunTagRow
from shipyard.tracking.types import DELETED
from shipyard.tracking.upserts import upsert_tags

log = logging.getLogger("shipyard.tracking")

LOST_TAG = "shipyard.lost_contact"
"""Set on a run marked failed because its heartbeats stopped: the time of the last one
(ISO 8601, UTC)."""
LOST_ACTOR = "system:heartbeat"
"""The audit actor of a run marked lost: the server's own check, a name no user can
have (user names have no colon)."""
CHECK_EVERY_S = 30.0
"""The shortest time between two checks of one process on one database (a quarter of
the timeout when that is shorter)."""
RESTART_GRACE_S = 120.0
"""How long a server (not an embedded process, which receives no heartbeats) waits
after it starts before it marks any run lost (the timeout, when that is shorter)."""

_last_check: dict[str, float] = {}
_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a fork while a thread held it would leave it held
    _last_check.clear()


os.register_at_fork(after_in_child=_reset_after_fork)

_BEAT_SQL = "SELECT status, lifecycle, heartbeat_at FROM runs WHERE id = ?"
# PostgreSQL reads committed rows without waiting: a heartbeat could read `running`
# just before a check commits `failed`, and not bring the run back. Locking the row
# orders the two (SQLite's writers already take turns). NO KEY: the lock an UPDATE of
# the row's other columns takes, which leaves alone a writer that only checks the run
# exists (a foreign key to it, as a new run summary has).
_ROW_LOCK = {"postgresql": " FOR NO KEY UPDATE"}
_TOUCH_SQL = "UPDATE runs SET heartbeat_at = ? WHERE id = ?"


def beat(ctx: RequestContext, run_id: str) -> None:
    """Record that the process logging into ``run_id`` is alive; NotFound for no such
    run, Conflict for a deleted one. A run this module marked lost runs again."""
    with ctx.platform.db.write() as session:
        cursor, dialect = driver_cursor(session)
        try:
            cursor.execute(driver_sql(_BEAT_SQL + _ROW_LOCK.get(dialect, ""), dialect), (run_id,))
            row = cursor.fetchone()
            if row is None:
                raise NotFound(f"run {run_id!r} not found")
            if row[1] == DELETED:
                raise Conflict(f"run {run_id!r} is deleted; restore it to change it")
            cursor.execute(driver_sql(_TOUCH_SQL, dialect), (now_ms(), run_id))
        finally:
            cursor.close()
        if row[2] is None:
            ctx.audit(session, "runs.heartbeat", "run", run_id, {"heartbeat": "started"})
        if row[0] != "failed" or not clear_lost(session, run_id):
            return  # running, or failed for another reason: its process says so itself
        session.execute(
            update(RunRow).where(RunRow.id == run_id).values(status="running", end_time=None)
        )
        ctx.audit(
            session, "runs.update", "run", run_id, {"status": "running", "heartbeat": "resumed"}
        )


def clear_lost(session: Session, run_id: str) -> bool:
    """Forget that ``run_id`` was marked lost (whether it was): its process beats
    again, or its status is being set by someone (a late end from its process, a user),
    which no heartbeat may undo."""
    removed = bool(
        session.execute(
            delete(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key == LOST_TAG)
        ).rowcount  # type: ignore[attr-defined]
    )
    if removed:
        summaries.changed(session, [run_id])
    return removed


def _due(platform: Platform, timeout: float) -> bool:
    """Whether this process should look for lost runs now (and note that it did)."""
    if platform.serving_since is not None:
        if time.monotonic() - platform.serving_since < min(RESTART_GRACE_S, timeout):
            return False
    key = platform.db.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _lock:
        last = _last_check.get(key)
        if last is not None and now - last < min(CHECK_EVERY_S, timeout / 4):
            return False
        _last_check[key] = now
        return True


def mark_lost_runs(platform: Platform, *, force: bool = False) -> list[str]:
    """Mark failed every running run whose last heartbeat is older than the timeout;
    the ids marked. Throttled per process and database unless ``force``."""
    timeout = platform.settings.run_heartbeat_timeout
    if timeout <= 0 or not (force or _due(platform, timeout)):
        return []
    cutoff = now_ms() - int(timeout * 1000)
    found = (
        select(RunRow.id, RunRow.start_time, RunRow.heartbeat_at, ExperimentRow.project_id)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .where(RunRow.status == "running", RunRow.heartbeat_at < cutoff)
        .order_by(RunRow.id)  # two servers marking the same runs lock them in one order
    )
    with platform.db.read() as session:
        candidates = session.execute(found).all()
    if not candidates:  # the usual case: no write transaction at all
        return []
    marked = []
    with platform.db.write() as session:
        for run_id, start_time, heartbeat_at, project_id in candidates:
            ended = session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run_id,
                    RunRow.status == "running",
                    RunRow.heartbeat_at < cutoff,  # not revived meanwhile
                )
                .values(status="failed", end_time=max(start_time, heartbeat_at))
            )
            if ended.rowcount == 0:  # type: ignore[attr-defined]
                continue
            last = datetime.fromtimestamp(heartbeat_at / 1000, UTC).isoformat()
            upsert_tags(session, RunTagRow, "run_id", run_id, {LOST_TAG: last})
            summaries.changed(session, [run_id])
            audit.record(
                session,
                actor=LOST_ACTOR,
                action="runs.update",
                object_type="run",
                object_id=run_id,
                project_id=project_id,
                source="heartbeat check",
                details={"status": "failed", "last_heartbeat": last},
            )
            marked.append(run_id)
    return marked


def check_lost_runs(platform: Platform) -> None:
    """:func:`mark_lost_runs` for a read path: a failure to mark (a busy SQLite file,
    a PostgreSQL deadlock) is logged, and the read goes on; the next check retries."""
    try:
        mark_lost_runs(platform)
    except Exception:
        log.warning("checking for runs whose process was lost failed", exc_info=True)
