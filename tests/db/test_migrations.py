"""The one migration tree upgrades an empty database to head, on both databases,
and head matches the tables the code declares."""

from __future__ import annotations

import json
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from shipyard.db import Database, upgrade
from shipyard.db.base import all_tables
from shipyard.db.driver import driver_cursor, driver_sql
from shipyard.db.migrate import (
    alembic_config,
    at_head,
    current_revision,
    head_revision,
    pending_steps,
    stored_revisions,
    tree_head,
)
from shipyard.projects.tables import ProjectRow
from shipyard.tracking.metrics import OF_SERIES
from shipyard.tracking.upserts import insert_latest_metrics, insert_metric_rows


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield db
        db.dispose()
        return
    admin_url: str = request.getfixturevalue("pg_url")
    admin = Database(admin_url)
    name = f"shipyard_mig_{uuid.uuid4().hex[:8]}"
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(admin_url.rsplit("/", 1)[0] + f"/{name}")
    yield db
    db.dispose()
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _made_on(table: Any, dialect: str) -> bool:
    """Whether the migrations make ``table`` on ``dialect`` (some are PostgreSQL's alone)."""
    return table.info.get("only_on") in (None, dialect)


def test_upgrade_empty_database_to_head(empty_db: Database) -> None:
    assert current_revision(empty_db) is None
    upgrade(empty_db)
    assert current_revision(empty_db) == head_revision()
    tables = set(inspect(empty_db.engine).get_table_names())
    dialect = empty_db.engine.dialect.name
    declared = {t.name for t in all_tables().sorted_tables if _made_on(t, dialect)}
    assert declared <= tables
    with empty_db.read() as session:
        assert session.scalars(select(ProjectRow.name)).all() == ["default"]


def test_head_matches_declared_tables(empty_db: Database) -> None:
    upgrade(empty_db)
    dialect = empty_db.engine.dialect.name

    def declared_here(obj: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
        # An index (ddl_if) or a table (info) declared for one database only is
        # compared there alone.
        if kind == "table":
            return reflected or _made_on(obj, dialect)
        only_on = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return reflected or only_on in (None, dialect)

    with empty_db.engine.connect() as conn, warnings.catch_warnings():
        # Alembic warns that it cannot reflect SQLite's expression indexes even for
        # those include_object leaves out (PostgreSQL's alone).
        warnings.filterwarnings("ignore", message=".*expression-based index 'ix_[a-z_]+_prefix'")
        context = MigrationContext.configure(conn, opts={"include_object": declared_here})
        diff = compare_metadata(context, all_tables())
    assert diff == [], f"tables and migrations disagree; add a migration: {diff}"


def test_value_prefix_indexes_exist_on_postgresql_only(empty_db: Database) -> None:
    """Migration 0006: params and run tags indexed on (key, left(value, 100)), with
    statistics of how key, value and prefix depend on each other, where PostgreSQL
    runs; nothing added to SQLite."""
    upgrade(empty_db)
    names = {
        index["name"]
        for table in ("params", "run_tags")
        for index in inspect(empty_db.engine).get_indexes(table)
    }
    wanted = {"ix_params_key_value_prefix", "ix_run_tags_key_value_prefix"}
    if empty_db.engine.dialect.name == "postgresql":
        assert wanted <= names
        with empty_db.read() as session:
            statistics = set(session.scalars(text("SELECT stxname FROM pg_statistic_ext")))
        assert {"st_params_key_value_prefix", "st_run_tags_key_value_prefix"} <= statistics
        _downgrade(empty_db, "0005")  # down, then up again
        down = {i["name"] for i in inspect(empty_db.engine).get_indexes("params")}
        assert "ix_params_key_value_prefix" not in down
        upgrade(empty_db)
        assert "ix_params_key_value_prefix" in {
            i["name"] for i in inspect(empty_db.engine).get_indexes("params")
        }
    else:
        assert not names & wanted


def test_upgrade_is_idempotent_and_safe_concurrently(empty_db: Database) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(empty_db)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    upgrade(empty_db)
    with empty_db.read() as session:
        assert session.scalars(select(ProjectRow.name)).all() == ["default"]


def test_quick_head_check_agrees_with_alembic(empty_db: Database) -> None:
    assert tree_head() == head_revision()
    assert stored_revisions(empty_db) == []
    assert not at_head(empty_db)
    upgrade(empty_db, revision=_first_revision())
    assert stored_revisions(empty_db) == [_first_revision()]
    assert not at_head(empty_db)
    upgrade(empty_db)
    assert at_head(empty_db)


def _first_revision() -> str:
    base = ScriptDirectory.from_config(alembic_config()).get_base()
    assert base is not None
    return base


def _write_revision(folder: Path, revision: str, parent: str | None) -> None:
    down = "None" if parent is None else repr(parent)
    (folder / f"{revision}.py").write_text(
        f'revision = "{revision}"\ndown_revision = {down}\n', encoding="utf-8"
    )


def test_tree_head_reads_a_line_of_history(tmp_path: Path) -> None:
    _write_revision(tmp_path, "a1", None)
    _write_revision(tmp_path, "b2", "a1")
    _write_revision(tmp_path, "c3", "b2")
    assert tree_head(tmp_path) == "c3"
    # What Alembic skips is skipped: a package marker, an editor's dangling lock link.
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / ".#c3.py").symlink_to(tmp_path / "gone")
    assert tree_head(tmp_path) == "c3"


