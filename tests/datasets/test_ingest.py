"""The ingest pipeline end to end through the SDK (``client.datasets.ingest / append``),
embedded over SQLite and a local blob folder, remote over real HTTP on PostgreSQL + S3:
every source kind, version numbering and profiles, re-versioning Parquet folders through
the stat cache, expectations under each policy, appends, and bad input that leaves
nothing behind (no version, no blob)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.conftest import (
    PG_ADMIN_URL,
    S3_BUCKET,
    S3_KEY,
    S3_REGION,
    S3_SECRET,
    backend_missing,
    stored_blobs_of,
)

from shipyard.blobs.store import s3_filesystem
from shipyard.client import Client
from shipyard.datasets.types import DatasetVersionDetail, ValidationReport
from shipyard.errors import Conflict, InvalidInput, NotFound, Unavailable, ValidationFailed

CITIES = ["oslo", "lima", "rome", "kyiv", "pune"]


def sample(rows: int, start: int = 0) -> pa.Table:
    """``rows`` rows: a unique int id, a double with a null every 10th row, a city."""
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "score": pa.array([None if i % 10 == 0 else i * 0.5 for i in ids], pa.float64()),
            "city": pa.array([CITIES[i % len(CITIES)] for i in ids], pa.string()),
        }
    )


def write_csv(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pa_csv.write_csv(table, path)
    return path


def write_parquet(path: Path, table: pa.Table) -> Path:
    """Uncompressed, plain-encoded: a file's size depends on its row count only, so a
    rewrite with other values of the same types has the very same size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="none", use_dictionary=False)
    return path


def ints(rows: int, start: int = 0) -> pa.Table:
    """Fixed-width columns only (see :func:`write_parquet`)."""
    return pa.table(
        {
            "id": pa.array(range(start, start + rows), pa.int64()),
            "x": pa.array([float(i) * 2 for i in range(start, start + rows)], pa.float64()),
        }
    )


def blobs(client: Client) -> set[str]:
    """The committed blobs of the client's store (local folder or S3)."""
    return {b.path for b in stored_blobs_of(client.settings)}


def numbers(client: Client, name: str) -> list[int]:
    return sorted(v.version for v in client.datasets.versions(name).versions)


def rows(client: Client, name: str, version: int | str = "latest") -> list[dict[str, Any]]:
    return client.datasets.to_arrow(name, version).to_pylist()


def by_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["id"])


def column(detail: DatasetVersionDetail, name: str) -> Any:
    assert detail.profile is not None
    return next(c for c in detail.profile.columns if c.name == name)


def report_of(err: ValidationFailed) -> ValidationReport:
    return ValidationReport.model_validate(err.details["report"])


def failed(report: ValidationReport) -> dict[str, int]:
    """kind -> failed rows, for the expectations that failed."""
    return {r.kind: r.failed_rows for r in report.results if not r.passed}


# --- sources -----------------------------------------------------------------------------


def test_csv_file_versions_profile_and_digest(client: Client, tmp_path: Path) -> None:
    table = sample(1200)
    path = write_csv(tmp_path / "sales.csv", table)
    v1 = client.datasets.ingest("sales", path, message="first")
    assert (v1.version, v1.kind, v1.rows, v1.message) == (1, "data", 1200, "first")
    assert v1.tags == ["latest"] and v1.validation is None
    assert v1.source == str(path.resolve())
    assert [f"{c.name}: {c.type}" for c in v1.columns] == [
        "id: int64",
        "score: double",
        "city: string",
    ]
    assert rows(client, "sales", 1) == table.to_pylist()

    detail = client.datasets.get_version("sales", 1)
    assert detail.profile is not None and detail.profile.rows == 1200
    assert sum(f.rows for f in detail.files) == 1200 and detail.file_count == len(detail.files)
    score = column(detail, "score")
    assert (score.nulls, score.count, score.min, score.max) == (120, 1080, 0.5, 599.5)
    ident = column(detail, "id")
    assert (ident.nulls, ident.min, ident.max, ident.kind) == (0, 0, 1199, "integer")
    city = column(detail, "city")
    assert (city.min, city.max, city.distinct) == ("kyiv", "rome", 5)

    # The same content again: the next number, the same digest; latest follows.
    v2 = client.datasets.ingest("sales", path)
    assert v2.version == 2 and v2.digest == v1.digest and v2.rows == 1200
    blobs_before_v3 = blobs(client)
    assert blobs_before_v3
    other = write_csv(tmp_path / "other" / "sales.csv", sample(1200, start=1))
    v3 = client.datasets.ingest("sales", other)
    assert v3.version == 3 and v3.digest != v1.digest
    assert client.datasets.get("sales").latest_version == 3
    assert client.datasets.get_version("sales").version == 3
    assert "latest" not in client.datasets.get_version("sales", 1).tags
    assert numbers(client, "sales") == [1, 2, 3]
    assert blobs(client) > blobs_before_v3  # the blob check sees this mode's store
    assert rows(client, "sales")[0] == {"id": 1, "score": 0.5, "city": "lima"}


