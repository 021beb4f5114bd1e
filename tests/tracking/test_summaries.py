"""What a search returns of each run (its params, tags and latest metrics) is what the
tables hold after every kind of write: it comes from the run summaries that writes keep
(tracking/summaries.py), on both databases."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from tests.conftest import embedded_client

from shipyard.client import Client
from shipyard.errors import Conflict
from shipyard.platform import Platform
from shipyard.tracking import liveness
from shipyard.tracking.liveness import LOST_TAG, mark_lost_runs
from shipyard.tracking.tables import LatestMetricRow, ParamRow, RunSummaryRow, RunTagRow


def from_tables(platform: Platform, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's params, tags and latest metrics read from their own tables."""
    with platform.db.read() as session:
        return {
            "params": dict(
                session.execute(
                    select(ParamRow.key, ParamRow.value).where(ParamRow.run_id == run_id)
                ).all()
            ),
            "tags": dict(
                session.execute(
                    select(RunTagRow.key, RunTagRow.value).where(RunTagRow.run_id == run_id)
                ).all()
            ),
            "metrics": dict(
                session.execute(
                    select(LatestMetricRow.key, LatestMetricRow.value).where(
                        LatestMetricRow.run_id == run_id
                    )
                ).all()
            ),
        }


def searched(client: Client, run_id: str) -> dict[str, dict[str, Any]]:
    (run,) = [r for r in client.runs.search(max_results=1000).runs if r.id == run_id]
    return {"params": run.params, "tags": run.tags, "metrics": run.metrics}


def summarized(platform: Platform) -> set[str]:
    """The runs that have a summary row."""
    with platform.db.read() as session:
        return set(session.scalars(select(RunSummaryRow.run_id)))


def agrees(platform: Platform, client: Client, run_id: str) -> None:
    assert searched(client, run_id) == from_tables(platform, run_id)
    assert client.runs.get(run_id).params == from_tables(platform, run_id)["params"]
    assert run_id in summarized(platform)  # read from its summary, not built


def test_every_kind_of_write_shows_in_search(platform: Platform) -> None:
    with embedded_client(platform) as client:
        run = client.runs.create("e", params={"lr": "0.1"}, tags={"team": "a"})
        agrees(platform, client, run.id)
        client.runs.log_batch(run.id, metrics=[("loss", 0.5, 1, 1000), ("acc", 0.1 + 0.2, 1, 1000)])
        agrees(platform, client, run.id)
        # An older step does not change the latest value; a newer one does.
        client.runs.log_batch(run.id, metrics=[("loss", 9.0, 0, 2000), ("acc", 0.9, 2, 900)])
        assert searched(client, run.id)["metrics"] == {"loss": 0.5, "acc": 0.9}
        agrees(platform, client, run.id)
        client.runs.log_batch(run.id, params={"depth": 3}, tags={"team": "b", "x": "y"})
        agrees(platform, client, run.id)
        client.runs.delete_tag(run.id, "x")
        agrees(platform, client, run.id)
        client.runs.update(run.id, status="finished")
        agrees(platform, client, run.id)
        bare = client.runs.create("e")  # a run with nothing logged yet
        assert searched(client, bare.id) == {"params": {}, "tags": {}, "metrics": {}}
        agrees(platform, client, bare.id)
        ids = client.runs.create_many(
            "e",
            [
                {"name": f"r{i}", "params": {"i": i}, "metrics": [("m", i / 3, 0, 5)]}
                for i in range(3)
            ],
        )
        for run_id in ids:
            agrees(platform, client, run_id)
        assert searched(client, ids[2])["metrics"] == {"m": 2 / 3}


