"""build_search_query against real SQLite and PostgreSQL: which runs come back, in what order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.errors import InvalidInput
from shipyard.platform import Platform
from shipyard.tracking.search import build_search_query
from shipyard.tracking.tables import (
    VALUE_PREFIX,
    ExperimentRow,
    LatestMetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)
from shipyard.tracking.types import MAX_PARAM_VALUE_LENGTH
from shipyard.tracking.upserts import insert_latest_metrics

NAN = None  # a NaN metric is stored as NULL


@dataclass
class Seeded:
    main: int
    other: int


# run id -> (name, status, user, start_time, end_time, parent, metrics, params, tags)
RUNS: dict[str, tuple] = {  # type: ignore[type-arg]
    "run1": (
        "alpha", "finished", "alice", 1000, 2000, None,
        {"acc": 0.95, "loss": 0.1},
        {"lr": "0.01", "model": "resnet"},
        {"team": "Vision", "odd key!": "yes", "rank": "b", "note": "axb"},
    ),
    "run2": (
        "beta", "failed", "bob", 2000, 3000, None,
        {"acc": 0.8, "loss": 0.5},
        {"lr": "0.1", "model": "ResNet"},
        {"team": "nlp", "rank": "c", "note": "a*b?[c]"},
    ),
    "run3": (
        "gamma", "running", "alice", 3000, None, None,
        {"loss": NAN},
        {"lr": "0.01"},
        {},
    ),
    "run4": (
        "delta_1", "killed", "carol", 4000, 5000, "run1",
        {"acc": 0.9, "loss": 0.3},
        {"lr": "0.001", "model": "res_net"},
        {"team": "vision", "rank": "a"},
    ),
}  # fmt: skip
OTHER_RUN = "run5"  # in the other experiment, matching most filters


def seed(platform: Platform) -> Seeded:
    with platform.db.write() as session:
        main = ExperimentRow(project_id=1, name="main", created_at=0, updated_at=0)
        other = ExperimentRow(project_id=1, name="other", created_at=0, updated_at=0)
        session.add_all([main, other])
        session.flush()
        rows: list[object] = []
        latest: list[tuple[str, str, int, int, float | None]] = []
        runs = dict(RUNS)
        runs[OTHER_RUN] = ("alpha", "finished", "alice", 500, 600, None, {"acc": 0.99},
                           {"lr": "0.01"}, {"team": "vision"})  # fmt: skip
        for run_id, (name, status, user, start, end, parent, metrics, params, tags) in runs.items():
            rows.append(
                RunRow(
                    id=run_id,
                    experiment_id=other.id if run_id == OTHER_RUN else main.id,
                    name=name,
                    status=status,
                    user=user,
                    start_time=start,
                    end_time=end,
                    parent_run_id=parent,
                )
            )
            latest += [(run_id, k, 0, 0, v) for k, v in metrics.items()]
            rows += [ParamRow(run_id=run_id, key=k, value=v) for k, v in params.items()]
            rows += [RunTagRow(run_id=run_id, key=k, value=v) for k, v in tags.items()]
        # Runs first: the child rows reference them.
        session.add_all([r for r in rows if isinstance(r, RunRow)])
        session.flush()
        session.add_all([r for r in rows if not isinstance(r, RunRow)])
        insert_latest_metrics(session, latest)  # each a series, numbered as the app does
        return Seeded(main.id, other.id)


def search(
    platform: Platform,
    filter_string: str | None,
    order_by: Sequence[str] | None = None,
    experiment_id: int | None = None,
) -> list[str]:
    stmt = select(RunRow.id).where(RunRow.lifecycle == "active")
    if experiment_id is not None:
        stmt = stmt.where(RunRow.experiment_id == experiment_id)
    with platform.db.read() as session:
        return list(session.scalars(build_search_query(stmt, filter_string, order_by)))


def check(platform: Platform, exp: int, cases: dict[str, list[str]]) -> None:
    """Every filter gives exactly its runs (default order: start_time DESC)."""
    got = {f: search(platform, f, experiment_id=exp) for f in cases}
    assert got == cases


def test_metric_filters(platform: Platform) -> None:
    exp = seed(platform).main
    check(
        platform,
        exp,
        {
            "metrics.acc > 0.85": ["run4", "run1"],
            "metrics.acc >= 0.9": ["run4", "run1"],
            "metrics.acc = 0.8": ["run2"],
            "metrics.acc <= 0.8": ["run2"],
            # A run without the metric matches neither < nor !=.
            "metrics.acc < 5": ["run4", "run2", "run1"],
            "metrics.acc != 0.8": ["run4", "run1"],
            # A NaN (stored NULL) compares false with every number.
            "metrics.loss != 0.1": ["run4", "run2"],
            "metrics.loss < 100": ["run4", "run2", "run1"],
            "metrics.acc IN (0.8, 0.9)": ["run4", "run2"],
            "metrics.acc NOT IN (0.8)": ["run4", "run1"],
            # IS NULL means "not logged"; a NaN is logged.
            "metrics.acc IS NULL": ["run3"],
            "metrics.acc IS NOT NULL": ["run4", "run2", "run1"],
            "metrics.loss IS NULL": [],
            "metrics.never IS NULL": ["run4", "run3", "run2", "run1"],
            "metrics.never > 0": [],
            "metrics.acc > -1e3": ["run4", "run2", "run1"],
            "metrics.acc > 1": [],
            # NOT is plain boolean negation of "has it and it is > 0.85".
            "NOT metrics.acc > 0.85": ["run3", "run2"],
        },
    )


def test_param_and_tag_filters(platform: Platform) -> None:
    exp = seed(platform).main
    check(
        platform,
        exp,
        {
            "params.lr = '0.01'": ["run3", "run1"],
            'params.lr = "0.01"': ["run3", "run1"],
            "params.lr = 0.01": ["run3", "run1"],  # a bare number compares as its text
            "params.lr = 0.010": [],
            "params.lr != '0.01'": ["run4", "run2"],
            "params.model != 'x'": ["run4", "run2", "run1"],  # run3 has no model
            "params.model IS NULL": ["run3"],
            "params.model IS NOT NULL": ["run4", "run2", "run1"],
            "params.lr IN ('0.1', '0.001')": ["run4", "run2"],
            "params.lr NOT IN ('0.1', '0.001')": ["run3", "run1"],
            # LIKE is case-sensitive on both backends, ILIKE is not.
            "params.model LIKE 'res%'": ["run4", "run1"],
            "params.model ILIKE 'RES%'": ["run4", "run2", "run1"],
            "params.model NOT LIKE 'res%'": ["run2"],
            "params.model NOT ILIKE 'resnet'": ["run4"],
            "params.model LIKE 'resne_'": ["run1"],
            "params.model LIKE 'res\\_net'": ["run4"],
            "params.model LIKE 'res\\_%'": ["run4"],
            "params.model ILIKE '%NET'": ["run4", "run2", "run1"],
            # Characters special to GLOB are plain characters in LIKE.
            "tags.note LIKE 'a*b?[c]'": ["run2"],
            "tags.note LIKE 'a*%'": ["run2"],
            "tags.note LIKE 'a_b'": ["run1"],
            "tags.note LIKE '%[c]'": ["run2"],
            "tags.team = 'vision'": ["run4"],
            "tags.team IN ('vision', 'nlp')": ["run4", "run2"],
            "tags.team NOT IN ('nlp')": ["run4", "run1"],
            "tags.team ILIKE 'VISION'": ["run4", "run1"],
            "tags.team IS NULL": ["run3"],
            "tags.`odd key!` = 'yes'": ["run1"],
            "tags.\"odd key!\" = 'yes'": ["run1"],
            "tags.odd = 'yes'": [],
        },
    )


def test_attribute_filters(platform: Platform) -> None:
    seeded = seed(platform)
    exp = seeded.main
    check(
        platform,
        exp,
        {
            # Statuses compare case-insensitively.
            "status = 'FINISHED'": ["run1"],
            "attributes.status = 'finished'": ["run1"],
            "status IN ('Failed', 'KILLED')": ["run4", "run2"],
            "status != 'running'": ["run4", "run2", "run1"],
            "status LIKE 'FIN%'": ["run1"],
            "status NOT IN ('running')": ["run4", "run2", "run1"],
            "name = 'beta'": ["run2"],
            "run_name = 'beta'": ["run2"],
            "attributes.run_name LIKE 'delta\\_%'": ["run4"],
            "name ILIKE 'ALPHA'": ["run1"],
            "user = 'alice'": ["run3", "run1"],
            "start_time >= 2000 and start_time < 4000": ["run3", "run2"],
            "start_time = 1000": ["run1"],
            "end_time IS NULL": ["run3"],
            "end_time IS NOT NULL": ["run4", "run2", "run1"],
            "end_time > 2500": ["run4", "run2"],
            # A running run (no end_time) matches the negation, like a missing metric.
            "NOT end_time > 2500": ["run3", "run1"],
            "run_id IN ('run1', 'run3', 'run5')": ["run3", "run1"],
            "id = 'run2'": ["run2"],
            "attributes.run_id != 'run2'": ["run4", "run3", "run1"],
            "parent_run_id = 'run1'": ["run4"],
            "parent_run_id IS NULL": ["run3", "run2", "run1"],
            "NOT parent_run_id = 'run1'": ["run3", "run2", "run1"],
            f"experiment_id = {exp}": ["run4", "run3", "run2", "run1"],
            f"experiment_id = {seeded.other}": [],
        },
    )
    # Across experiments (the caller's statement does not restrict them).
    assert search(platform, f"experiment_id = {seeded.other}") == ["run5"]
    assert search(platform, f"experiment_id = '{seeded.other}'") == ["run5"]
    assert search(platform, f"experiment_id IN ({seeded.other}, {exp}) and name = 'alpha'") == [
        "run1",
        "run5",
    ]


def test_boolean_structure(platform: Platform) -> None:
    exp = seed(platform).main
    check(
        platform,
        exp,
        {
            "metrics.acc > 0.85 and params.lr = '0.01'": ["run1"],
            "metrics.acc > 0.85 AnD params.lr = '0.01'": ["run1"],
            # AND binds tighter than OR.
            "params.lr = '0.01' or metrics.acc > 0.85 and tags.team = 'nlp'": ["run3", "run1"],
            "(params.lr = '0.01' or metrics.acc > 0.85) and tags.team = 'vision'": ["run4"],
            "params.lr = '0.01' or metrics.acc > 0.85 or status = 'failed'": [
                "run4",
                "run3",
                "run2",
                "run1",
            ],
            "not (params.lr = '0.01' or status = 'failed')": ["run4"],
            "not not params.lr = '0.01'": ["run3", "run1"],
            "metrics.acc > 0.85 and not tags.team = 'vision'": ["run1"],
            "metrics.acc IS NULL or params.model LIKE 'Res%'": ["run3", "run2"],
        },
    )
    assert search(platform, "", experiment_id=exp) == ["run4", "run3", "run2", "run1"]
    assert search(platform, None, experiment_id=exp) == ["run4", "run3", "run2", "run1"]


def test_ordering(platform: Platform) -> None:
    exp = seed(platform).main
    cases: dict[tuple[str, ...], list[str]] = {
        (): ["run4", "run3", "run2", "run1"],
        # Runs without the metric (run3) come last both ways, and so does a NaN.
        ("metrics.acc DESC",): ["run1", "run4", "run2", "run3"],
        ("metrics.acc ASC",): ["run2", "run4", "run1", "run3"],
        ("metrics.acc",): ["run2", "run4", "run1", "run3"],
        ("metrics.loss",): ["run1", "run4", "run2", "run3"],
        ("metrics.loss desc",): ["run2", "run4", "run1", "run3"],
        ("metrics.never DESC",): ["run4", "run3", "run2", "run1"],
        ("tags.rank",): ["run4", "run1", "run2", "run3"],
        ("tags.rank DESC",): ["run2", "run1", "run4", "run3"],
        # Ties (run1 and run3 share lr) fall back to start_time DESC.
        ("params.lr",): ["run4", "run3", "run1", "run2"],
        ("params.lr DESC",): ["run2", "run3", "run1", "run4"],
        ("params.lr", "metrics.acc DESC"): ["run4", "run1", "run3", "run2"],
        ("attributes.start_time ASC",): ["run1", "run2", "run3", "run4"],
        ("start_time DESC",): ["run4", "run3", "run2", "run1"],
        ("end_time DESC",): ["run4", "run2", "run1", "run3"],
        ("end_time",): ["run1", "run2", "run4", "run3"],
        ("name",): ["run1", "run2", "run4", "run3"],
        ("run_name DESC",): ["run3", "run4", "run2", "run1"],
        ("user", "start_time"): ["run1", "run3", "run2", "run4"],
        ("parent_run_id",): ["run4", "run3", "run2", "run1"],
        ("id DESC",): ["run4", "run3", "run2", "run1"],
        ("status",): ["run2", "run1", "run4", "run3"],
    }
    got = {order: search(platform, None, list(order), experiment_id=exp) for order in cases}
    assert got == cases


def test_filter_and_order_together(platform: Platform) -> None:
    exp = seed(platform).main
    got = search(
        platform,
        "metrics.acc > 0.5 and params.lr IN ('0.01', '0.001')",
        ["metrics.acc DESC"],
        experiment_id=exp,
    )
    assert got == ["run1", "run4"]
    got = search(platform, "params.lr = '0.01'", ["metrics.acc ASC"], experiment_id=exp)
    assert got == ["run1", "run3"]
    got = search(platform, "params.lr = '0.01'", ["metrics.acc DESC"], experiment_id=exp)
    assert got == ["run1", "run3"]
    # The ordering join composes with the caller's LIMIT.
    stmt = select(RunRow.id).where(RunRow.experiment_id == exp)
    stmt = build_search_query(stmt, "metrics.loss < 1", ["metrics.loss DESC"]).limit(2)
    with platform.db.read() as session:
        assert list(session.scalars(stmt)) == ["run2", "run4"]


def test_filters_on_the_sorted_key(platform: Platform) -> None:
    """A comparison on the key being sorted by (folded into the sort's join) keeps
    exactly the meaning it has elsewhere."""
    exp = seed(platform).main
    cases: dict[tuple[str, str], list[str]] = {
        ("metrics.acc > 0.5", "metrics.acc DESC"): ["run1", "run4", "run2"],
        ("metrics.acc > 0.5", "metrics.acc ASC"): ["run2", "run4", "run1"],
        ("metrics.acc > 0.5 and metrics.acc < 0.92", "metrics.acc"): ["run2", "run4"],
        ("(metrics.acc > 0.5 and user != 'x') and (metrics.acc < 0.92)", "metrics.acc"): [
            "run2",
            "run4",
        ],
        ("metrics.acc != 0.8 and params.lr = '0.01'", "metrics.acc DESC"): ["run1"],
        ("metrics.acc IN (0.8, 0.95)", "metrics.acc DESC"): ["run1", "run2"],
        ("metrics.loss != 0.3", "metrics.loss DESC"): ["run2", "run1"],  # NaN run3 is out
        # Presence alone does not fold: the NaN of run3 still sorts last.
        ("metrics.loss IS NOT NULL", "metrics.loss DESC"): ["run2", "run4", "run1", "run3"],
        ("metrics.acc IS NULL", "metrics.acc DESC"): ["run3"],
        # Under OR or NOT the comparison stays a filter of its own.
        ("metrics.acc > 0.85 or params.lr = '0.01'", "metrics.acc DESC"): [
            "run1",
            "run4",
            "run3",
        ],
        ("not metrics.acc > 0.85", "metrics.acc DESC"): ["run2", "run3"],
        ("params.lr IN ('0.01', '0.001')", "params.lr DESC"): ["run1", "run3", "run4"],
        ("tags.rank IN ('a', 'b') and status != 'failed'", "tags.rank"): ["run4", "run1"],
    }
    got = {
        (f, o): search(platform, f, [o, "metrics.acc DESC", o], experiment_id=exp) for f, o in cases
    }
    assert got == cases
    with pytest.raises(InvalidInput, match="LIKE does not apply to metrics.acc"):
        search(platform, "metrics.acc LIKE '1%'", ["metrics.acc"], experiment_id=exp)
    with pytest.raises(InvalidInput, match="compares to numbers"):
        search(platform, "metrics.acc > 'x' and status = 'x'", ["metrics.acc"])


def test_comparisons_on_several_keys(platform: Platform) -> None:
    """Comparisons on several keys, and several on one key, beside OR, NOT and
    IS NULL: each keeps its meaning, and only the runs of the experiment match."""
    exp = seed(platform).main
    check(
        platform,
        exp,
        {
            "metrics.acc > 0.5 and metrics.acc < 0.92 and params.lr = '0.001'": ["run4"],
            "params.lr = '0.01' and metrics.acc IS NULL": ["run3"],
            "tags.team = 'vision' and params.model LIKE 'res%' and metrics.loss < 1": ["run4"],
            "params.lr != '0.1' and (tags.rank = 'a' or tags.rank = 'b')": ["run4", "run1"],
            "params.lr = '0.01' and metrics.acc > 0.9": ["run1"],  # run5: other experiment
            "metrics.loss >= 0 and not params.lr = '0.01'": ["run4", "run2"],  # NaN loss: out
            "tags.note LIKE 'a%' and tags.note != 'axb' and user = 'bob'": ["run2"],
        },
    )
    # Across experiments, and with a sort on another key.
    assert search(platform, "params.lr = '0.01' and metrics.acc > 0.9", ["metrics.acc"]) == [
        "run1",
        "run5",
    ]


def test_start_time_ties_break_on_id(platform: Platform) -> None:
    with platform.db.write() as session:
        exp = ExperimentRow(project_id=1, name="ties", created_at=0, updated_at=0)
        session.add(exp)
        session.flush()
        for run_id in ("c", "a", "b"):
            session.add(
                RunRow(
                    id=run_id,
                    experiment_id=exp.id,
                    name=run_id,
                    status="finished",
                    user="u",
                    start_time=7,
                )  # fmt: skip
            )
        session.flush()
        insert_latest_metrics(session, [("b", "m", 0, 0, 1.0)])
        exp_id = exp.id
    assert search(platform, None, experiment_id=exp_id) == ["a", "b", "c"]
    assert search(platform, None, ["metrics.m DESC"], experiment_id=exp_id) == ["b", "a", "c"]


def test_injection_attempts_are_just_values(platform: Platform) -> None:
    exp = seed(platform).main
    attempts = [
        "params.x = 'a'' OR 1=1 --'",
        "params.lr = '0.01'' OR ''1''=''1'",
        "tags.team = 'x''; DROP TABLE runs; --'",
        "params.`lr' OR '1'='1` = '0.01'",
        'params."lr"" OR 1=1 --" = \'0.01\'',
        "name LIKE '%'' OR 1=1 --'",
        "run_id IN ('x'') OR 1=1 --')",
    ]
    for attempt in attempts:
        assert search(platform, attempt, experiment_id=exp) == [], attempt
    assert search(platform, None, ["params.`lr' DESC; DROP TABLE runs; --`"], experiment_id=exp)
    with platform.db.read() as session:
        assert session.scalar(select(func.count()).select_from(RunRow)) == 5
        assert session.scalar(select(func.count()).select_from(ParamRow)) == 8


def test_values_and_keys_are_bound_never_inlined() -> None:
    stmt = build_search_query(
        select(RunRow.id),
        "params.`secret key` = 'secret value' and metrics.m > 12345 and status = 'zzz' "
        "and tags.t LIKE 'pat%'",
        ["metrics.`order key` DESC"],
    )
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        compiled = stmt.compile(dialect=dialect)
        sql = str(compiled)
        for literal in ("secret", "12345", "zzz", "pat", "order key"):
            assert literal not in sql
        assert set(compiled.params.values()) >= {
            "secret key",
            "secret value",
            12345,
            "zzz",
            "pat%",
            "order key",
        }


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        (
            "metrics.acc = 'high'",
            "filter: metrics.acc compares to numbers, got the string 'high' at position 12",
        ),
        ("metrics.acc IN (1, 'x')", "metrics.acc compares to numbers, got the string 'x'"),
        (
            "metrics.acc LIKE '1%'",
            "filter: LIKE does not apply to metrics.acc at position 12; it is a number",
        ),
        ("metrics.acc NOT ILIKE '1%'", "NOT ILIKE does not apply to metrics.acc"),
        (
            "params.lr > '0.01'",
            "filter: > does not apply to params.lr at position 10; it "
            "compares as a string: use =, !=, LIKE, ILIKE, IN, NOT IN, IS [NOT] NULL",
        ),
        ("tags.t <= 'a'", "<= does not apply to tags.t"),
        ("name < 'b'", "< does not apply to attributes.name"),
        (
            "start_time = 'yesterday'",
            "attributes.start_time compares to numbers, got the string 'yesterday'",
        ),
        ("start_time LIKE '1%'", "LIKE does not apply to attributes.start_time"),
        (
            "experiment_id = 'abc'",
            "attributes.experiment_id compares to numbers, got the string 'abc'",
        ),
        (
            "status IS NULL",
            "filter: IS NULL does not apply to attributes.status at position 7; it is never null",
        ),
        ("run_id IS NOT NULL", "IS NOT NULL does not apply to attributes.run_id"),
        (
            "params.p LIKE 'abc\\'",
            "filter: the LIKE pattern ends with a lone backslash at position 9",
        ),
        (
            "metrics.a > 1 and params.p ILIKE 'x\\\\\\'",
            "the ILIKE pattern ends with a lone backslash",
        ),
        ("metrics.acc > ", "filter: expected a value after '>' at position 14"),
        (
            "bogus = 1",
            "filter: unknown attribute 'bogus' at position 0; valid attributes: "
            "end_time, experiment_id, id, name, parent_run_id, run_id, run_name, start_time, "
            "status, user",
        ),
    ],
)
def test_bad_filters_raise_invalid_input(filter_string: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build_search_query(select(RunRow.id), filter_string, None)
    assert message in info.value.message


def test_bad_order_by_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"order_by\[1\]: unknown attribute 'nope'"):
        build_search_query(select(RunRow.id), None, ["metrics.acc", "nope DESC"])
    with pytest.raises(InvalidInput, match=r"order_by\[0\]: expected ASC, DESC"):
        build_search_query(select(RunRow.id), None, ["metrics.acc sideways"])
    with pytest.raises(InvalidInput, match=r"order_by\[0\]: expected a string"):
        build_search_query(select(RunRow.id), None, [5])  # type: ignore[list-item]


def test_a_bad_filter_changes_nothing(platform: Platform) -> None:
    exp = seed(platform).main
    with pytest.raises(InvalidInput):
        search(platform, "metrics.acc LIKE 'x'", experiment_id=exp)
    with platform.db.read() as session:
        assert session.scalar(select(func.count()).select_from(RunRow)) == 5
        assert session.scalar(select(func.count()).select_from(LatestMetricRow)) == 8


def _seed_long_values(platform: Platform) -> tuple[int, dict[str, str]]:
    """Runs whose param and tag values share their first VALUE_PREFIX characters, and
    values far longer than PostgreSQL's largest b-tree entry (2,704 bytes)."""
    head = "x" * VALUE_PREFIX
    values = {
        "a": head + "a",
        "b": head + "b",
        "huge_param": "p" * MAX_PARAM_VALUE_LENGTH,
        "huge_tag": "é" * 6_000,  # 12,000 bytes of UTF-8
    }
    with platform.db.write() as session:
        exp = ExperimentRow(project_id=1, name="long", created_at=0, updated_at=0)
        session.add(exp)
        session.flush()
        session.add_all(
            [
                RunRow(
                    id=f"r{i}",
                    experiment_id=exp.id,
                    name=f"r{i}",
                    status="finished",
                    user="u",
                    start_time=i,
                )
                for i in (1, 2, 3)
            ]  # fmt: skip
        )
        session.flush()
        session.add_all(
            [
                ParamRow(run_id="r1", key="v", value=values["a"]),
                ParamRow(run_id="r2", key="v", value=values["b"]),
                ParamRow(run_id="r3", key="v", value=values["huge_param"]),
                RunTagRow(run_id="r1", key="t", value=values["huge_tag"]),
                RunTagRow(run_id="r2", key="t", value=values["huge_tag"][:-1] + "e"),
                RunTagRow(run_id="r3", key="t", value=values["a"]),
            ]
        )
    return exp.id, values


def test_equality_on_values_longer_than_the_indexed_prefix(platform: Platform) -> None:
    """= and IN test the whole value, though PostgreSQL's (key, left(value, N)) index
    holds only its first characters."""
    exp, v = _seed_long_values(platform)
    head = "x" * VALUE_PREFIX
    check(
        platform,
        exp,
        {
            f"params.v = '{v['a']}'": ["r1"],
            f"params.v = '{v['b']}'": ["r2"],
            f"params.v = '{head}'": [],
            f"params.v IN ('{v['b']}', '{v['huge_param']}')": ["r3", "r2"],
            f"params.v IN ('{head}c', '{head}')": [],
            f"params.v != '{v['a']}'": ["r3", "r2"],
            f"params.v LIKE '{head}%'": ["r2", "r1"],
            f"tags.t = '{v['huge_tag']}'": ["r1"],
            f"tags.t IN ('{v['a']}', '{v['huge_tag'][:-1]}e')": ["r3", "r2"],
            f"NOT tags.t = '{v['huge_tag']}'": ["r3", "r2"],
        },
    )
    # The same tests where the key is also sorted by (they move into the sort's join).
    assert search(platform, f"params.v = '{v['b']}'", ["params.v"], exp) == ["r2"]
    assert search(platform, f"tags.t IN ('{v['a']}')", ["tags.t DESC"], exp) == ["r3"]


def test_postgresql_reaches_param_and_tag_equalities_through_their_prefix_index(
    platform: Platform,
) -> None:
    """On PostgreSQL a search's = and IN on a param or tag is answered from the
    (key, left(value, 100)) indexes of migration 0006 (it used to read every row of
    the table); SQLite, which has no such index, gets no prefix test."""
    with platform.db.write() as session:
        exp = ExperimentRow(project_id=1, name="many", created_at=0, updated_at=0)
        session.add(exp)
        session.flush()
        ids = [f"run{i:03d}" for i in range(400)]
        session.execute(
            insert(RunRow),
            [
                {
                    "id": i,
                    "experiment_id": exp.id,
                    "name": i,
                    "status": "finished",
                    "user": "u",
                    "start_time": 0,
                }
                for i in ids
            ],  # fmt: skip
        )
        session.execute(insert(ParamRow), [{"run_id": i, "key": "v", "value": i} for i in ids])
        session.execute(insert(RunTagRow), [{"run_id": i, "key": "t", "value": i} for i in ids])
    dialect = platform.db.engine.dialect
    cases = {
        "params.v = 'run007'": ("ix_params_key_value_prefix", ["run007"]),
        "tags.t IN ('run007', 'run300')": ("ix_run_tags_key_value_prefix", ["run300", "run007"]),
    }
    if dialect.name == "postgresql":
        with platform.db.write() as session:
            session.execute(text("ANALYZE runs, params, run_tags"))
    for filter_string, (index, found) in cases.items():
        stmt = build_search_query(
            select(RunRow.id).where(RunRow.experiment_id == exp.id), filter_string, None
        )
        sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        assert sorted(search(platform, filter_string, experiment_id=exp.id)) == sorted(found)
        if dialect.name != "postgresql":
            assert "left(" not in sql.lower()
            continue
        # A transaction (a write session), for SET LOCAL to last to the EXPLAIN: each
        # statement of a read session is a transaction of its own.
        with platform.db.write() as session:
            # 400 rows fit a few pages, which reading whole costs little: take that
            # path away, so that the plan shows which index is reached, and how.
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(session.scalars(text("EXPLAIN " + sql)))
        assert f" {index} " in plan, plan  # "Index Scan using ...", "Bitmap Index Scan on ..."
        # The index's condition has the prefix test, not the key alone.
        condition = plan.split(f" {index} ", 1)[1].split("Index Cond:", 1)[1]
        condition = condition.split("\n", 1)[0]
        assert '"left"(' in condition, f"{index}: {condition[:200]}"