@pytest.mark.parametrize(
    "files",
    [
        # two heads: the quick read must not pick one
        [("a1", None), ("b2", "a1"), ("c3", "a1")],
        # a parent that is not in the tree
        [("a1", None), ("b2", "zz")],
    ],
)
def test_tree_head_defers_to_alembic_when_unsure(
    tmp_path: Path, files: list[tuple[str, str | None]]
) -> None:
    for revision, parent in files:
        _write_revision(tmp_path, revision, parent)
    assert tree_head(tmp_path) is None


def test_tree_head_defers_on_a_merge_revision(tmp_path: Path) -> None:
    _write_revision(tmp_path, "a1", None)
    (tmp_path / "m.py").write_text(
        'revision = "m"\ndown_revision = ("a1", "b2")\n', encoding="utf-8"
    )
    assert tree_head(tmp_path) is None


def _experiment_with_runs(session: Any, run_ids: list[str]) -> None:
    """Experiment 1 of the default project and finished runs ``run_ids`` in it, written
    as SQL (a migration test's database is older than today's tables)."""
    session.execute(
        text(
            "INSERT INTO experiments (project_id, name, description, lifecycle, created_at, "
            "updated_at) VALUES (1, 'e', '', 'active', 0, 0)"
        )
    )
    for run_id in run_ids:
        session.execute(
            text(
                'INSERT INTO runs (id, experiment_id, name, status, "user", start_time, '
                "lifecycle, description, code_version, environment) "
                "VALUES (:id, 1, :id, 'finished', 'u', 0, 'active', '', '{}', '{}')"
            ),
            {"id": run_id},
        )