def test_folder_of_csvs_gzip_and_json_lines(client: Client, tmp_path: Path) -> None:
    a, b = sample(700), sample(500, start=700)
    folder = tmp_path / "csvs"
    write_csv(folder / "a.csv", a)
    write_csv(folder / "sub" / "b.csv", b)
    (folder / "_SUCCESS").write_text("")  # a marker, skipped
    version = client.datasets.ingest("folder", folder)
    assert version.rows == 1200
    detail = client.datasets.get_version("folder")
    assert [(f.path, f.rows) for f in detail.files] == [
        ("a-00000.parquet", 700),
        ("sub/b-00000.parquet", 500),
    ]
    assert rows(client, "folder") == a.to_pylist() + b.to_pylist()

    # gzip-compressed CSV
    text = (tmp_path / "csvs" / "a.csv").read_bytes()
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(text))
    assert client.datasets.ingest("gz", gz).rows == 700
    assert rows(client, "gz") == a.to_pylist()
    assert [f.path for f in client.datasets.get_version("gz").files] == ["a-00000.parquet"]

    # JSON lines (a key left out is a null)
    records = [{"id": i, "name": f"n{i}", "w": i / 4} for i in range(300)]
    del records[7]["w"]
    lines = tmp_path / "records.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert client.datasets.ingest("jl", lines).rows == 300
    back = rows(client, "jl")
    assert back[7] == {"id": 7, "name": "n7", "w": None}
    assert back[:7] + back[8:] == records[:7] + records[8:]
    assert [c.type for c in client.datasets.get_version("jl").columns] == [
        "int64",
        "string",
        "double",
    ]


def test_parquet_folder_is_stored_byte_for_byte(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    originals = {
        "p0.parquet": write_parquet(folder / "p0.parquet", ints(300)),
        "p1.parquet": write_parquet(folder / "p1.parquet", ints(200, start=300)),
        "deep/p2.parquet": write_parquet(folder / "deep" / "p2.parquet", ints(100, start=500)),
    }
    version = client.datasets.ingest("pq", folder)
    assert (version.rows, version.file_count) == (600, 3)
    detail = client.datasets.get_version("pq")
    assert sorted(f.path for f in detail.files) == sorted(originals)
    assert {f.path: f.size for f in detail.files} == {
        n: p.stat().st_size for n, p in originals.items()
    }
    written = client.datasets.download("pq", tmp_path / "out")
    got = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in written}
    assert got == {n: p.read_bytes() for n, p in originals.items()}
    assert sorted(r["id"] for r in rows(client, "pq")) == list(range(600))
    x = column(detail, "x")
    assert (x.nulls, x.min, x.max) == (0, 0.0, 1198.0)
    assert detail.profile is not None and detail.profile.rows == 600