def test_a_write_by_an_older_process_is_never_hidden_on_sqlite(platform: Platform) -> None:
    """SQLite (migration 0013): rows written by a process that knows nothing of
    summaries (an older version's, on an embedded home a newer one migrated) drop the
    run's summary, so searches show them, built from the tables, until a current
    process writes the run again."""
    if not platform.db.is_sqlite:
        pytest.skip("PostgreSQL's servers are upgraded together (rebuild-summaries repairs)")
    older_writes = [  # what such a process sends: no summaries.changed
        "UPDATE latest_metrics SET value = 0.25, step = 5 WHERE run_id = :run",
        "INSERT INTO params (run_id, key, value) VALUES (:run, 'added', 'x')",
        "UPDATE run_tags SET value = 'b' WHERE run_id = :run",
        "DELETE FROM run_tags WHERE run_id = :run",
    ]
    with embedded_client(platform) as client:
        run = client.runs.create("e", params={"lr": "0.1"}, tags={"team": "a"})
        for step, statement in enumerate(older_writes):
            client.runs.log_batch(run.id, metrics=[("m", 1.0, step, 1)])  # a current write
            agrees(platform, client, run.id)
            with platform.db.write() as session:
                session.execute(text(statement), {"run": run.id})
            assert run.id not in summarized(platform)
            assert searched(client, run.id) == from_tables(platform, run.id)
        assert searched(client, run.id) == {
            "params": {"lr": "0.1", "added": "x"},
            "tags": {},
            "metrics": {"m": 0.25},
        }
        client.runs.log_batch(run.id, tags={"team": "c"})
        agrees(platform, client, run.id)


def test_a_lost_run_and_its_revival_show_in_search(platform: Platform) -> None:
    platform.settings = platform.settings.model_copy(
        update={"run_heartbeat_timeout": 60.0, "run_heartbeat_interval": 0.0}
    )
    liveness._last_check.clear()
    with embedded_client(platform) as client:
        run = client.runs.create("e", tags={"team": "a"})
        client.runs.heartbeat(run.id)
        with platform.db.write() as session:
            session.execute(
                text("UPDATE runs SET heartbeat_at = heartbeat_at - 3600000 WHERE id = :id"),
                {"id": run.id},
            )
        assert mark_lost_runs(platform, force=True) == [run.id]
        assert LOST_TAG in searched(client, run.id)["tags"]
        agrees(platform, client, run.id)
        client.runs.heartbeat(run.id)  # back: the mark goes
        assert LOST_TAG not in searched(client, run.id)["tags"]
        agrees(platform, client, run.id)
        # Lost again, then ended by its owner: the answer to that update (read in
        # the transaction that removed the mark) no longer shows it either.
        with platform.db.write() as session:
            session.execute(
                text("UPDATE runs SET heartbeat_at = heartbeat_at - 3600000 WHERE id = :id"),
                {"id": run.id},
            )
        assert mark_lost_runs(platform, force=True) == [run.id]
        ended = client.runs.update(run.id, status="finished")
        assert LOST_TAG not in ended.tags and ended.tags == {"team": "a"}
        agrees(platform, client, run.id)


def test_a_refused_write_leaves_the_summary_as_it_was(platform: Platform) -> None:
    with embedded_client(platform) as client:
        run = client.runs.create("e", params={"lr": "0.1"})
        before = searched(client, run.id)
        with pytest.raises(Conflict):
            client.runs.log_batch(
                run.id, params={"lr": "0.2"}, tags={"t": "1"}, metrics=[("m", 1.0, 0, 1)]
            )
        assert searched(client, run.id) == before == from_tables(platform, run.id)


def test_a_run_without_a_summary_is_built_at_search(platform: Platform) -> None:
    """Runs that have no summary row (one removed here) are built at search time."""
    with embedded_client(platform) as client:
        run = client.runs.create("e", params={"lr": "0.1"}, tags={"team": "a"})
        client.runs.log_batch(run.id, metrics=[("m", 1.5, 0, 1)])
        with platform.db.write() as session:
            session.execute(delete(RunSummaryRow).where(RunSummaryRow.run_id == run.id))
        assert run.id not in summarized(platform)
        assert searched(client, run.id) == from_tables(platform, run.id)
        assert from_tables(platform, run.id)["metrics"] == {"m": 1.5}


