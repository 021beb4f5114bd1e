"""Appends that race each other, embedded over SQLite and remote over PostgreSQL: an
append is recorded on the dataset's latest version or not at all. The server refuses
one whose parent is no longer the latest (Conflict naming both), and the SDK builds it
again on the latest version, whose rows it keeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
from tests.datasets.test_versions import TABLE, parquet, publish, version_spec

from shipyard.client import Client
from shipyard.datasets import ingest
from shipyard.errors import Conflict, ValidationFailed

SCHEMA = pa.schema([("id", pa.int64())])


def ids(*values: int) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


def racing_source(table: pa.Table, meanwhile: Callable[[], object]) -> pa.RecordBatchReader:
    """``table`` as a stream that calls ``meanwhile`` (another client's write) while it
    is being read, as a slow source read during another process's append would."""

    def batches() -> Iterator[pa.RecordBatch]:
        meanwhile()
        yield from table.to_batches()

    return pa.RecordBatchReader.from_batches(table.schema, batches())


def other_client(client: Client) -> Client:
    """A second SDK client of the same platform, as another process would have."""
    return Client(client.url, settings=client.settings, http=client.api.http)


def read_ids(client: Client, version: int | str = "latest") -> list[int]:
    return client.datasets.to_arrow("d", version)["id"].to_pylist()


def test_the_server_refuses_an_append_to_a_version_that_is_no_longer_latest(
    client: Client, tmp_path: Path
) -> None:
    files = publish(client, parquet(tmp_path, "a.parquet", TABLE))
    more = publish(client, parquet(tmp_path, "b.parquet", TABLE.slice(0, 1)))
    client.datasets.create("d")
    client.datasets.create_version("d", version_spec(files))
    client.datasets.create_version("d", version_spec(files + more, parents=[1]))
    with pytest.raises(Conflict) as caught:
        client.datasets.create_version("d", version_spec(files + more, parents=[1]))
    assert caught.value.message == "cannot append to version 1 of 'd': its latest version is 2 now"
    assert caught.value.details == {"dataset": "d", "parent": 1, "latest": 2}
    assert [v.version for v in client.datasets.versions("d").versions] == [2, 1]
    # On the latest version, the same append is taken.
    made = client.datasets.create_version("d", version_spec(files + more, parents=[2]))
    assert made.version == 3


def test_an_append_made_while_another_reads_its_source_keeps_both(client: Client) -> None:
    client.datasets.ingest("d", ids(1))
    other = other_client(client)
    source = racing_source(ids(2), lambda: other.datasets.append("d", ids(3)))
    made = client.datasets.append("d", source)
    assert made.version == 3 and made.rows == 3
    assert read_ids(client) == [1, 3, 2]  # each append after the version it was made on
    assert [p.version for p in client.datasets.lineage("d", 3).parents] == [2]
    detail = client.datasets.get_version("d", 3)
    assert detail.profile is not None and detail.profile.rows == 3
    assert [c.max for c in detail.profile.columns] == [3]
    assert read_ids(client, 2) == [1, 3]


def test_concurrent_appends_keep_every_row(client: Client) -> None:
    client.datasets.ingest("d", ids(0))
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: client.datasets.append("d", ids(i)), range(1, 5)))
    assert sorted(v.version for v in made) == [2, 3, 4, 5]
    assert sorted(read_ids(client)) == [0, 1, 2, 3, 4]
    chain = [client.datasets.lineage("d", v).parents[0].version for v in range(2, 6)]
    assert chain == [1, 2, 3, 4]


def test_an_append_whose_new_parent_changed_columns_is_refused(client: Client) -> None:
    client.datasets.ingest("d", ids(1))
    other = other_client(client)
    wider = pa.table({"id": pa.array([5], pa.int64()), "name": ["five"]})
    source = racing_source(ids(2), lambda: other.datasets.ingest("d", wider))
    with pytest.raises(Conflict) as caught:
        client.datasets.append("d", source)
    assert caught.value.message == (
        "cannot append to version 1 of 'd': its latest version is 2 now, and its columns "
        "differ from the appended data's: missing name"
    )
    assert caught.value.details["parent"] == 1 and caught.value.details["latest"] == 2
    assert [v.version for v in client.datasets.versions("d").versions] == [2, 1]


def test_an_append_rebuilt_on_a_new_parent_is_judged_on_its_rows(client: Client) -> None:
    """Whole-version expectations are judged again over the new parent's rows: two
    appends of the same key, each unique on its own parent, cannot both be recorded."""
    client.datasets.create("d", expectations=[{"kind": "unique", "columns": ["id"]}])
    client.datasets.ingest("d", ids(1))
    other = other_client(client)
    source = racing_source(ids(2), lambda: other.datasets.append("d", ids(2)))
    with pytest.raises(ValidationFailed, match="no version was made"):
        client.datasets.append("d", source)
    assert [v.version for v in client.datasets.versions("d").versions] == [2, 1]
    assert read_ids(client) == [1, 2]


def test_appends_give_up_after_a_bounded_number_of_tries(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "APPEND_ATTEMPTS", 1)
    client.datasets.ingest("d", ids(1))
    other = other_client(client)
    source = racing_source(ids(2), lambda: other.datasets.append("d", ids(3)))
    with pytest.raises(Conflict, match="cannot append to version 1 of 'd': its latest version"):
        client.datasets.append("d", source)
    assert [v.version for v in client.datasets.versions("d").versions] == [2, 1]


def test_the_server_refuses_a_first_append_once_the_dataset_has_a_version(
    client: Client, tmp_path: Path
) -> None:
    files = publish(client, parquet(tmp_path, "a.parquet", TABLE))
    client.datasets.create("d")
    client.datasets.create_version("d", version_spec(files))
    with pytest.raises(Conflict) as caught:
        client.datasets.create_version("d", version_spec(files, append=True))
    assert caught.value.message == (
        "cannot append to 'd' as its first version: its latest version is 1 now"
    )
    assert caught.value.details == {"dataset": "d", "parent": None, "latest": 1}
    assert [v.version for v in client.datasets.versions("d").versions] == [1]


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dataset", "no-dataset"])
def test_appends_racing_to_a_dataset_with_no_version_keep_both(
    client: Client, exists: bool
) -> None:
    if exists:
        client.datasets.create("d")
    other = other_client(client)
    source = racing_source(ids(2), lambda: other.datasets.append("d", ids(1)))
    made = client.datasets.append("d", source)
    assert made.version == 2 and made.rows == 2
    assert read_ids(client) == [1, 2]
    assert [p.version for p in client.datasets.lineage("d", 2).parents] == [1]