def test_dataframe_and_arrow_table(client: Client) -> None:
    labels, weights = [f"c{i % 3}" for i in range(400)], [i / 8 for i in range(400)]
    frame = pd.DataFrame({"id": range(400), "label": labels, "w": weights})
    v = client.datasets.ingest("frame", frame)
    assert v.rows == 400 and v.source == "DataFrame (400 rows)"
    # pandas' own string dtype (large_string) is stored as string, like a CSV's.
    assert [f"{c.name}: {c.type}" for c in v.columns] == ["id: int64", "label: string", "w: double"]
    back = client.datasets.to_pandas("frame")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["id"].tolist() == list(range(400))

    table = pa.table(
        {
            "k": pa.array(range(250), pa.int32()),
            "t": pa.array(
                [dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(250)],
                pa.timestamp("us"),
            ),
            "flag": pa.array([i % 2 == 0 for i in range(250)]),
        }
    )
    v = client.datasets.ingest("arrow", table)
    assert v.rows == 250
    assert client.datasets.to_arrow("arrow").equals(table)
    detail = client.datasets.get_version("arrow")
    t = column(detail, "t")
    assert (t.kind, t.min, t.max) == ("temporal", "2024-01-01T00:00:00", "2024-01-11T09:00:00")


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A uniquely named table of 900 rows in the PostgreSQL test database (dropped after)."""
    engine = sa.create_engine(PG_ADMIN_URL)
    name = f"ingest_src_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (id bigint PRIMARY KEY, amount numeric(10, 2), "
                "note text, at timestamptz)"
            )
            conn.exec_driver_sql(
                f"INSERT INTO {name} SELECT g, g * 1.25, CASE WHEN mod(g, 9) = 0 THEN NULL "  # noqa: S608
                "ELSE 'n' || g END, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' "
                "FROM generate_series(1, 900) AS g"
            )
    except sa.exc.OperationalError:
        engine.dispose()
        backend_missing("PostgreSQL on 127.0.0.1:5432")
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def test_sql_queries_on_postgres_and_sqlite(client: Client, tmp_path: Path, pg_table: str) -> None:
    query = f"SELECT id, amount, note, at FROM {pg_table} ORDER BY id"  # noqa: S608
    v = client.datasets.ingest("pgq", PG_ADMIN_URL, query=query)
    assert v.rows == 900
    assert v.source == "query on postgresql://127.0.0.1:5432/test"
    types = ["int64", "decimal128(10, 2)", "string", "timestamp[us, tz=UTC]"]
    assert [c.type for c in v.columns] == types
    back = rows(client, "pgq")
    assert [r["id"] for r in back] == list(range(1, 901))
    assert str(back[3]["amount"]) == "5.00" and back[8]["note"] is None
    note = column(client.datasets.get_version("pgq"), "note")
    assert note.nulls == 100

    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT, w REAL)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(i, f"s{i}", i / 2) for i in range(1, 601)]
        )
    v = client.datasets.ingest("liteq", f"sqlite:///{db}", query="SELECT * FROM t WHERE id > 100")
    assert v.rows == 500
    back = rows(client, "liteq")
    assert back[0] == {"id": 101, "name": "s101", "w": 50.5} and back[-1]["id"] == 600


def test_s3_url(client: Client, tmp_path: Path, s3_endpoint: str) -> None:
    s3_options = {
        "s3_endpoint_url": s3_endpoint,
        "s3_access_key_id": S3_KEY,
        "s3_secret_access_key": S3_SECRET,
        "s3_region": S3_REGION,
    }
    if client.settings.s3_endpoint_url:  # remote mode: the client already reaches S3
        reader = client
    else:
        # The embedded client's settings name no S3 endpoint (its blobs are local): the same
        # in-process app and blob folder, with settings that reach the test bucket.
        settings = client.settings.model_copy(update=s3_options)
        reader = Client(settings=settings, http=client.api.http)
    table = sample(800)
    local = write_csv(tmp_path / "s3.csv", table)
    prefix = f"{S3_BUCKET}/ingest-{uuid.uuid4().hex}"
    fs = s3_filesystem(client.settings.model_copy(update=s3_options))
    fs.pipe_file(f"{prefix}/one/data.csv", local.read_bytes())
    fs.pipe_file(f"{prefix}/many/a.csv", local.read_bytes())
    fs.pipe_file(f"{prefix}/many/b.csv", local.read_bytes())

    v = reader.datasets.ingest("s3one", f"s3://{prefix}/one/data.csv")
    assert v.rows == 800 and v.source == f"s3://{prefix}/one/data.csv"
    assert rows(client, "s3one") == table.to_pylist()
    v = reader.datasets.ingest("s3many", f"s3://{prefix}/many/")
    assert v.rows == 1600
    detail = client.datasets.get_version("s3many")
    assert [f.path for f in detail.files] == ["a-00000.parquet", "b-00000.parquet"]
    assert rows(client, "s3many") == table.to_pylist() * 2


# --- re-versioning a Parquet folder --------------------------------------------------------


def test_reversioning_a_parquet_folder(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    for i in range(4):
        write_parquet(folder / f"f{i}.parquet", ints(100, start=100 * i))
    v1 = client.datasets.ingest("d", folder)
    assert v1.rows == 400

    # Unchanged: the same digest.
    v2 = client.datasets.ingest("d", folder)
    assert v2.version == 2 and v2.digest == v1.digest

    # One file rewritten in place (same inode, same size, other values, later mtime).
    target = folder / "f1.parquet"
    before = target.stat()
    changed = ints(100, start=5000)
    write_parquet(target, changed)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))
    after = target.stat()
    assert after.st_size == before.st_size and after.st_ino == before.st_ino
    v3 = client.datasets.ingest("d", folder)
    assert v3.digest != v1.digest and v3.rows == 400
    ids = sorted(r["id"] for r in rows(client, "d"))
    assert ids == sorted([*range(100), *range(5000, 5100), *range(200, 400)])
    detail = client.datasets.get_version("d")
    stored = next(f for f in detail.files if f.path == "f1.parquet")
    written = client.datasets.download("d", tmp_path / "out")
    assert (tmp_path / "out" / "f1.parquet").read_bytes() == target.read_bytes()
    assert stored.size == after.st_size and len(written) == 4
    assert column(detail, "id").max == 5099  # the profile follows the new content

    # A file added, another removed: the file list follows.
    write_parquet(folder / "f9.parquet", ints(50, start=9000))
    (folder / "f0.parquet").unlink()
    v4 = client.datasets.ingest("d", folder)
    detail = client.datasets.get_version("d", v4.version)
    assert sorted(f.path for f in detail.files) == [f"f{i}.parquet" for i in (1, 2, 3, 9)]
    assert v4.rows == 350 and detail.profile is not None and detail.profile.rows == 350
    assert column(detail, "id").min == 200


def test_reversioning_publishes_only_what_changed(client: Client, tmp_path: Path) -> None:
    """Files the stat cache answers for are not claimed again; the changed one is."""
    folder = tmp_path / "data"
    for i in range(6):
        write_parquet(folder / f"f{i}.parquet", ints(100, start=100 * i))
    client.datasets.ingest("d", folder)
    write_parquet(folder / "f3.parquet", ints(100, start=7000))
    requests: list[tuple[str, int]] = []
    post = client.api.post

    def counting_post(path: str, body: Any = None, **kwargs: Any) -> Any:
        if path.endswith(("/claim-blobs", "/missing-blobs")):
            requests.append((path.rsplit("/", 1)[-1], len(body["hashes"])))
        return post(path, body, **kwargs)

    client.api.post = counting_post  # type: ignore[method-assign]
    try:
        v2 = client.datasets.ingest("d", folder)
    finally:
        del client.api.post
    asked = "claim-blobs" if client.embedded else "missing-blobs"
    # One request: the changed file and the version's new profile state.
    assert requests == [(asked, 2)]
    assert v2.rows == 600
    assert sorted(r["id"] for r in rows(client, "d"))[-100:] == list(range(7000, 7100))


def test_cached_files_another_project_holds_are_published(client: Client, tmp_path: Path) -> None:
    """The stat cache is shared by the projects of a home: files it knows from one
    project's ingest become the other project's blobs too, and a refused version's
    remembered files are stored once a version is made of them."""
    folder = tmp_path / "data"
    for i in range(3):
        write_parquet(folder / f"f{i}.parquet", ints(100, start=100 * i))
    client.datasets.ingest("d", folder)
    client.projects.create("other")
    v = client.datasets.ingest("d", folder, project="other")
    assert v.rows == 300
    got = client.datasets.download("d", tmp_path / "out", project="other")
    assert len(got) == 3
    assert (tmp_path / "out" / "f1.parquet").read_bytes() == (folder / "f1.parquet").read_bytes()

    # Refused first (the files are hashed and remembered, not stored), then accepted.
    dup = tmp_path / "dup"
    write_parquet(dup / "a.parquet", ints(100, start=10_000))
    write_parquet(dup / "b.parquet", ints(100, start=10_050))
    client.datasets.create("u", expectations=[{"kind": "unique", "columns": ["id"]}])
    with pytest.raises(ValidationFailed):
        client.datasets.ingest("u", dup)
    client.datasets.update("u", expectations=[])
    v = client.datasets.ingest("u", dup)
    assert v.rows == 200
    assert len(client.datasets.download("u", tmp_path / "out-u")) == 2


def test_stat_cache_never_gives_a_stale_hash(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    for i in range(3):
        write_parquet(folder / f"f{i}.parquet", ints(100, start=100 * i))
    v1 = client.datasets.ingest("d", folder)

    # Replaced by a new file (another inode) whose size and mtime are forced to the old ones.
    target = folder / "f2.parquet"
    old = target.stat()
    tmp = folder / ".f2.tmp"
    write_parquet(tmp, ints(100, start=7000))
    os.replace(tmp, target)
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = target.stat()
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert new.st_ino != old.st_ino

    v2 = client.datasets.ingest("d", folder)
    assert v2.digest != v1.digest, "the stat cache answered for a replaced file"
    ids = sorted(r["id"] for r in rows(client, "d"))
    assert ids == [*range(200), *range(7000, 7100)]
    assert column(client.datasets.get_version("d"), "id").max == 7099


def test_stat_cache_sees_an_in_place_rewrite_with_its_mtime_restored(
    client: Client, tmp_path: Path
) -> None:
    """Same inode, same size, mtime set back (``cp -p``, ``touch -r``, ``rsync -t``): only
    the change time, which no tool can set back, still tells."""
    folder = tmp_path / "data"
    for i in range(2):
        write_parquet(folder / f"f{i}.parquet", ints(100, start=100 * i))
    v1 = client.datasets.ingest("d", folder)
    target = folder / "f1.parquet"
    old = target.stat()
    write_parquet(target, ints(100, start=8000))
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = target.stat()
    assert (new.st_ino, new.st_size, new.st_mtime_ns) == (old.st_ino, old.st_size, old.st_mtime_ns)
    v2 = client.datasets.ingest("d", folder)
    assert v2.digest != v1.digest, (
        "BUG (datasets/statcache.py + ingest.py): the stat cache keys on (path, inode, size, "
        "mtime) only, so an in-place rewrite with its mtime restored gets the old hash and "
        "profile; add st_ctime_ns to FileStat and the cache key"
    )
    assert sorted(r["id"] for r in rows(client, "d")) == [*range(100), *range(8000, 8100)]


# --- expectations and policies -------------------------------------------------------------


ROW_CHECKS: list[dict[str, Any]] = [
    {"kind": "not_null", "column": "score"},  # every 10th row is null: 30 of 300
    {"kind": "range", "column": "id", "min": 0, "max": 289},  # 290..299: 10
    {"kind": "allowed_values", "column": "city", "values": CITIES[:4]},  # "pune": 60
    {"kind": "regex", "column": "city", "pattern": "^[a-o]"},  # rome, pune: 120
    {"kind": "sql", "predicate": "id % 50 <> 7"},  # 7, 57, ...: 6
]
ROW_FAILS = {"not_null": 30, "range": 10, "allowed_values": 60, "regex": 120, "sql": 6}


def test_reject_reports_and_leaves_nothing(client: Client, tmp_path: Path) -> None:
    client.datasets.ingest("d", write_csv(tmp_path / "good.csv", sample(100, start=1)))
    client.datasets.update("d", expectations=ROW_CHECKS, policy="reject")
    before = blobs(client)
    bad = write_csv(tmp_path / "bad.csv", sample(300))
    with pytest.raises(ValidationFailed) as caught:
        client.datasets.ingest("d", bad)
    report = report_of(caught.value)
    assert not report.passed and report.policy == "reject" and report.rows_checked == 300
    assert failed(report) == ROW_FAILS
    by_kind = {r.kind: r for r in report.results}
    assert by_kind["not_null"].samples[0]["score"] is None
    assert by_kind["not_null"].samples[0]["id"] == 0
    assert all(s["id"] > 289 for s in by_kind["range"].samples)
    assert all(s["city"] == "pune" for s in by_kind["allowed_values"].samples)
    assert by_kind["sql"].samples[0]["id"] == 7
    assert all(r.message for r in report.results if not r.passed)
    assert "no version was made" in caught.value.message

    assert numbers(client, "d") == [1]
    assert blobs(client) == before, "a rejected ingest left blobs behind"

    # The same suite passes on clean rows: a version with a passing report.
    ok = [i for i in range(1, 290) if i % 10 and i % 50 != 7]
    clean = pa.table({"id": ok, "score": [i / 2 for i in ok], "city": ["oslo"] * len(ok)})
    v = client.datasets.ingest("d", write_csv(tmp_path / "clean.csv", clean))
    assert v.validation is not None and v.validation.passed and v.rows == len(ok)
    assert [r.passed for r in v.validation.results] == [True] * 5


def test_a_new_dataset_whose_first_version_is_refused_is_not_made(
    client: Client, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "a.csv", ints(5))
    client.datasets.ingest("raw", source)
    with pytest.raises(InvalidInput, match="invalid tag"):
        client.datasets.ingest("tagged", source, tags=["1bad"])
    with pytest.raises(NotFound, match="no version 7"):
        client.datasets.ingest("derived", source, parents=["raw@7"])
    with pytest.raises(NotFound, match=r"written dataset@version, e.g. raw@latest"):
        client.datasets.ingest("derived", source, parents=["raw"])
    assert [d.name for d in client.datasets.list().datasets] == ["raw"]
    events = [e.action for e in client.audit.list()]
    assert events.count("datasets.create") == 1
    # The same ingests, done right, make the dataset with its version.
    v = client.datasets.ingest("derived", source, parents=["raw@latest"], tags=["prod"])
    assert v.version == 1 and "prod" in v.tags
    assert client.datasets.lineage("derived", 1).parents[0].dataset == "raw"


def test_concurrent_first_ingests_make_one_dataset(client: Client, tmp_path: Path) -> None:
    sources = [write_csv(tmp_path / f"{i}.csv", ints(5, start=10 * i)) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda path: client.datasets.ingest("new", path), sources))
    assert sorted(v.version for v in made) == [1, 2, 3, 4]
    assert [d.name for d in client.datasets.list().datasets] == ["new"]
    assert [e.action for e in client.audit.list()].count("datasets.create") == 1


def test_a_suite_that_cannot_run_on_the_latest_version_is_refused(
    client: Client, tmp_path: Path
) -> None:
    client.datasets.ingest("d", write_csv(tmp_path / "a.csv", ints(5)))
    for predicate, problem in (
        ("1", "boolean"),
        ("len(getenv('HOME')) > 0", "cannot run"),
        ("nope > 1", "cannot run"),
    ):
        with pytest.raises(InvalidInput, match=problem):
            client.datasets.update("d", expectations=[{"kind": "sql", "predicate": predicate}])
    assert client.datasets.get("d").expectations.expectations == []
    ok = client.datasets.update("d", expectations=[{"kind": "sql", "predicate": "id >= 0"}])
    assert len(ok.expectations.expectations) == 1


def test_reject_on_a_parquet_folder_leaves_no_blob(client: Client, tmp_path: Path) -> None:
    """Parquet files are not stored before a whole-version check has passed."""
    folder = tmp_path / "pq"
    write_parquet(folder / "a.parquet", ints(100))
    write_parquet(folder / "b.parquet", ints(100, start=50))  # ids 50..99 twice
    client.datasets.create("d", expectations=[{"kind": "unique", "columns": ["id"]}])
    before = blobs(client)
    with pytest.raises(ValidationFailed) as caught:
        client.datasets.ingest("d", folder)
    [result] = report_of(caught.value).results
    assert (result.kind, result.passed, result.failed_rows) == ("unique", False, 100)
    assert {s["count"] for s in result.samples} == {2}
    assert numbers(client, "d") == []
    assert blobs(client) == before


def test_warn_makes_the_version_with_the_report(client: Client, tmp_path: Path) -> None:
    client.datasets.create("d", expectations=ROW_CHECKS, policy="warn")
    v = client.datasets.ingest("d", write_csv(tmp_path / "bad.csv", sample(300)))
    assert v.version == 1 and v.rows == 300
    assert v.validation is not None and not v.validation.passed
    assert v.validation.policy == "warn" and v.validation.quarantined_rows == 0
    assert failed(v.validation) == ROW_FAILS
    stored = client.datasets.get_version("d", 1).validation
    assert stored is not None and failed(stored) == ROW_FAILS
    assert rows(client, "d") == sample(300).to_pylist()


def test_quarantine_splits_bad_rows_into_a_linked_version(client: Client, tmp_path: Path) -> None:
    client.datasets.create("d", expectations=ROW_CHECKS[:2], policy="quarantine")  # not_null, range
    table = sample(300)
    v = client.datasets.ingest("d", write_csv(tmp_path / "in.csv", table))
    all_rows = table.to_pylist()
    good = [r for r in all_rows if r["score"] is not None and r["id"] <= 289]
    bad = [r for r in all_rows if not (r["score"] is not None and r["id"] <= 289)]
    assert len(bad) == 39  # 30 nulls + ids 290..299, of which 290 is both
    assert (v.version, v.kind, v.rows) == (1, "data", 261)
    assert v.validation is not None and v.validation.quarantined_rows == 39
    assert failed(v.validation) == {"not_null": 30, "range": 10}
    assert rows(client, "d", 1) == good

    quarantine = client.datasets.get_version("d", 2)
    assert (quarantine.kind, quarantine.rows) == ("quarantine", 39)
    assert rows(client, "d", 2) == bad
    assert quarantine.profile is not None and quarantine.profile.rows == 39
    assert client.datasets.get("d").latest_version == 1
    assert client.datasets.get_version("d").version == 1
    lineage = client.datasets.lineage("d", 2)
    assert [(p.dataset, p.version, p.relation) for p in lineage.parents] == [("d", 1, "quarantine")]
    data = client.datasets.get_version("d", 1)
    assert data.profile is not None and data.profile.rows == 261
    assert column(data, "score").nulls == 0

    # A whole-version failure still refuses under quarantine.
    client.datasets.update("d", expectations=[ROW_CHECKS[0], {"kind": "row_count", "min": 1000}])
    before = blobs(client)
    with pytest.raises(ValidationFailed) as caught:
        client.datasets.ingest("d", tmp_path / "in.csv")
    report = report_of(caught.value)
    assert report.policy == "quarantine" and failed(report) == {"not_null": 30, "row_count": 0}
    assert numbers(client, "d") == [1, 2]
    assert blobs(client) == before


def test_whole_version_kinds(client: Client) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    n = 400
    table = pa.table(
        {
            "id": pa.array([i if i != 399 else 3 for i in range(n)], pa.int64()),  # 3 twice
            "label": pa.array(["a"] * 360 + ["b"] * 40),  # b: 10%
            "at": pa.array(
                [now - dt.timedelta(days=30, minutes=i) for i in range(n)], pa.timestamp("us")
            ),
        }
    )
    cases: list[tuple[dict[str, Any], dict[str, Any], int]] = [
        ({"kind": "unique", "columns": ["id"]}, {"kind": "unique", "columns": ["label", "id"]}, 2),
        ({"kind": "row_count", "min": 500}, {"kind": "row_count", "min": 400, "max": 400}, 0),
        (
            {"kind": "freshness", "column": "at", "max_age_seconds": 86400},
            {"kind": "freshness", "column": "at", "max_age_seconds": 40 * 86400},
            0,
        ),
        (
            {"kind": "class_balance", "column": "label", "min_fraction": 0.2},
            {"kind": "class_balance", "column": "label", "min_fraction": 0.05, "max_ratio": 10},
            0,
        ),
        (
            {"kind": "schema", "columns": {"id": "integer", "label": "int64"}},
            {"kind": "schema", "columns": {"id": "int64", "label": "string", "at": "temporal"}},
            0,
        ),
    ]
    client.datasets.create("d")
    made = 0
    for failing, passing, failed_rows in cases:
        kind = failing["kind"]
        client.datasets.update("d", expectations=[failing], policy="quarantine")
        with pytest.raises(ValidationFailed) as caught:
            client.datasets.ingest("d", table)
        [result] = report_of(caught.value).results
        assert (result.kind, result.passed, result.failed_rows) == (kind, False, failed_rows)
        assert result.message, kind
        assert numbers(client, "d") == list(range(1, made + 1)), kind

        client.datasets.update("d", expectations=[passing], policy="reject")
        v = client.datasets.ingest("d", table)
        made += 1
        assert v.version == made and v.validation is not None and v.validation.passed, kind
    assert numbers(client, "d") == [1, 2, 3, 4, 5]


# --- append --------------------------------------------------------------------------------


def test_append_keeps_the_parents_files(client: Client, tmp_path: Path) -> None:
    first, second = sample(600), sample(400, start=600)
    v1 = client.datasets.ingest("d", write_csv(tmp_path / "one" / "data.csv", first))
    parent = client.datasets.get_version("d", 1)
    v2 = client.datasets.append("d", write_csv(tmp_path / "two" / "data.csv", second))
    assert (v2.version, v2.rows) == (2, 1000)
    detail = client.datasets.get_version("d", 2)
    # The parent's files first, then the appended one, whatever their names.
    assert detail.files[: len(parent.files)] == parent.files
    new = detail.files[len(parent.files) :]
    assert len(new) == 1 and new[0].rows == 400
    assert new[0].path != parent.files[0].path  # the clashing name took the hash
    assert rows(client, "d") == first.to_pylist() + second.to_pylist()
    assert detail.profile is not None and detail.profile.rows == 1000
    score = column(detail, "score")
    assert (score.nulls, score.min, score.max) == (100, 0.5, 499.5)
    lineage = client.datasets.lineage("d", 2)
    assert [(p.version, p.relation) for p in lineage.parents] == [(1, "append")]
    assert v1.digest != v2.digest

    # A DataFrame appended to the CSV-made version: int64 stays int64, str -> string.
    frame = pd.DataFrame(
        {"id": [1000, 1001], "score": [1.5, None], "city": pd.array(["oslo", "rome"], "string")}
    )
    v3 = client.datasets.append("d", frame)
    assert v3.rows == 1002 and [c.type for c in v3.columns] == ["int64", "double", "string"]
    # An Arrow table with narrower ints and large strings is cast to the parent's types.
    narrow = pa.table(
        {
            "id": pa.array([2000], pa.int32()),
            "score": pa.array([2.0], pa.float64()),
            "city": pa.array(["lima"], pa.large_string()),
        }
    )
    v4 = client.datasets.append("d", narrow)
    assert v4.rows == 1003 and [c.type for c in v4.columns] == ["int64", "double", "string"]
    tail = [r for r in by_id(rows(client, "d")) if r["id"] >= 1000]
    assert tail == [
        {"id": 1000, "score": 1.5, "city": "oslo"},
        {"id": 1001, "score": None, "city": "rome"},
        {"id": 2000, "score": 2.0, "city": "lima"},
    ]
    detail = client.datasets.get_version("d", 4)
    assert detail.profile is not None and detail.profile.rows == 1003
    assert column(detail, "id").max == 2000


def test_append_parquet_folder_adds_its_files(client: Client, tmp_path: Path) -> None:
    write_parquet(tmp_path / "a" / "p0.parquet", ints(100))
    write_parquet(tmp_path / "b" / "p1.parquet", ints(50, start=100))
    client.datasets.ingest("d", tmp_path / "a")
    v2 = client.datasets.append("d", tmp_path / "b")
    detail = client.datasets.get_version("d", v2.version)
    assert [(f.path, f.rows) for f in detail.files] == [("p0.parquet", 100), ("p1.parquet", 50)]
    assert detail.profile is not None and detail.profile.rows == 150
    assert sorted(r["id"] for r in rows(client, "d")) == list(range(150))


def test_append_of_identical_content_keeps_rows_and_profile_consistent(
    client: Client, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "data.csv", sample(200))
    client.datasets.ingest("d", path)
    v2 = client.datasets.append("d", path)
    detail = client.datasets.get_version("d", v2.version)
    assert detail.profile is not None
    assert detail.profile.rows == v2.rows == sum(f.rows for f in detail.files), (
        "BUG (datasets/ingest.py _record/_rename_clashes): appending rows whose staged part "
        "has the same name and hash as a parent's file drops the file from the version but "
        "still merges its profile, so profile.rows != version rows"
    )
    assert v2.rows == 400, "appended rows were silently dropped (same name + hash as a parent file)"


def test_append_schema_conflicts_make_no_version(client: Client, tmp_path: Path) -> None:
    client.datasets.ingest("d", write_csv(tmp_path / "data.csv", sample(100)))
    before = blobs(client)
    missing = pd.DataFrame({"id": [1], "score": [1.0]})
    with pytest.raises(Conflict) as caught:
        client.datasets.append("d", missing)
    assert "schema conflict" in caught.value.message
    assert caught.value.message.endswith(": missing city")  # it says which columns
    text_in_int = pa.table({"id": ["seven"], "score": pa.array([1.0]), "city": pa.array(["oslo"])})
    with pytest.raises(Conflict, match=r"type of id int64 -> string"):
        client.datasets.append("d", text_in_int)
    renamed = write_csv(
        tmp_path / "renamed.csv", sample(10).rename_columns(["id", "score", "town"])
    )
    with pytest.raises(Conflict):
        client.datasets.append("d", renamed)
    assert numbers(client, "d") == [1]
    assert blobs(client) == before


def test_append_unique_over_old_and_new_rows(client: Client, tmp_path: Path) -> None:
    client.datasets.create("d", expectations=[{"kind": "unique", "columns": ["id"]}])
    client.datasets.ingest("d", write_csv(tmp_path / "one.csv", sample(300)))
    before = blobs(client)
    # New rows are unique among themselves; id 299 is already in the parent.
    with pytest.raises(ValidationFailed) as caught:
        client.datasets.append("d", write_csv(tmp_path / "two.csv", sample(100, start=299)))
    [result] = report_of(caught.value).results
    assert (result.kind, result.failed_rows) == ("unique", 2)
    assert result.samples == [{"key": {"id": 299}, "count": 2}]
    assert numbers(client, "d") == [1]
    assert blobs(client) == before
    v = client.datasets.append("d", write_csv(tmp_path / "three.csv", sample(100, start=300)))
    assert v.rows == 400 and v.validation is not None and v.validation.passed


# --- bad input -----------------------------------------------------------------------------


def _bad_inputs(tmp: Path) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(source, extra ingest arguments, texts the message must hold)."""
    tmp.mkdir()
    lines = ["a,b,c"] + [f"{i},{i},{i}" for i in range(3)] + ["4,4"] + ["5,5,5"]
    malformed = tmp / "malformed.csv"
    malformed.write_text("\n".join(lines) + "\n")

    # Column 3 is inferred int64 from the first file (a CSV's types come from its first
    # block, 16 MiB, so within one small file a text value would just make it a string);
    # the second file holds text there on its row 1000.
    folder = tmp / "typed"
    folder.mkdir()
    good = "a,b,c\n" + "".join(f"{i},x{i},{i}\n" for i in range(1200))
    (folder / "1.csv").write_text(good)
    # Data row 999: row 1000 counting the header.
    later = "".join(f"{i},x{i},{'oops' if i == 998 else i}\n" for i in range(1200))
    (folder / "2.csv").write_text("a,b,c\n" + later)

    empty = tmp / "empty"
    empty.mkdir()
    (tmp / "data.xml").write_text("<a/>")
    ok = tmp / "ok.csv"
    ok.write_text("a\n1\n")
    return [
        (str(malformed), {}, ("malformed.csv", "row 5", "3 columns")),
        (str(folder), {}, ("2.csv", "row 1000", "'oops'", "int64")),
        (str(empty), {}, (str(empty), "no data files")),
        (str(tmp / "nowhere.csv"), {}, ("nowhere.csv",)),
        (str(tmp / "data.xml"), {}, ("data.xml", "unsupported file type")),
        (str(ok), {"format": "xml"}, ("unknown format 'xml'",)),
        (str(ok), {"query": "SELECT 1"}, ("query=",)),
        (PG_ADMIN_URL, {}, ("query=",)),
    ]


