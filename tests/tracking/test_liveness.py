"""Run heartbeats: a run whose process stops sending them is marked failed, a heartbeat
after that brings it back, and runs nobody heartbeats are never touched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from tests.conftest import embedded_client

from shipyard.auth.tables import AuditEventRow
from shipyard.client import Client
from shipyard.client.inprocess import InProcessTransport
from shipyard.clock import now_ms
from shipyard.errors import Conflict, NotFound, ShipyardError, Unavailable
from shipyard.platform import Platform
from shipyard.server.app import create_app
from shipyard.tracking import liveness
from shipyard.tracking.heartbeat import Heartbeat
from shipyard.tracking.liveness import LOST_TAG, mark_lost_runs
from shipyard.tracking.run import ActiveRun
from shipyard.tracking.tables import RunRow

TIMEOUT_S = 60.0


@pytest.fixture(autouse=True)
def fresh_throttle() -> Iterator[None]:
    """Each test checks for lost runs as if its process had never checked."""
    liveness._last_check.clear()
    yield
    liveness._last_check.clear()


@pytest.fixture
def watched(platform: Platform) -> Iterator[tuple[Platform, Client]]:
    """A platform whose server marks runs lost after TIMEOUT_S, and an SDK client over
    it that sends no heartbeats of its own (the tests send them)."""
    platform.settings = platform.settings.model_copy(
        update={"run_heartbeat_timeout": TIMEOUT_S, "run_heartbeat_interval": 0.0}
    )
    with embedded_client(platform) as client:
        yield platform, client


def heartbeat_at(platform: Platform, run_id: str) -> int | None:
    with platform.db.read() as session:
        return session.scalar(select(RunRow.heartbeat_at).where(RunRow.id == run_id))


def silent_since(platform: Platform, run_id: str, seconds: float) -> int:
    """Move the run's last heartbeat ``seconds`` into the past; that time."""
    at = now_ms() - int(seconds * 1000)
    with platform.db.write() as session:
        session.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=at))
    return at


def audit_of(platform: Platform, run_id: str) -> list[AuditEventRow]:
    with platform.db.read() as session:
        return list(
            session.scalars(
                select(AuditEventRow)
                .where(AuditEventRow.object_id == run_id)
                .order_by(AuditEventRow.id)
            )
        )


def test_a_run_whose_heartbeats_stop_is_marked_failed(
    watched: tuple[Platform, Client],
) -> None:
    platform, client = watched
    lost = client.runs.create("exp", name="lost")
    alive = client.runs.create("exp", name="alive")
    unwatched = client.runs.create("exp", name="never-beat")
    done = client.runs.create("exp", name="done")
    for run in (lost, alive, done):
        client.runs.heartbeat(run.id)
    assert heartbeat_at(platform, lost.id) is not None
    assert heartbeat_at(platform, unwatched.id) is None
    client.runs.end(done.id)
    last = silent_since(platform, lost.id, TIMEOUT_S + 5)
    silent_since(platform, alive.id, TIMEOUT_S - 5)
    silent_since(platform, done.id, TIMEOUT_S + 5)

    # A search is where the check happens (at most every so often per process).
    found = {r.name: r for r in client.runs.search(["exp"]).runs}
    assert found["lost"].status == "failed"
    # It ended when last heard of (here moved back before its start: then at its start).
    assert found["lost"].end_time == max(lost.start_time, last)
    assert found["lost"].tags[LOST_TAG] == datetime.fromtimestamp(last / 1000, UTC).isoformat()
    assert found["alive"].status == "running" and found["alive"].end_time is None
    assert found["never-beat"].status == "running"
    assert found["done"].status == "finished" and LOST_TAG not in found["done"].tags
    events = [e for e in audit_of(platform, lost.id) if e.actor == liveness.LOST_ACTOR]
    assert [(e.action, e.details["status"]) for e in events] == [("runs.update", "failed")]
    assert events[0].project_id is not None
    # Checked once: a second pass finds nothing more to do.
    assert mark_lost_runs(platform, force=True) == []


def test_the_check_is_throttled_and_can_be_turned_off(watched: tuple[Platform, Client]) -> None:
    platform, client = watched
    run = client.runs.create("exp")
    client.runs.heartbeat(run.id)
    assert mark_lost_runs(platform) == []  # nothing lost yet; this was the check
    silent_since(platform, run.id, TIMEOUT_S + 1)
    assert mark_lost_runs(platform) == []  # too soon after the last check
    assert client.runs.get(run.id).status == "running"
    platform.settings = platform.settings.model_copy(update={"run_heartbeat_timeout": 0.0})
    assert mark_lost_runs(platform, force=True) == []
    assert client.runs.get(run.id).status == "running"
    platform.settings = platform.settings.model_copy(update={"run_heartbeat_timeout": TIMEOUT_S})
    assert mark_lost_runs(platform, force=True) == [run.id]
    assert client.runs.get(run.id).status == "failed"


def test_a_heartbeat_after_the_run_was_marked_lost_brings_it_back(
    watched: tuple[Platform, Client],
) -> None:
    platform, client = watched
    paused = client.runs.create("exp", name="paused")
    client.runs.heartbeat(paused.id)
    silent_since(platform, paused.id, TIMEOUT_S + 1)
    assert mark_lost_runs(platform, force=True) == [paused.id]
    client.runs.heartbeat(paused.id)
    back = client.runs.get(paused.id)
    assert back.status == "running"
    assert back.end_time is None
    assert LOST_TAG not in back.tags
    assert heartbeat_at(platform, paused.id) >= now_ms() - 60_000  # type: ignore[operator]
    events = audit_of(platform, paused.id)
    # The first heartbeat is recorded (the run is watched from then on), the next
    # ones only when they bring the run back.
    beats = [e.details for e in events if e.action == "runs.heartbeat"]
    assert beats == [{"heartbeat": "started"}]
    revived = events[-1]
    assert revived.details == {"status": "running", "heartbeat": "resumed"}
    assert revived.actor != liveness.LOST_ACTOR