def test_keyed_run_tables_move_to_without_rowid_with_their_rows(tmp_path: Path) -> None:
    """Migration 0004 rebuilds SQLite's params, run_tags and latest_metrics keyed by
    (run_id, key) alone, keeping every row, the foreign keys and the index."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(db, revision="0003")
    with db.write() as session:
        _experiment_with_runs(session, ["r1"])
        session.execute(text("INSERT INTO params VALUES ('r1', 'lr', '0.1')"))
        session.execute(text("INSERT INTO run_tags VALUES ('r1', 't', 'x')"))
        session.execute(text("INSERT INTO latest_metrics VALUES ('r1', 'acc', 3, 7, 0.25)"))
    upgrade(db)
    with db.write() as session:
        layouts = dict(
            session.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('params', 'run_tags', 'latest_metrics')"
                )
            ).all()
        )
        assert sorted(layouts) == ["latest_metrics", "params", "run_tags"]
        assert all(sql.rstrip().endswith("WITHOUT ROWID") for sql in layouts.values())
        assert session.execute(text("SELECT * FROM params")).all() == [("r1", "lr", "0.1")]
        assert session.execute(text("SELECT * FROM run_tags")).all() == [("r1", "t", "x")]
        latest = text("SELECT run_id, key, step, timestamp, value FROM latest_metrics")
        assert session.execute(latest).all() == [("r1", "acc", 3, 7, 0.25)]
        plan = session.execute(
            text("EXPLAIN QUERY PLAN SELECT run_id FROM latest_metrics WHERE key = 'acc'")
        ).all()
        assert "COVERING INDEX ix_latest_metrics_key_value" in str(plan)
        # The foreign key still holds: a param of no run is refused.
        with pytest.raises(Exception, match="FOREIGN KEY"):
            session.execute(text("INSERT INTO params VALUES ('nope', 'lr', '1')"))
    db.dispose()


def _downgrade(db: Database, revision: str) -> None:
    from alembic import command

    with db.engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_metric_points_lose_their_id_and_keep_every_point(empty_db: Database) -> None:
    """Migration 0005 drops the points' surrogate id, keeping every point (repeated ones
    included) and the history index; going back numbers them again."""
    upgrade(empty_db, revision="0004")
    points = [("r1", "loss", 0, 10, 1.5), ("r1", "loss", 0, 10, 1.5), ("r1", "loss", 1, 20, None)]
    insert = text(
        "INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (:r, :k, :s, :t, :v)"
    )
    with empty_db.write() as session:
        for r, k, s, t, v in points:
            session.execute(insert, {"r": r, "k": k, "s": s, "t": t, "v": v})
    read = text("SELECT run_id, key, step, timestamp, value FROM metrics ORDER BY step")
    upgrade(empty_db, revision="0005")
    columns = [c["name"] for c in inspect(empty_db.engine).get_columns("metrics")]
    assert columns == ["run_id", "key", "step", "timestamp", "value"]
    assert [i["name"] for i in inspect(empty_db.engine).get_indexes("metrics")] == [
        "ix_metrics_run_key_step"
    ]
    with empty_db.write() as session:
        assert session.execute(read).all() == points
        session.execute(insert, {"r": "r1", "k": "loss", "s": 0, "t": 10, "v": 1.5})
        points.insert(0, points[0])
    _downgrade(empty_db, "0004")
    assert "id" in [c["name"] for c in inspect(empty_db.engine).get_columns("metrics")]
    with empty_db.write() as session:
        assert session.execute(read).all() == points
        ids = session.execute(text("SELECT id FROM metrics")).scalars().all()
        assert len(set(ids)) == len(points)
        session.execute(insert, {"r": "r1", "k": "acc", "s": 0, "t": 0, "v": 0.0})  # numbered
        assert len(set(session.execute(text("SELECT id FROM metrics")).scalars())) == 5


def test_dataset_versions_record_the_parents_they_had(empty_db: Database) -> None:
    """Migration 0007 records each version's parents by name (from the lineage edges
    it had), so that lineage keeps naming them once they are deleted."""
    upgrade(empty_db, revision="0006")
    dataset = text(
        "INSERT INTO datasets (id, project_id, name, description, expectations, created_by, "
        "created_at, updated_at) VALUES (:id, 1, :name, '', '{}', 'u', 0, 0)"
    )
    version = text(
        "INSERT INTO dataset_versions (id, dataset_id, version, kind, digest, message, source, "
        "created_by, created_at, rows, bytes, file_count, columns, arrow_schema) "
        "VALUES (:id, :dataset, :version, 'data', :digest, '', '', 'u', 0, 1, 1, 1, '[]', '')"
    )
    edge = text("INSERT INTO dataset_parents (child_id, parent_id, relation) VALUES (:c, :p, :r)")
    with empty_db.write() as session:
        session.execute(dataset, [{"id": 1, "name": "raw"}, {"id": 2, "name": "clean"}])
        session.execute(
            version,
            [
                {"id": 10, "dataset": 1, "version": 1, "digest": "d1"},
                {"id": 11, "dataset": 1, "version": 2, "digest": "d2"},
                {"id": 20, "dataset": 2, "version": 1, "digest": "d3"},
            ],
        )
        session.execute(
            edge,
            [
                {"c": 11, "p": 10, "r": "append"},
                {"c": 20, "p": 11, "r": "derived"},
                {"c": 20, "p": 10, "r": "derived"},
            ],
        )
    upgrade(empty_db)
    with empty_db.read() as session:
        rows = session.execute(
            text("SELECT id, recorded_parents FROM dataset_versions ORDER BY id")
        ).all()
    recorded = {i: (json.loads(p) if isinstance(p, str) else p) for i, p in rows}
    assert recorded[10] is None
    assert recorded[11] == [{"dataset": "raw", "version": 1, "digest": "d1", "relation": "append"}]
    assert recorded[20] == [
        {"dataset": "raw", "version": 1, "digest": "d1", "relation": "derived"},
        {"dataset": "raw", "version": 2, "digest": "d2", "relation": "derived"},
    ]
    _downgrade(empty_db, "0006")
    columns = [c["name"] for c in inspect(empty_db.engine).get_columns("dataset_versions")]
    assert "recorded_parents" not in columns


def test_runs_gain_a_heartbeat_time_and_keep_their_rows(empty_db: Database) -> None:
    """Migration 0008 adds runs.heartbeat_at (NULL for existing runs: no process watches
    them, so none is ever marked lost) with its index; going back keeps every run."""
    upgrade(empty_db, revision="0007")
    with empty_db.write() as session:
        session.execute(
            text(
                "INSERT INTO projects (id, name, description, created_at, created_by) "
                "VALUES (7, 'p', '', 0, 'u')"
            )
        )
        session.execute(
            text(
                "INSERT INTO experiments (id, project_id, name, description, lifecycle, "
                "created_at, updated_at) VALUES (7, 7, 'e', '', 'active', 0, 0)"
            )
        )
        session.execute(
            text(
                'INSERT INTO runs (id, experiment_id, name, status, "user", start_time, '
                "lifecycle, description, code_version, environment) "
                "VALUES ('r1', 7, 'old', 'running', 'u', 5, 'active', '', '{}', '{}')"
            )
        )
    upgrade(empty_db)
    indexes = {i["name"]: i["column_names"] for i in inspect(empty_db.engine).get_indexes("runs")}
    assert indexes["ix_runs_status_heartbeat"] == ["status", "heartbeat_at"]
    read = text("SELECT id, name, status, heartbeat_at FROM runs")
    with empty_db.read() as session:
        assert session.execute(read).all() == [("r1", "old", "running", None)]
    _downgrade(empty_db, "0007")
    assert "heartbeat_at" not in [c["name"] for c in inspect(empty_db.engine).get_columns("runs")]
    with empty_db.read() as session:
        assert session.execute(text("SELECT id, name, status FROM runs")).all() == [
            ("r1", "old", "running")
        ]


def test_run_summaries_are_made_for_existing_runs(empty_db: Database) -> None:
    """Migrations 0009 (PostgreSQL) and 0012 (SQLite): run_summaries, one row per
    existing run holding its params, tags and latest metrics, the doubles exactly."""
    upgrade(empty_db, revision="0008")
    big = 1.3987295133952777e284  # SQLite 3.40's printf('%!.17g') gets its last digit wrong
    with empty_db.write() as session:
        _experiment_with_runs(session, ["r1", "r2"])
        session.execute(text("INSERT INTO params VALUES ('r1', 'lr', '0.1'), ('r1', 'n', '3')"))
        session.execute(text("INSERT INTO run_tags VALUES ('r1', 'team', 'a')"))
        session.execute(
            text(
                "INSERT INTO latest_metrics VALUES ('r1', 'acc', 4, 40, :v), "
                "('r1', 'big', 0, 0, :big), ('r1', 'gone', 0, 0, NULL)"
            ),
            {"v": 0.1 + 0.2, "big": big},
        )
    upgrade(empty_db, revision="0011")
    # SQLite has no summaries before 0012, PostgreSQL has had them since 0009.
    sqlite = empty_db.engine.dialect.name == "sqlite"
    assert ("run_summaries" in inspect(empty_db.engine).get_table_names()) is not sqlite
    upgrade(empty_db)
    with empty_db.read() as session:
        rows = session.execute(
            text("SELECT run_id, params, tags, metrics FROM run_summaries ORDER BY run_id")
        ).all()
    assert [(r[0], r[3] is None) for r in rows] == [("r1", False), ("r2", True)]
    assert json.loads(rows[0][1]) == {"lr": "0.1", "n": "3"}
    assert json.loads(rows[0][2]) == {"team": "a"}
    assert json.loads(rows[0][3]) == {"acc": 0.1 + 0.2, "big": big, "gone": None}  # exactly
    assert rows[1][1:] == (None, None, None)
    _downgrade(empty_db, "0011")
    assert ("run_summaries" in inspect(empty_db.engine).get_table_names()) is not sqlite
    _downgrade(empty_db, "0008")
    assert "run_summaries" not in set(inspect(empty_db.engine).get_table_names())
    upgrade(empty_db)


def test_sqlite_summaries_get_a_rowid_table_and_follow_every_writer(empty_db: Database) -> None:
    """Migration 0013 (SQLite): run_summaries becomes an ordinary rowid table, its rows
    kept, and a write into params, run_tags or latest_metrics by anyone deletes the
    run's summary; down again, the WITHOUT ROWID table and no triggers."""
    if empty_db.engine.dialect.name != "sqlite":
        upgrade(empty_db)
        return  # PostgreSQL: nothing to see
    upgrade(empty_db, revision="0012")
    with empty_db.write() as session:
        _experiment_with_runs(session, ["r1", "r2"])
        session.execute(text("INSERT INTO params VALUES ('r1', 'lr', '0.1')"))
        session.execute(text("INSERT INTO run_summaries (run_id) VALUES ('r1'), ('r2')"))

    def layout() -> tuple[bool, list[str], list[str]]:
        with empty_db.read() as session:
            sql = session.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'run_summaries'")
            ).scalar_one()
            triggers = session.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND sql LIKE '%run_summaries%' ORDER BY name"
                )
            ).scalars()
            rows = session.execute(text("SELECT run_id FROM run_summaries ORDER BY run_id"))
            return "WITHOUT ROWID" in sql, list(triggers), list(rows.scalars())

    assert layout() == (True, [], ["r1", "r2"])
    upgrade(empty_db)
    without_rowid, triggers, rows = layout()
    assert (without_rowid, len(triggers), rows) == (False, 9, ["r1", "r2"])
    writes = [
        "INSERT INTO run_tags VALUES ('r2', 't', 'x')",
        "UPDATE params SET value = '0.2' WHERE run_id = 'r1'",
        "DELETE FROM run_tags WHERE run_id = 'r2'",
    ]
    for statement, left in zip(writes, [["r1"], [], []], strict=True):
        with empty_db.write() as session:
            session.execute(text(statement))
        assert layout()[2] == left
    _downgrade(empty_db, "0012")
    assert layout()[:2] == (True, [])


