"""A version's files keep the order its manifest listed them in (an append's after its
parent's, in append order), whatever their names: through get_version, Arrow, pandas,
DuckDB and download, embedded over SQLite and remote over PostgreSQL. Migration 0014
numbers the files stored before it in path order, the order they were read in then."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import inspect, text
from tests.datasets.test_versions import parquet, publish, version_spec
from tests.db.test_migrations import _downgrade, empty_db  # noqa: F401 (a fixture)

from shipyard.client import Client
from shipyard.db import Database, upgrade


def ids(*values: int) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


def test_a_version_keeps_its_files_in_the_order_given(client: Client, tmp_path: Path) -> None:
    names = ["z.parquet", "a.parquet", "m-1.parquet", "m.parquet"]
    files = publish(client, *(parquet(tmp_path, name, ids(i)) for i, name in enumerate(names)))
    client.datasets.create("d")
    client.datasets.create_version("d", version_spec(files, ids()))
    assert [f.path for f in client.datasets.get_version("d").files] == names
    data = client.datasets.open("d")
    assert data.to_arrow()["id"].to_pylist() == [0, 1, 2, 3]
    assert data.to_pandas()["id"].tolist() == [0, 1, 2, 3]
    assert [row[0] for row in data.to_duckdb().fetchall()] == [0, 1, 2, 3]
    written = client.datasets.download("d", tmp_path / "out")
    assert [p.name for p in written] == names


def test_appends_are_read_after_their_parent_in_append_order(
    client: Client, tmp_path: Path
) -> None:
    """Appended files whose name is taken are renamed ``<name>-<hash>``, which sorts
    before the parent's: their rows still come after the parent's, in append order."""
    export = tmp_path / "sales.csv"
    days = [
        ["2024-01-01", "2024-01-02"],
        ["2024-01-03"],
        ["2024-01-04"],
        ["2024-01-05", "2024-01-06"],
    ]
    for i, chunk in enumerate(days):
        pa_csv.write_csv(pa.table({"day": chunk, "sales": [10 + len(c) for c in chunk]}), export)
        if i == 0:
            client.datasets.ingest("d", export)
        else:
            client.datasets.append("d", export)
    # DataFrames' parts are all named part-00000: renamed too.
    frame = pd.DataFrame({"day": [dt.date(2024, 1, 7)], "sales": [9]})
    client.datasets.append("d", frame)
    client.datasets.append("d", frame.assign(sales=8))
    every_day = [day for chunk in days for day in chunk] + ["2024-01-07"] * 2
    table = client.datasets.to_arrow("d")
    assert [str(day) for day in table["day"].to_pylist()] == every_day
    assert table["sales"].to_pylist()[-2:] == [9, 8]
    detail = client.datasets.get_version("d")
    assert detail.files[0].path == "sales-00000.parquet"
    assert [f.rows for f in detail.files] == [2, 1, 1, 2, 1, 1]


def test_existing_files_are_numbered_in_path_order(empty_db: Database) -> None:  # noqa: F811
    upgrade(empty_db, revision="0013")
    paths = {10: ["b.parquet", "a-1f3.parquet", "a.parquet", "a/b.parquet"], 11: ["x.parquet"]}
    with empty_db.write() as session:
        session.execute(
            text(
                "INSERT INTO datasets (id, project_id, name, description, expectations, "
                "created_by, created_at, updated_at) VALUES (1, 1, 'd', '', '{}', 'u', 0, 0)"
            )
        )
        session.execute(
            text(
                "INSERT INTO dataset_versions (id, dataset_id, version, kind, digest, message, "
                "source, created_by, created_at, rows, bytes, file_count, columns, "
                "arrow_schema) VALUES (:id, 1, :id, 'data', 'd', '', '', 'u', 0, 1, 1, 1, "
                "'[]', '')"
            ),
            [{"id": version} for version in paths],
        )
        session.execute(
            text(
                "INSERT INTO dataset_files (version_id, path, blob_hash, size, rows) "
                "VALUES (:v, :p, 'h', 1, 1)"
            ),
            [{"v": version, "p": p} for version, names in paths.items() for p in names],
        )
        # The order files were read in before: the database's own order of paths.
        before = {
            version: session.scalars(
                text("SELECT path FROM dataset_files WHERE version_id = :v ORDER BY path"),
                {"v": version},
            ).all()
            for version in paths
        }
    upgrade(empty_db)
    with empty_db.read() as session:
        after = {
            version: session.execute(
                text(
                    "SELECT position, path FROM dataset_files WHERE version_id = :v "
                    "ORDER BY position"
                ),
                {"v": version},
            ).all()
            for version in paths
        }
    assert after == {version: list(enumerate(before[version])) for version in paths}
    indexes = [i["name"] for i in inspect(empty_db.engine).get_indexes("dataset_files")]
    assert indexes == ["ix_dataset_files_blob_hash"]
    _downgrade(empty_db, "0013")
    columns = [c["name"] for c in inspect(empty_db.engine).get_columns("dataset_files")]
    assert columns == ["version_id", "path", "blob_hash", "size", "rows"]
    with empty_db.read() as session:
        assert session.scalar(text("SELECT count(*) FROM dataset_files")) == 5
