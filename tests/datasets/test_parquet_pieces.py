"""Large Parquet files are stored in pieces cut where their row groups start: a new
version that changed one row group stores that row group and the footer, and every
version still reads back, validates and diffs exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from blake3 import blake3
from tests.conftest import ServerThread, build_platform, s3_settings

from shipyard.blobs import open_blob_store
from shipyard.blobs.pieces import PIECE_MAX
from shipyard.client import Client
from shipyard.config import Settings
from shipyard.datasets import parquet_cuts, transfer
from shipyard.datasets import service as datasets_service
from shipyard.datasets.parquet_cuts import row_group_cuts
from shipyard.datasets.transfer import Transfer
from shipyard.errors import InvalidInput, PayloadTooLarge
from shipyard.platform import Platform

GROUP_ROWS = 2_000
GROUPS = 6


def table(generation: int, changed_group: int | None = None) -> pa.Table:
    """``GROUPS`` groups of rows: an id and two random columns; ``changed_group`` gets
    values of its own, every other group the same values in every generation."""
    parts = []
    for g in range(GROUPS):
        seed = [g, generation] if g == changed_group else [g]
        rng = np.random.default_rng(seed)
        ids = np.arange(g * GROUP_ROWS, (g + 1) * GROUP_ROWS)
        parts.append(pa.table({"id": ids, "x": rng.standard_normal(GROUP_ROWS),
                               "y": rng.integers(0, 1 << 40, GROUP_ROWS)}))  # fmt: skip
    return pa.concat_tables(parts)


def write(path: Path, data: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, path, row_group_size=GROUP_ROWS)
    return path


def group_starts(path: Path) -> list[int]:
    meta = pq.read_metadata(path)
    starts = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        starts.append(min(parquet_cuts._chunk_start(group.column(c)) for c in range(3)))
    return starts


def test_cuts_fall_where_row_groups_and_the_footer_start(tmp_path: Path) -> None:
    path = write(tmp_path / "a.parquet", table(0))
    size = path.stat().st_size
    cuts = row_group_cuts(path, min_piece=1024)
    footer = size - 8 - pq.read_metadata(path).serialized_size
    assert cuts == [*group_starts(path)[1:], footer]
    tail = path.read_bytes()[footer:]
    assert tail[-4:] == b"PAR1"
    assert int.from_bytes(tail[-8:-4], "little") == len(tail) - 8
    # Row groups smaller than the minimum share pieces: fewer cuts, all of them starts.
    fewer = row_group_cuts(path, min_piece=size)
    assert set(fewer) <= set(cuts) and fewer[-1] == footer
    assert row_group_cuts(path, min_piece=size) == fewer  # the same file, the same cuts


def write_small_groups(path: Path, changed: int | None, rows: int) -> None:
    """60 row groups of ``rows`` rows, one written at a time; group ``changed`` has one
    row fewer (so every later group moves)."""
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for g in range(60):
            n = rows - 1 if g == changed else rows
            rng = np.random.default_rng(g)
            ids = np.arange(g * rows, g * rows + n)
            writer.write_table(pa.table({"id": ids, "x": rng.random(n)}, schema=schema))


def new_bytes(old: Path, new: Path, **cut: int) -> float:
    """The share of ``new``'s bytes in pieces that ``old`` does not have."""

    def pieces(path: Path) -> list[bytes]:
        data = path.read_bytes()
        edges = [0, *row_group_cuts(path, **cut), len(data)]
        return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]

    before = set(pieces(old))
    after = pieces(new)
    return sum(len(p) for p in after if p not in before) / sum(len(p) for p in after)


@pytest.mark.parametrize("groups_a_piece", [3, 10])
def test_small_row_groups_share_pieces_after_one_changes_length(
    tmp_path: Path, groups_a_piece: int
) -> None:
    rows = 300
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    write_small_groups(old, None, rows)
    write_small_groups(new, 10, rows)
    group = pq.read_metadata(old).row_group(1).total_byte_size
    # One changed group costs its piece and the footer, whatever the pieces before it
    # (cuts chosen by where the last one fell moved them all: 94% new here).
    assert new_bytes(old, new, min_piece=groups_a_piece * group) < 0.3


def test_page_indexes_after_the_row_groups_are_a_piece_of_their_own(tmp_path: Path) -> None:
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(table(0), old, row_group_size=GROUP_ROWS, write_page_index=True)
    changed = table(1, changed_group=0)
    pq.write_table(changed, new, row_group_size=GROUP_ROWS, write_page_index=True)
    meta = pq.read_metadata(new)
    size = new.stat().st_size
    last = meta.row_group(GROUPS - 1)
    end = max(
        parquet_cuts._chunk_start(last.column(c)) + last.column(c).total_compressed_size
        for c in range(3)
    )
    cuts = row_group_cuts(new, min_piece=1024)
    assert end in cuts and cuts[-1] > end  # the indexes lie between the two
    # The first group, the indexes and the footer are new; the other groups are not.
    data = new.read_bytes()
    assert new_bytes(old, new, min_piece=1024) == pytest.approx(
        (cuts[0] - 0 + size - end) / len(data)
    )