def test_metric_points_move_under_their_series_and_back(empty_db: Database) -> None:
    """Migration 0010 numbers each run's metric (its latest_metrics row) and stores the
    points under that series, every point kept (repeated ones and NULL values too)
    and read back through the new index; a series made after it gets a new number;
    going back restores (run_id, key) on every point."""
    upgrade(empty_db, revision="0009")
    latest = text("INSERT INTO latest_metrics VALUES (:r, :k, 9, 9, 0.5)")
    points = [
        ("r1", "acc", 0, 10, 0.25),
        ("r1", "acc", 0, 10, 0.25),
        ("r1", "loss", 1, 20, None),
        ("r2", "acc", 2, 30, 0.1 + 0.2),
    ]
    insert = text(
        "INSERT INTO metrics (run_id, key, step, timestamp, value) VALUES (:r, :k, :s, :t, :v)"
    )
    with empty_db.write() as session:
        _experiment_with_runs(session, ["r1", "r2"])
        session.execute(latest, [{"r": "r1", "k": "acc"}, {"r": "r1", "k": "loss"}])
        session.execute(latest, {"r": "r2", "k": "acc"})
        for r, k, s, t, v in points:
            session.execute(insert, {"r": r, "k": k, "s": s, "t": t, "v": v})
    upgrade(empty_db)
    columns = [c["name"] for c in inspect(empty_db.engine).get_columns("metrics")]
    assert columns == ["series_id", "step", "timestamp", "value"]
    assert [i["name"] for i in inspect(empty_db.engine).get_indexes("metrics")] == [
        "ix_metrics_series_id_step"
    ]
    by_series = text(
        "SELECT l.run_id, l.key, m.step, m.timestamp, m.value FROM metrics AS m "
        "JOIN latest_metrics AS l ON l.id = m.series_id ORDER BY l.run_id, l.key, m.step"
    )
    with empty_db.write() as session:
        ids = session.execute(text("SELECT id FROM latest_metrics")).scalars().all()
        assert len(set(ids)) == 3 and None not in ids
        assert session.execute(by_series).all() == points
        # A new series is numbered past the existing ones, as the app numbers them.
        new = insert_latest_metrics(session, [("r2", "loss", 0, 0, 1.0)])
        assert new[("r2", "loss")] not in ids
    history = f"SELECT step, value FROM metrics WHERE {OF_SERIES} ORDER BY step"  # noqa: S608
    with empty_db.read() as session:
        cursor, dialect = driver_cursor(session)
        cursor.execute(driver_sql(history, dialect), ("r1", "acc"))
        assert [tuple(row) for row in cursor.fetchall()] == [(0, 0.25), (0, 0.25)]
        cursor.close()
    _downgrade(empty_db, "0009")
    latest_columns = inspect(empty_db.engine).get_columns("latest_metrics")
    assert "id" not in [c["name"] for c in latest_columns]
    read = text(
        "SELECT run_id, key, step, timestamp, value FROM metrics ORDER BY run_id, key, step"
    )
    with empty_db.read() as session:
        assert session.execute(read).all() == points


