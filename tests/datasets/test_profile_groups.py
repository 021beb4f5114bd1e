"""Merging the profile states of a folder's files by groups, remembered in the stat cache."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from shipyard.datasets import statcache
from shipyard.datasets.profile_groups import GROUP_MARK, groups_of, merge_files
from shipyard.datasets.profiles import PartialProfile, ProfileBuilder
from shipyard.datasets.statcache import StatCache


def _state(seed: int, rows: int = 200) -> bytes:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "x": pa.array(rng.normal(size=rows)),
            "k": pa.array(rng.integers(0, 5, rows)),
            "s": pa.array([f"v{v}" for v in rng.integers(0, 3, rows)]),
        }
    )
    builder = ProfileBuilder(table.schema)
    builder.add(table)
    return builder.partial().to_bytes()


def _files(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    return [(f"part-{i:05d}.parquet", _state(seed * 10_000 + i)) for i in range(n)]


def _merged_count(cache_folder: Path) -> int:
    with sqlite3.connect(cache_folder / "files.sqlite") as conn:
        return int(conn.execute("SELECT count(*) FROM merged_v1").fetchone()[0])


def test_groups_keep_their_members_when_a_file_comes_or_goes() -> None:
    names = [f"part-{i:05d}.parquet" for i in range(400)]
    before = groups_of([(name, name.encode()) for name in names])
    assert sum(map(len, before)) == 400
    assert 400 / GROUP_MARK / 2 <= len(before) <= 400 / GROUP_MARK * 2
    with_one_more = names[:200] + ["part-00199b.parquet"] + names[200:]
    after = groups_of([(name, name.encode()) for name in with_one_more])
    changed = [g for g in after if g not in before]
    assert len(changed) <= 2  # the new file's group (and, at a boundary, the next)
    assert any(b"part-00199b.parquet" in g for g in changed)
    assert len([g for g in before if g not in after]) <= 2


def test_merged_by_groups_as_all_at_once(tmp_path: Path) -> None:
    files = _files(150)
    cache = StatCache(tmp_path)
    grouped = merge_files(files, cache).finish()
    flat = PartialProfile.merge_all([PartialProfile.from_bytes(s) for _, s in files]).finish()
    assert grouped.rows == flat.rows == 150 * 200
    for a, b in zip(grouped.columns, flat.columns, strict=True):
        assert (a.name, a.count, a.nulls, a.min, a.max) == (b.name, b.count, b.nulls, b.min, b.max)
        if b.mean is not None:  # numeric columns
            assert a.mean == pytest.approx(b.mean, rel=1e-12)
            assert a.std == pytest.approx(b.std, rel=1e-9)
        assert a.distinct == b.distinct or a.approximate
    assert [c.top_values for c in grouped.columns[1:]] == [c.top_values for c in flat.columns[1:]]


def test_only_the_groups_of_changed_files_are_merged_again(tmp_path: Path) -> None:
    files = _files(150)
    cache = StatCache(tmp_path)
    multi = [g for g in groups_of(files) if len(g) > 1]
    merge_files(files, cache)
    assert _merged_count(tmp_path) == len(multi)
    merge_files(files, cache)  # nothing changed: nothing new to remember
    assert _merged_count(tmp_path) == len(multi)
    # One file of a group of several changes: that group alone is merged again.
    index = next(i for i, (name, _) in enumerate(files) if len(_group_of(files, name)) > 1)
    changed = list(files)
    changed[index] = (files[index][0], _state(99_999))
    again = merge_files(changed, cache).finish()
    assert _merged_count(tmp_path) == len(multi) + 1
    fresh = PartialProfile.merge_all([PartialProfile.from_bytes(s) for _, s in changed]).finish()
    assert [(c.count, c.min, c.max) for c in again.columns] == [
        (c.count, c.min, c.max) for c in fresh.columns
    ]


def _group_of(files: list[tuple[str, bytes]], name: str) -> list[bytes]:
    state = dict(files)[name]
    return next(g for g in groups_of(files) if state in g)


def test_the_remembered_groups_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "MAX_MERGED", 3)
    cache = StatCache(tmp_path)
    for seed in range(3):
        merge_files(_files(120, seed), cache)
        assert _merged_count(tmp_path) == 3


def test_a_damaged_remembered_state_is_merged_again(tmp_path: Path) -> None:
    files = _files(100)
    cache = StatCache(tmp_path)
    first = merge_files(files, cache).finish()
    with sqlite3.connect(tmp_path / "files.sqlite") as conn:
        conn.execute("UPDATE merged_v1 SET profile = ?", (b"not a profile",))
    again = merge_files(files, cache).finish()
    assert again.rows == first.rows
    assert [(c.count, c.min, c.max) for c in again.columns] == [
        (c.count, c.min, c.max) for c in first.columns
    ]
    with sqlite3.connect(tmp_path / "files.sqlite") as conn:
        states = [row[0] for row in conn.execute("SELECT profile FROM merged_v1")]
    assert states and all(PartialProfile.from_bytes(s).rows > 0 for s in states)  # repaired


def test_caches_opened_at_once_on_a_new_folder_all_open(tmp_path: Path) -> None:
    """Threads opening the stat cache of a new home at the same moment (concurrent first
    ingests): SQLite refuses a second switch to WAL at once rather than wait, in about
    one round of four in 20 here before the retry."""

    def open_cache(folder: Path, start: threading.Barrier) -> str:
        start.wait()
        StatCache(folder)
        return "open"

    for attempt in range(40):
        folder, start = tmp_path / f"home-{attempt}" / "cache", threading.Barrier(4)
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(open_cache, [folder] * 4, [start] * 4)) == ["open"] * 4