def test_concurrent_writers_of_one_run_lose_nothing(platform: Platform) -> None:
    """Threads logging params, tags and metrics to one run at once, each several
    batches: the summary holds every one of them, and no writer fails (the summary
    lock is taken last, in run order, so writers cannot deadlock on it)."""
    with embedded_client(platform) as client:
        run = client.runs.create("e")
        other = client.runs.create("e")
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for step in range(8):
                    for run_id in (run.id, other.id) if n % 2 else (other.id, run.id):
                        client.runs.log_batch(
                            run_id,
                            params={f"p{n}_{step}": step},
                            tags={f"t{n}": step},
                            metrics=[(f"m{n}", float(step), step, step), ("shared", n, step, n)],
                        )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for run_id in (run.id, other.id):
            found = searched(client, run_id)
            assert found == from_tables(platform, run_id)
            assert len(found["params"]) == 32
            assert found["tags"] == {f"t{n}": "7" for n in range(4)}
            assert {k: v for k, v in found["metrics"].items() if k != "shared"} == {
                f"m{n}": 7.0 for n in range(4)
            }
            agrees(platform, client, run_id)


def waiting_on_a_lock(platform: Platform, seconds: float = 10.0) -> bool:
    """Whether a session of this database waits for a lock within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with platform.db.read() as session:
            waiting = session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return True
        time.sleep(0.02)
    return False


def test_a_writer_that_waited_rebuilds_from_the_other_writers_rows(platform: Platform) -> None:
    """Writer A has rebuilt run X's summary but not committed; writer B, who changed X
    too, commits after A. B's rebuild must see A's rows: it waits for A's lock on the
    summary first, and only then reads the tables (a rebuild that read them before
    waiting would write a summary without A's param)."""
    if platform.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    from sqlalchemy import insert

    from shipyard.tracking import summaries

    with embedded_client(platform) as client:
        run_id = client.runs.create("e").id
    a_rebuilt, b_done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer_b() -> None:
        try:
            a_rebuilt.wait(10)
            with platform.db.write() as session:
                session.execute(insert(ParamRow), [{"run_id": run_id, "key": "b", "value": "2"}])
                summaries.changed(session, [run_id])
        except BaseException as exc:
            failures.append(exc)
        finally:
            b_done.set()

    thread = threading.Thread(target=writer_b)
    thread.start()
    with platform.db.write() as session:
        session.execute(insert(ParamRow), [{"run_id": run_id, "key": "a", "value": "1"}])
        summaries.changed(session, [run_id])
        summaries._rebuild_stale(session)  # what its commit does, done early
        a_rebuilt.set()
        assert waiting_on_a_lock(platform), "B never waited for A"
        assert not b_done.is_set()
    thread.join(10)
    assert failures == []
    with embedded_client(platform) as client:
        assert searched(client, run_id)["params"] == {"a": "1", "b": "2"}


def test_a_run_made_in_a_rolled_back_savepoint_is_not_summarized(platform: Platform) -> None:
    """A savepoint that made and marked a run, then rolled back: the transaction still
    commits (the run is gone, so is any summary for it), and a savepoint that commits
    rebuilds nothing before the transaction does."""
    from sqlalchemy import insert

    from shipyard.tracking import summaries
    from shipyard.tracking.tables import RunRow

    with embedded_client(platform) as client:
        kept = client.runs.create("e").id
        experiment_id = client.runs.get(kept).experiment_id
    row = {
        "experiment_id": experiment_id,
        "status": "running",
        "user": "u",
        "start_time": 0,
    }
    with platform.db.write() as session:
        savepoint = session.begin_nested()
        session.execute(insert(RunRow), [{**row, "id": "gone", "name": "gone"}])
        summaries.changed(session, ["gone"])
        savepoint.rollback()
        with session.begin_nested():
            session.execute(insert(ParamRow), [{"run_id": kept, "key": "k", "value": "v"}])
            summaries.changed(session, [kept])
        # The savepoint that committed rebuilt nothing yet; the transaction will.
        assert summaries.pending(session) == sorted(["gone", kept])
    assert "gone" not in summarized(platform)
    with embedded_client(platform) as client:
        agrees(platform, client, kept)
        assert searched(client, kept)["params"] == {"k": "v"}


def test_mlflow_search_reads_params_and_tags_the_same_way(platform: Platform) -> None:
    """The MLflow protocol's search builds its messages from the same summaries (params
    and tags; metrics with their step and time from the table), and from the tables
    for a run with none or one this session has yet to rebuild."""
    from shipyard.mlflow_compat.tracking import _children
    from shipyard.tracking import summaries

    def messages(session: Any, run_id: str) -> tuple[dict[str, str], dict[str, str], dict]:
        child = _children(session, [run_id])[run_id]
        return (
            {p["key"]: p["value"] for p in child.params},
            {t["key"]: t["value"] for t in child.tags},
            {m["key"]: (m["value"], m["step"]) for m in child.metrics},
        )

    with embedded_client(platform) as client:
        run = client.runs.create("e", params={"lr": "0.1"}, tags={"team": "a"})
        client.runs.log_batch(run.id, metrics=[("m", 0.25, 3, 1)])
    want = ({"lr": "0.1"}, {"team": "a"}, {"m": (0.25, 3)})
    with platform.db.read() as session:
        assert messages(session, run.id) == want
    with platform.db.write() as session:
        session.execute(insert_row(RunTagRow, run_id=run.id, key="new", value="x"))
        summaries.changed(session, [run.id])
        assert messages(session, run.id)[1] == {"team": "a", "new": "x"}  # not the summary's
    with platform.db.write() as session:
        session.execute(delete(RunSummaryRow).where(RunSummaryRow.run_id == run.id))
    with platform.db.read() as session:
        assert messages(session, run.id) == (want[0], {"team": "a", "new": "x"}, want[2])


def insert_row(row: Any, **values: Any) -> Any:
    from sqlalchemy import insert

    return insert(row).values(**values)


def test_rebuilding_every_summary_repairs_stale_and_missing_ones(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipyard db rebuild-summaries` (after servers of an older version wrote): a
    summary left behind and one missing are rebuilt from the tables, in batches."""
    from typer.testing import CliRunner

    from shipyard.cli.main import app
    from shipyard.tracking.summaries import rebuild_all

    with embedded_client(platform) as client:
        ids = [client.runs.create("e", params={"i": i}, tags={"t": "x"}).id for i in range(5)]
    with platform.db.write() as session:  # what an older server's writes leave
        session.execute(text('UPDATE run_summaries SET params = \'{"i": "old"}\''))
        session.execute(delete(RunSummaryRow).where(RunSummaryRow.run_id == ids[0]))
    with embedded_client(platform) as client:
        assert searched(client, ids[1])["params"] == {"i": "old"}
    advanced: list[int] = []
    assert rebuild_all(platform.db, batch=2, advance=advanced.append) == 5
    assert advanced == [2, 2, 1]
    assert summarized(platform) == set(ids)
    with embedded_client(platform) as client:
        for run_id in ids:
            agrees(platform, client, run_id)
    # The command does the same over the database the settings name.
    with platform.db.write() as session:
        session.execute(text("UPDATE run_summaries SET tags = NULL"))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", platform.db.url.render_as_string(False))
    monkeypatch.setenv("SHIPYARD_HOME", str(platform.settings.home))
    result = CliRunner().invoke(app, ["db", "rebuild-summaries"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the summaries of 5 runs" in result.output
    with embedded_client(platform) as client:
        assert searched(client, ids[3])["tags"] == {"t": "x"}