def test_bad_input_leaves_nothing_behind(client: Client, tmp_path: Path) -> None:
    client.datasets.ingest("d", write_csv(tmp_path / "data.csv", sample(50)))
    before = blobs(client)
    messages = {}
    for source, extra, needles in _bad_inputs(tmp_path / "bad"):
        with pytest.raises(InvalidInput) as caught:
            client.datasets.ingest("d", source, **extra)
        message = messages[needles[0]] = caught.value.message
        assert all(n in message for n in needles), (needles, message)
        assert numbers(client, "d") == [1], source
        assert blobs(client) == before, source
    message = messages["2.csv"]
    assert "column 'c'" in message, (
        "BUG (datasets/file_source.py _csv_batches): pyarrow's open_csv converts the first "
        "block before `names` is filled, so an error there names the column by position: "
        f"{message!r}"
    )


def test_failed_first_ingest_creates_no_dataset(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        client.datasets.ingest("fresh", tmp_path / "nowhere.csv")
    assert [d.name for d in client.datasets.list().datasets] == []
    # Nor does a rejected one: a new dataset has no expectations, but an append to a
    # name that does not exist yet is a first version like any other.
    with pytest.raises(InvalidInput):
        client.datasets.append("fresh", pd.DataFrame({"a": [1, "x"]}))
    assert client.datasets.list().datasets == []
    v = client.datasets.append("fresh", pd.DataFrame({"a": [1, 2]}))
    assert (v.version, v.rows) == (1, 2)
    assert client.datasets.lineage("fresh", 1).parents == []


def test_unreadable_parquet_file_leaves_nothing_behind(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    write_parquet(folder / "a.parquet", ints(2000))
    broken = write_parquet(folder / "b.parquet", ints(2000, start=2000))
    data = bytearray(broken.read_bytes())
    data[4:2000] = b"\xff" * 1996  # the first data page; the footer stays readable
    broken.write_bytes(bytes(data))
    client.datasets.ingest("d", write_csv(tmp_path / "data.csv", sample(10)))
    before = blobs(client)
    with pytest.raises(InvalidInput) as caught:
        client.datasets.ingest("d", folder)
    assert numbers(client, "d") == [1]
    assert blobs(client) == before, (
        "BUG (datasets/ingest.py _take_parquet): embedded mode stores each Parquet file "
        "before profiling it, so a folder with an unreadable file leaves blobs behind"
    )
    assert "b.parquet" in caught.value.message, (
        "BUG (datasets/profiles.py profile_parquet / ingest.py _take_parquet): the error "
        f"does not name the file: {caught.value.message!r}"
    )


# --- progress ------------------------------------------------------------------------------


def test_progress_bar_goes_to_stderr(
    client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "data.csv", sample(2000))
    v = client.datasets.ingest("d", path, progress=True)
    assert v.rows == 2000
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "expectation",
    [
        {"kind": "allowed_values", "column": "id", "values": [1, 2**64]},
        {"kind": "allowed_values", "column": "id", "values": [-(2**63) - 1]},
        {"kind": "row_count", "max": 2**63},
    ],
)
def test_ints_wider_than_64_bits_in_expectations_are_refused(
    client: Client, expectation: dict[str, Any]
) -> None:
    # The SDK refuses them before sending (its JSON encoder has no room for them) ...
    with pytest.raises(ValueError, match="64-bit|less than"):
        client.datasets.create("wide", expectations=[expectation])
    # ... and the server answers a raw request that carries one with a clear 4xx.
    body = json.dumps({"name": "wide", "expectations": {"expectations": [expectation]}})
    reply = client.api.http.post(
        f"/api/v1/projects/{client.project or 'default'}/datasets",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert 400 <= reply.status_code < 500, reply.text
    assert "64-bit" in reply.text or "less than" in reply.text
    with pytest.raises(NotFound):
        client.datasets.get("wide")


# --- quarantine of what cannot be judged row by row ----------------------------------------


def test_quarantine_refuses_a_row_check_on_a_missing_column(client: Client, tmp_path: Path) -> None:
    """Under quarantine, a row-level expectation whose column is missing judged no row:
    none is known good, so the version fails as a whole, with its report, as a failed
    whole-version check does; nothing is left behind."""
    source = write_csv(tmp_path / "in.csv", sample(50))  # id, score, city: no customer_id
    client.datasets.create("d", expectations=ROW_CHECKS[:1], policy="quarantine")
    client.datasets.ingest("d", source)  # not_null(score): 5 rows moved aside
    assert numbers(client, "d") == [1, 2]
    before = blobs(client)
    for missing in (
        {"kind": "not_null", "column": "customer_id"},
        {"kind": "range", "column": "customer_id", "min": 0},
        {"kind": "allowed_values", "column": "customer_id", "values": [1]},
        {"kind": "regex", "column": "customer_id", "pattern": "^c"},
    ):
        client.datasets.update("d", expectations=[ROW_CHECKS[0], missing])
        with pytest.raises(ValidationFailed, match="no version was made") as caught:
            client.datasets.ingest("d", source)
        report = report_of(caught.value)
        assert report.policy == "quarantine" and not report.passed
        assert failed(report) == {"not_null": 5} | {missing["kind"]: 0}
        assert report.results[1].message == "column 'customer_id' does not exist"
        assert numbers(client, "d") == [1, 2], missing["kind"]
        assert blobs(client) == before, missing["kind"]


@pytest.mark.parametrize("failure", ["full disk", "file gone", "interrupted"])
def test_a_parquet_folder_that_fails_midway_leaves_nothing_behind(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Files stored as they are were put into the store as each was taken: a failure
    after some (a full disk, a file removed meanwhile, Ctrl-C) left them there, claimed
    by nothing. They are staged until every file is taken, and dropped on a failure."""
    from shipyard.datasets.transfer import Transfer

    folder = tmp_path / "pq"
    for i in range(6):
        write_parquet(folder / f"f{i}.parquet", ints(2000, start=2000 * i))
    client.datasets.ingest("d", write_csv(tmp_path / "data.csv", sample(10)))
    before = blobs(client)
    stage, calls = Transfer.stage, []

    def stage_then_fail(self: Transfer, path: Path) -> Any:
        calls.append(path)
        if len(calls) == 4:
            if failure == "full disk":
                raise OSError(28, "No space left on device", str(path))
            if failure == "interrupted":
                raise KeyboardInterrupt
            path.unlink()  # "file gone": removed by another program meanwhile
        return stage(self, path)

    monkeypatch.setattr(Transfer, "stage", stage_then_fail)
    expected = {"full disk": Unavailable, "file gone": InvalidInput}.get(failure, KeyboardInterrupt)
    with pytest.raises(expected):
        client.datasets.ingest("d", folder)
    assert numbers(client, "d") == [1]
    assert blobs(client) == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tags": ["bad tag"]}, InvalidInput),
        ({"parents": ["nosuch@1"]}, NotFound),
        ({"parents": ["d@9"]}, NotFound),
    ],
)
def test_a_bad_tag_or_parent_is_refused_before_any_data_is_stored(
    client: Client, tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Checked only when the version was recorded, they left the converted data stored
    and claimed by the project."""
    client.datasets.ingest("d", write_csv(tmp_path / "a.csv", sample(10)))
    before = blobs(client)
    with pytest.raises(error):
        client.datasets.ingest("d", write_csv(tmp_path / "b.csv", sample(10, start=10)), **kwargs)
    assert numbers(client, "d") == [1]
    assert blobs(client) == before