def test_deleting_a_series_deletes_its_points(empty_db: Database) -> None:
    """Migration 0011: a run deleted for good takes its series' points along (they have
    no foreign key), so on SQLite a series numbered after it, which may take the same
    id, starts with an empty history; points of other runs stay."""
    upgrade(empty_db)
    points = text("SELECT series_id, step FROM metrics ORDER BY series_id, step")
    with empty_db.write() as session:
        _experiment_with_runs(session, ["a", "b"])
        series = insert_latest_metrics(
            session, [("a", "loss", 1, 1, 8.0), ("b", "loss", 0, 0, 1.0)]
        )
        insert_metric_rows(
            session,
            [(series["a", "loss"], 0, 0, 9.0), (series["a", "loss"], 1, 1, 8.0)]
            + [(series["b", "loss"], 0, 0, 1.0)],
        )
    with empty_db.write() as session:
        session.execute(text("DELETE FROM runs WHERE id = 'a'"))  # cascades to its series
        assert session.execute(points).all() == [(series["b", "loss"], 0)]
        fresh = insert_latest_metrics(session, [("b", "acc", 0, 0, 0.5)])
        history = f"SELECT value FROM metrics WHERE {OF_SERIES}"  # noqa: S608
        cursor, dialect = driver_cursor(session)
        cursor.execute(driver_sql(history, dialect), ("b", "acc"))
        assert cursor.fetchall() == []
        cursor.close()
        assert fresh["b", "acc"] != series["b", "loss"]
    _downgrade(empty_db, "0010")  # without the trigger, points outlive their series
    with empty_db.write() as session:
        session.execute(text("DELETE FROM runs WHERE id = 'b'"))
        assert session.execute(points).all() == [(series["b", "loss"], 0)]


