"""Datasets and versions through the SDK, embedded over SQLite and remote over
PostgreSQL + S3: files published by hash, manifests, tags, lineage, refusals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.client import Client
from shipyard.datasets.schema import columns_of
from shipyard.datasets.transfer import Transfer
from shipyard.datasets.types import DataFile, VersionCreate
from shipyard.errors import Conflict, InvalidInput, NotFound


def parquet(tmp: Path, name: str, table: pa.Table) -> Path:
    path = tmp / name
    pq.write_table(table, path)
    return path


def publish(client: Client, *paths: Path) -> list[DataFile]:
    """Store files for the client's project the way ingest does, and describe them."""
    transfer = Transfer(client, client.project)
    files = []
    for path in paths:
        blob = transfer.put(path)
        transfer.publish({blob.hash: path})
        rows = pq.read_metadata(path).num_rows
        files.append(DataFile(path=path.name, hash=blob.hash, size=blob.size, rows=rows))
    return files


TABLE = pa.table({"id": [1, 2, 3], "x": [0.5, 1.5, None]})


def version_spec(files: list[DataFile], table: pa.Table = TABLE, **extra: object) -> VersionCreate:
    return VersionCreate(files=files, columns=columns_of(table.schema), **extra)  # type: ignore[arg-type]


def test_dataset_lifecycle(client: Client, tmp_path: Path) -> None:
    created = client.datasets.create("churn", description="customers")
    assert created.latest_version is None and created.tags == {}
    with pytest.raises(Conflict):
        client.datasets.create("churn")
    for bad in ("", "a b", "x/y", "-lead", "name@1"):
        with pytest.raises(InvalidInput):
            client.datasets.create(bad)
    assert [d.name for d in client.datasets.list().datasets] == ["churn"]

    files = publish(client, parquet(tmp_path, "a.parquet", TABLE))
    v1 = client.datasets.create_version("churn", version_spec(files, message="first"))
    assert (v1.version, v1.rows, v1.file_count, v1.tags) == (1, 3, 1, ["latest"])
    assert v1.bytes == files[0].size and v1.created_by

    # Same files again: a new number, the same digest.
    v2 = client.datasets.create_version("churn", version_spec(files, tags=["prod"]))
    assert v2.version == 2 and v2.digest == v1.digest
    assert client.datasets.get("churn").tags == {"latest": 2, "prod": 2}

    client.datasets.set_tag("churn", "prod", 1)
    assert client.datasets.get_version("churn", "prod").version == 1
    assert client.datasets.get_version("churn").version == 2
    detail = client.datasets.get_version("churn", 1)
    assert detail.files == files and [c.name for c in detail.columns] == ["id", "x"]
    assert detail.tags == ["prod"]
    client.datasets.delete_tag("churn", "prod")
    with pytest.raises(NotFound):
        client.datasets.get_version("churn", "prod")
    with pytest.raises(NotFound):
        client.datasets.delete_tag("churn", "prod")
    with pytest.raises(InvalidInput):
        client.datasets.set_tag("churn", "latest", 1)  # moves by itself
    with pytest.raises(InvalidInput):
        client.datasets.set_tag("churn", "7up", 1)  # could read as a number
    with pytest.raises(NotFound):
        client.datasets.get_version("churn", 9)

    page = client.datasets.versions("churn", max_results=1)
    assert [v.version for v in page.versions] == [2] and page.next_page_token
    rest = client.datasets.versions("churn", page_token=page.next_page_token)
    assert [v.version for v in rest.versions] == [1]

    client.datasets.delete("churn")
    with pytest.raises(NotFound):
        client.datasets.get("churn")


def test_refused_versions_change_nothing(client: Client, tmp_path: Path) -> None:
    client.datasets.create("d")
    files = publish(client, parquet(tmp_path, "a.parquet", TABLE))
    unknown = DataFile(path="b.parquet", hash="ab" * 32, size=10, rows=1)
    bad_specs = [
        version_spec([]),
        version_spec(files + [unknown]),
        version_spec([files[0].model_copy(update={"size": files[0].size + 1})]),
        version_spec([files[0].model_copy(update={"path": "../escape.parquet"})]),
        version_spec([files[0], files[0]]),
        version_spec(files, tags=["latest"]),
        version_spec(files, parents=[5]),
        VersionCreate(files=files, columns=[]),
    ]
    for spec in bad_specs:
        with pytest.raises((InvalidInput, NotFound)):
            client.datasets.create_version("d", spec)
    assert client.datasets.versions("d").versions == []
    with pytest.raises(NotFound):
        client.datasets.create_version("nope", version_spec(files))


def test_uploads_are_checked_and_scoped_to_the_project(client: Client, tmp_path: Path) -> None:
    path = parquet(tmp_path, "a.parquet", TABLE)
    transfer = Transfer(client, "default")
    blob = transfer.put(path)
    api = client.api
    # A body that is not the announced content is refused.
    with pytest.raises(InvalidInput):
        api.upload(f"/projects/default/dataset-blobs/{'cd' * 32}", [b"other bytes"])
    # Over the network a client cannot claim a blob it did not upload.
    if not client.embedded:
        with pytest.raises(InvalidInput):
            api.post("/projects/default/datasets/-/claim-blobs", {"hashes": [blob.hash]})
    missing = api.post("/projects/default/datasets/-/missing-blobs", {"hashes": [blob.hash]})
    assert missing["missing"] == [blob.hash]
    transfer.publish({blob.hash: path})
    if client.embedded:  # an in-process claim is a change like an upload: audited
        assert [e.details for e in client.audit.list(action="datasets.claim_blobs")] == [
            {"blobs": 1}
        ]
        # A blob the project holds already is not claimed (nor audited) again.
        transfer.publish({blob.hash: path})
        assert len(list(client.audit.list(action="datasets.claim_blobs"))) == 1
    assert api.post("/projects/default/datasets/-/missing-blobs", {"hashes": [blob.hash]}) == {
        "missing": []
    }
    # Another project does not see this project's blob as its own.
    client.projects.create("other")
    assert api.post("/projects/other/datasets/-/missing-blobs", {"hashes": [blob.hash]}) == {
        "missing": [blob.hash]
    }
    with pytest.raises(NotFound):
        api.get(f"/projects/other/dataset-blobs/{blob.hash}")
    client.datasets.create("d", project="other")
    files = [DataFile(path="a.parquet", hash=blob.hash, size=blob.size, rows=3)]
    with pytest.raises(InvalidInput):
        client.datasets.create_version("d", version_spec(files), project="other")
    with pytest.raises(InvalidInput):
        api.post("/projects/default/datasets/-/missing-blobs", {"hashes": ["../../etc"]})