def test_a_changed_row_group_leaves_the_other_pieces_as_they_were(tmp_path: Path) -> None:
    old = write(tmp_path / "old.parquet", table(0))
    new = write(tmp_path / "new.parquet", table(1, changed_group=0))
    old_bytes, new_bytes = old.read_bytes(), new.read_bytes()
    old_cuts, new_cuts = row_group_cuts(old, min_piece=1024), row_group_cuts(new, min_piece=1024)
    assert old_cuts != new_cuts  # the changed group has another length: the rest moved

    def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
        edges = [0, *cuts, len(data)]
        return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]

    before, after = pieces(old_bytes, old_cuts), pieces(new_bytes, new_cuts)
    assert before[1:-1] == after[1:-1]
    assert before[0] != after[0] and before[-1] != after[-1]


def test_a_long_row_group_is_also_cut_at_its_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.parquet", table(0))
    monkeypatch.setattr(parquet_cuts, "PIECE_MAX", 1024)
    cuts = row_group_cuts(path, min_piece=8)
    meta = pq.read_metadata(path)
    columns = {
        parquet_cuts._chunk_start(meta.row_group(g).column(c))
        for g in range(meta.num_row_groups)
        for c in range(3)
    }
    assert set(cuts[:-1]) == columns - {4}


@pytest.mark.parametrize("content", [b"", b"not parquet at all" * 100, b"PAR1" + b"\0" * 64])
def test_a_file_that_is_not_parquet_is_not_cut(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(content)
    assert row_group_cuts(path) == []
    assert row_group_cuts(tmp_path / "absent.parquet") == []


@pytest.mark.parametrize("blobs", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_versions_of_a_large_file_share_their_unchanged_row_groups(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: str
) -> None:
    monkeypatch.setattr(transfer, "PIECES_FROM", 0)  # every file counts as large here
    monkeypatch.setattr(parquet_cuts, "MIN_PIECE", 1024)
    s3 = s3_settings(request.getfixturevalue("s3_endpoint")) if blobs == "s3" else {}
    client = Client(settings=Settings(home=tmp_path / "home", **s3))
    store = open_blob_store(client.settings)
    client.datasets.create("d", expectations=[{"kind": "unique", "columns": ["id"]}])
    path = tmp_path / "data" / "d.parquet"
    first, second = table(0), table(1, changed_group=2)
    client.datasets.ingest("d", write(path, first), message="first")
    client.datasets.ingest("d", write(path, second), message="group 2 changed")

    [f1], [f2] = (
        client.datasets.get_version("d", 1).files,
        client.datasets.get_version("d", 2).files,
    )
    pieces1, pieces2 = store._pieces(f1.hash), store._pieces(f2.hash)
    assert len(pieces1) == len(pieces2) == GROUPS + 1  # the row groups, then the footer
    new = [p for p in pieces2 if p not in pieces1]
    assert new == [pieces2[2], pieces2[-1]]  # the changed group and the footer

    assert client.datasets.to_arrow("d", 1).equals(first)
    assert client.datasets.to_arrow("d", 2).equals(second)
    assert client.datasets.validate("d", 2).passed
    rows = client.datasets.diff("d", 1, 2, keys=["id"]).rows_diff
    assert rows is not None
    assert (rows.added, rows.removed, rows.changed) == (0, 0, GROUP_ROWS)
    assert rows.changed_columns == {"x": GROUP_ROWS, "y": GROUP_ROWS}


def test_a_remote_client_sends_only_the_pieces_the_server_lacks(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_for: Callable[[Platform], ServerThread],
) -> None:
    monkeypatch.setattr(transfer, "PIECES_FROM", 0)  # every file counts as large here
    monkeypatch.setattr(parquet_cuts, "MIN_PIECE", 1024)
    # Hashes go to the server in batches it accepts: here of 2, where it takes 2.
    monkeypatch.setattr(transfer, "HASHES_PER_REQUEST", 2)
    monkeypatch.setattr(datasets_service, "MAX_HASHES", 2)
    platform = build_platform(request, "postgres", tmp_path / "home", blobs="s3")
    client = Client(server_for(platform).url, settings=platform.settings)
    path = tmp_path / "data" / "d.parquet"
    first, second = table(0), table(1, changed_group=2)

    def uploads() -> list[tuple[str, int]]:
        """What went over the wire so far, oldest first, from the audit log."""
        events = client.audit.list(action="datasets.upload_blob", limit=1000)
        return [(e.details["hash"], e.details["size"]) for e in reversed(events)]

    client.datasets.ingest("d", write(path, first), message="first")
    [f1] = client.datasets.get_version("d", 1).files
    pieces1 = platform.blobs._pieces(f1.hash)
    assert len(pieces1) == GROUPS + 1  # stored as the embedded store cuts it
    sent1 = uploads()
    assert set(pieces1) <= set(sent1) and (f1.hash, f1.size) not in sent1

    # A piece the store lost (the project still holds it): the join names it, the
    # client sends it again, and the next version is made all the same.
    lost = pieces1[3]
    platform.blobs.fs.rm(platform.blobs._path(lost[0]))

    client.datasets.ingest("d", write(path, second), message="group 2 changed")
    [f2] = client.datasets.get_version("d", 2).files
    pieces2 = platform.blobs._pieces(f2.hash)
    new = [p for p in pieces2 if p not in pieces1]
    assert new == [pieces2[2], pieces2[-1]]  # the changed group and the footer
    sent2 = uploads()[len(sent1) :]
    # Only those went over the wire, each once (beside the version's profile state),
    # and the lost piece again.
    assert sorted(p for p in sent2 if p in pieces2) == sorted([*new, lost])
    assert sum(n for _, n in sent2) - lost[1] < f2.size / 3
    assert platform.blobs.read_bytes(lost[0])  # repaired
    joins = client.audit.list(action="datasets.join_blob")
    assert sorted(e.details["hash"] for e in joins) == sorted([f1.hash, f2.hash])

    assert client.datasets.to_arrow("d", 1).equals(first)
    assert client.datasets.to_arrow("d", 2).equals(second)
    rows = client.datasets.diff("d", 1, 2, keys=["id"]).rows_diff
    assert rows is not None and rows.changed == GROUP_ROWS
    client.close()


def test_joins_the_project_may_not_make_are_refused(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    server_for: Callable[[Platform], ServerThread],
) -> None:
    platform = build_platform(request, "sqlite", tmp_path / "home")
    client = Client(server_for(platform).url, settings=platform.settings)
    client.projects.create("other")
    data = b"one half|the other half"
    halves = [data[:9], data[9:]]
    mine = [(blake3(h).hexdigest(), len(h)) for h in halves]
    for half in halves:  # the project uploads both pieces...
        Transfer(client, "default").publish({blake3(half).hexdigest(): half})
    secret = b"another project's file"
    Transfer(client, "other").publish({blake3(secret).hexdigest(): secret})
    api = client.api
    before = client.audit.list(action="datasets.join_blob")

    def join(digest: str, pieces: list, project: str = "default") -> None:
        api.post(f"/projects/{project}/datasets/-/join-blob", {"hash": digest, "pieces": pieces})

    whole = blake3(data).hexdigest()
    refused = [
        # Pieces that make another blob: here, the other project's file.
        ("default", blake3(secret).hexdigest(), mine, "make blob"),
        # A piece longer than the store ever cuts (it would be read whole).
        ("default", whole, [[mine[0][0], PIECE_MAX + 1]], "at most"),
        # The right pieces, in the wrong order.
        ("default", whole, mine[::-1], "make blob"),
        # Pieces the project does not hold, though the store has them.
        ("other", whole, mine, "upload its pieces first"),
        ("default", whole, [], "pieces"),
        ("default", whole, [[mine[0][0], mine[0][1] + 1], mine[1]], "listed sizes"),
        ("default", "not-a-hash", mine, "not a blob hash"),
    ]
    for project, digest, pieces, message in refused:
        with pytest.raises(InvalidInput, match=message):
            join(digest, pieces, project)
    platform.settings.max_artifact_bytes = len(data) - 1  # what one upload may be
    with pytest.raises(PayloadTooLarge):
        join(whole, [list(p) for p in mine])
    platform.settings.max_artifact_bytes = Settings().max_artifact_bytes
    assert client.audit.list(action="datasets.join_blob") == before

    def missing(project: str, hashes: list[str]) -> list[str]:
        path = f"/projects/{project}/datasets/-/missing-blobs"
        return list(api.post(path, {"hashes": hashes})["missing"])

    assert missing("default", [blake3(secret).hexdigest(), whole]) == [
        blake3(secret).hexdigest(),
        whole,
    ]
    assert missing("other", [whole]) == [whole]

    join(whole, [list(p) for p in mine])
    assert Transfer(client, "default").read_bytes(whole) == data
    client.close()