def test_each_step_applied_is_reported_with_its_title(empty_db: Database) -> None:
    """A long migration does not look like a hung start: upgrade() tells its caller of
    each step as it is applied, with the migration's title and how long it took."""
    upgrade(empty_db, revision="0009")
    waiting = pending_steps(empty_db)
    assert [revision for revision, _ in waiting][:2] == ["0010", "0011"]
    assert waiting[1][1] == "Deleting a metric series deletes its points"
    assert waiting[-1][0] == head_revision()
    reported: list[tuple[str, str, float]] = []
    upgrade(empty_db, on_step=lambda *step: reported.append(step))
    assert [(revision, title) for revision, title, _ in reported] == waiting
    assert all(seconds >= 0 for _, _, seconds in reported)
    assert pending_steps(empty_db) == []


def test_rebuilding_summaries_asks_for_the_upgrade_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipyard db rebuild-summaries` on a database behind this version says to upgrade
    it first (exit 1) rather than failing on a missing table, and changes nothing."""
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    home_db = Database(f"sqlite:///{tmp_path / 'home' / 'shipyard.db'}")
    upgrade(home_db, revision="0011")
    result = CliRunner().invoke(app, ["db", "rebuild-summaries"])
    assert result.exit_code == 1
    assert "at revision 0011" in result.output and "shipyard db upgrade" in result.output
    assert current_revision(home_db) == "0011"
    home_db.dispose()


def test_db_upgrade_command_lists_the_steps_it_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.main import app

    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    head = head_revision()
    made = CliRunner().invoke(app, ["db", "upgrade"])  # a new database: one line
    assert made.output.splitlines() == [f"database at revision {head} (was None)"]
    home_db = Database(f"sqlite:///{tmp_path / 'home' / 'shipyard.db'}")
    _downgrade(home_db, "0009")
    home_db.dispose()
    upgraded = CliRunner().invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    lines = upgraded.output.splitlines()
    assert lines[0].startswith("applied 0010: Metric points are stored by series")
    assert lines[1].startswith("applied 0011: Deleting a metric series deletes its points (")
    assert lines[-1] == f"database at revision {head} (was 0009)"
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert again.output.splitlines() == [f"database at revision {head}"]