def test_append_lineage_and_schema_conflicts(client: Client, tmp_path: Path) -> None:
    client.datasets.create("raw")
    client.datasets.create("clean")
    raw = publish(client, parquet(tmp_path, "raw.parquet", TABLE))
    client.datasets.create_version("raw", version_spec(raw))
    more = publish(client, parquet(tmp_path, "more.parquet", TABLE.slice(0, 1)))
    appended = client.datasets.create_version("raw", version_spec(raw + more, parents=[1]))
    assert appended.rows == 4

    other = pa.table({"id": [1], "y": ["a"]})
    with pytest.raises(Conflict):
        client.datasets.create_version(
            "raw",
            version_spec(
                publish(client, parquet(tmp_path, "o.parquet", other)), other, parents=[2]
            ),
        )

    clean = client.datasets.create_version(
        "clean", version_spec(raw, parent_refs=["raw@2", "raw@1"], message="dedup")
    )
    lineage = client.datasets.lineage("clean", clean.version)
    assert [(p.dataset, p.version, p.relation) for p in lineage.parents] == [
        ("raw", 1, "derived"),
        ("raw", 2, "derived"),
    ]
    back = client.datasets.lineage("raw", 1)
    assert {(c.dataset, c.version, c.relation) for c in back.children} == {
        ("raw", 2, "append"),
        ("clean", 1, "derived"),
    }
    with pytest.raises(NotFound):
        client.datasets.create_version("clean", version_spec(raw, parent_refs=["raw@9"]))


def test_lineage_names_a_deleted_parent(client: Client, tmp_path: Path) -> None:
    """A version made from a dataset that is deleted since still names it: as it was
    named then, with its digest, marked deleted; live parents stay links."""
    files = publish(client, parquet(tmp_path, "a.parquet", TABLE))
    for name in ("raw", "keep", "clean"):
        client.datasets.create(name)
    raw = client.datasets.create_version("raw", version_spec(files))
    client.datasets.create_version("keep", version_spec(files))
    client.datasets.create_version(
        "clean", version_spec(files, parent_refs=["raw@1", "keep@1", "raw@latest"])
    )
    client.datasets.delete("raw")
    parents = client.datasets.lineage("clean", 1).parents
    assert [(p.dataset, p.version, p.relation, p.deleted) for p in parents] == [
        ("keep", 1, "derived", False),
        ("raw", 1, "derived", True),
    ]
    assert parents[1].digest == raw.digest and parents[0].digest == ""
    # A new dataset of the same name is not the deleted parent.
    client.datasets.create("raw")
    client.datasets.create_version("raw", version_spec(files))
    again = client.datasets.lineage("clean", 1).parents
    assert [(p.dataset, p.deleted) for p in again] == [("keep", False), ("raw", True)]
    assert client.datasets.lineage("raw", 1).children == []


def test_files_download_verified(client: Client, tmp_path: Path) -> None:
    path = parquet(tmp_path, "a.parquet", TABLE)
    client.datasets.create("d")
    client.datasets.create_version("d", version_spec(publish(client, path)))
    data = client.datasets.open("d")
    assert data.to_arrow().equals(TABLE)
    assert data.to_pandas()["id"].tolist() == [1, 2, 3]
    assert data.to_duckdb().aggregate("sum(id)").fetchall() == [(6,)]
    written = client.datasets.download("d", tmp_path / "out")
    assert [p.name for p in written] == ["a.parquet"]
    assert written[0].read_bytes() == path.read_bytes()
    url = "/projects/default/datasets/d/versions/1/files/a.parquet"
    assert client.api.http.get("/api/v1" + url).content == path.read_bytes()
    with pytest.raises(NotFound):
        client.api.get("/projects/default/datasets/d/versions/1/files/zz.parquet")
    assert isinstance(client.api.http, httpx.Client)


def test_a_cached_file_written_to_is_fetched_again(client: Client, tmp_path: Path) -> None:
    """The paths ``open`` hands out are the home's cached copies: read-only, and one that
    was written to anyway is not trusted (it was served, and downloaded as verified)."""
    path = parquet(tmp_path, "a.parquet", TABLE)
    client.datasets.create("d")
    client.datasets.create_version("d", version_spec(publish(client, path)))
    cached = client.datasets.open("d").paths[0]
    assert cached.stat().st_mode & 0o222 == 0
    cached.chmod(0o644)
    pq.write_table(pa.table({"id": [666]}), cached)
    assert client.datasets.to_pandas("d")["id"].tolist() == [1, 2, 3]
    written = client.datasets.download("d", tmp_path / "out")
    assert written[0].read_bytes() == path.read_bytes()