def test_a_heartbeat_does_not_revive_a_run_failed_for_another_reason(
    watched: tuple[Platform, Client],
) -> None:
    _, client = watched
    run = client.runs.create("exp")
    client.runs.end(run.id, status="failed")
    client.runs.heartbeat(run.id)  # a late one, from a process still closing down
    assert client.runs.get(run.id).status == "failed"


def test_heartbeat_for_an_unknown_or_deleted_run_is_refused(
    watched: tuple[Platform, Client],
) -> None:
    platform, client = watched
    with pytest.raises(NotFound):
        client.runs.heartbeat("0" * 32)
    run = client.runs.create("exp")
    client.runs.delete(run.id)
    with pytest.raises(Conflict, match="deleted"):
        client.runs.heartbeat(run.id)
    assert heartbeat_at(platform, run.id) is None


def test_an_active_run_sends_heartbeats_until_it_ends(platform: Platform) -> None:
    platform.settings = platform.settings.model_copy(update={"run_heartbeat_interval": 0.05})
    with embedded_client(platform) as client:
        run = ActiveRun.start(client, "exp", system_metrics_interval=0)
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            at = heartbeat_at(platform, run.id)
            if at is not None:
                seen.add(at)
            time.sleep(0.02)
        assert len(seen) >= 3, "heartbeats did not keep coming"
        run.end()
        assert run._heartbeat is not None
        assert run._heartbeat.join(timeout=10), "the heartbeat thread outlived the run"
        after_end = heartbeat_at(platform, run.id)
        time.sleep(0.3)
        assert heartbeat_at(platform, run.id) == after_end
        assert client.runs.get(run.id).status == "finished"


def test_no_heartbeats_when_the_interval_is_zero(platform: Platform) -> None:
    platform.settings = platform.settings.model_copy(update={"run_heartbeat_interval": 0.0})
    with embedded_client(platform) as client:
        with ActiveRun.start(client, "exp", system_metrics_interval=0) as run:
            assert run._heartbeat is None
            time.sleep(0.1)
            assert heartbeat_at(platform, run.id) is None


def test_a_status_set_by_anyone_ends_the_lost_mark_for_good(
    watched: tuple[Platform, Client],
) -> None:
    platform, client = watched
    by_user = client.runs.create("exp")
    by_batch = client.runs.create("exp")
    for run in (by_user, by_batch):
        client.runs.heartbeat(run.id)
        silent_since(platform, run.id, TIMEOUT_S + 1)
    assert sorted(mark_lost_runs(platform, force=True)) == sorted([by_user.id, by_batch.id])
    # The process ends its run late (its last batch), or a user sets a status.
    client.runs.end(by_user.id, status="killed")
    client.runs.log_batch(by_batch.id, metrics=[("m", 1.0, 0, now_ms())], end_status="finished")
    for run_id, status in ((by_user.id, "killed"), (by_batch.id, "finished")):
        assert LOST_TAG not in client.runs.get(run_id).tags
        client.runs.heartbeat(run_id)  # a late one: the run stays as it was set
        assert client.runs.get(run_id).status == status


def test_a_server_marks_nothing_just_after_it_starts(watched: tuple[Platform, Client]) -> None:
    """Heartbeats sent while the server was down are lost: its processes' next ones
    come within an interval of its start, so it waits before judging."""
    platform, client = watched
    run = client.runs.create("exp")
    client.runs.heartbeat(run.id)
    silent_since(platform, run.id, TIMEOUT_S * 3)  # the server was down meanwhile
    platform.serving_since = time.monotonic()
    assert mark_lost_runs(platform, force=False) == []
    assert client.runs.get(run.id).status == "running"
    platform.serving_since = time.monotonic() - liveness.RESTART_GRACE_S - 1
    liveness._last_check.clear()
    assert mark_lost_runs(platform) == [run.id]


def test_a_failed_check_does_not_fail_the_read(
    watched: tuple[Platform, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = watched
    run = client.runs.create("exp")

    def busy(platform: Platform, *, force: bool = False) -> list[str]:
        raise OperationalError("UPDATE runs", {}, Exception("database is locked"))

    monkeypatch.setattr(liveness, "mark_lost_runs", busy)
    assert [r.id for r in client.runs.search(["exp"]).runs] == [run.id]
    assert client.runs.get(run.id).status == "running"


def test_mlflow_clients_see_a_lost_run_failed(watched: tuple[Platform, Client]) -> None:
    platform, client = watched
    run = client.runs.create("exp")
    client.runs.heartbeat(run.id)
    silent_since(platform, run.id, TIMEOUT_S + 1)
    app = create_app(platform, ui=False)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://embedded") as http:
        got = http.get("/api/2.0/mlflow/runs/get", params={"run_id": run.id})
    assert got.status_code == 200, got.text
    assert got.json()["run"]["info"]["status"] == "FAILED"


def test_the_sdk_heartbeat_retries_until_an_answer_that_cannot_change() -> None:
    answers: list[Exception | None] = [
        Unavailable("server down"),
        Conflict("run is deleted; restore it"),
        ShipyardError("database is locked"),
        None,
        NotFound("run not found"),
        None,  # never reached
    ]
    calls = []

    def send() -> None:
        calls.append(time.monotonic())
        answer = answers[len(calls) - 1]
        if answer is not None:
            raise answer

    beat = Heartbeat(send, 0.01, name="test-heartbeat").start()
    assert beat.join(timeout=10), "the heartbeat did not stop at 404"
    assert len(calls) == 5
